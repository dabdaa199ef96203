//! Snapshots: which ones a peer accepts, applying one (its data written by the snapshot
//! applier, `snap_apply`, then its raft log), and restarting a raft log that a crash left
//! behind the data engine.

use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::raft_serverpb::RaftApplyState;
use raft::eraftpb::{self};
use raft::Storage as _;
use raft_log_engine::RaftLogEngine;
use tracing::{info, warn};
use types::RegionId;

use crate::errors::{Error, Result};
use crate::fsm::peer::PeerFsmDelegate;
use crate::fsm::{ApplyFsm, ApplyMsg, PollContext};
use crate::msg::PeerMsg;
use crate::peer::{Peer, SnapshotWrite};
use crate::peer_storage::{conf_state_from_region, snapshot_region, PeerStorage};
use crate::snap_apply::Written;

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Whether the data of raft-rs's pending snapshot, if it has one, is durable in the data
    /// engine, so that the ready holding it may be taken. If not, hands the snapshot to the
    /// snapshot applier (once); the peer hears back with [`PeerMsg::SnapshotWritten`]. Its
    /// range was reserved when it was received ([`PeerFsmDelegate::reserve_snapshot`]).
    pub(crate) fn snapshot_data_durable(&mut self, ctx: &PollContext<EK, ER>) -> Result<bool> {
        let Some(snapshot) = self.raft_group.snap() else {
            return Ok(true);
        };
        let index = snapshot.get_metadata().index;
        match &self.snapshot_write {
            SnapshotWrite::Written { index: written, .. } if *written == index => return Ok(true),
            // A newer snapshot that replaced the one being written waits for that write.
            SnapshotWrite::Writing { .. } => return Ok(false),
            _ => {}
        }
        let region = snapshot_region(snapshot)?;
        let snapshot = snapshot.clone();
        // What of the peer's range the snapshot's region no longer covers is deleted with it.
        let replaced = self.is_initialized().then(|| (*self.region).clone());
        ctx.store_meta
            .lock()
            .applying_snapshots
            .insert(self.region_id, region);
        self.snapshot_write = SnapshotWrite::Writing { index };
        let router = ctx.router.clone();
        let region_id = self.region_id.get();
        let peer_id = self.peer_id();
        ctx.snap_applier
            .schedule(ctx.kv.clone(), snapshot, replaced, move |result| {
                let msg = PeerMsg::SnapshotWritten {
                    peer_id,
                    index,
                    result: Box::new(result),
                };
                // A peer gone meanwhile (the store stopping) needs no answer.
                let _ = router.force_send(region_id, msg);
            });
        Ok(false)
    }

    /// The snapshot applier answered for the snapshot at `index`. Returns the error that
    /// stops the peer, if the write failed.
    pub(crate) fn on_snapshot_written(
        &mut self,
        ctx: &PollContext<EK, ER>,
        index: u64,
        result: Written,
    ) -> Result<()> {
        if !matches!(self.snapshot_write, SnapshotWrite::Writing { index: writing } if writing == index)
        {
            return Ok(());
        }
        match result {
            Ok((region, apply_state)) => {
                self.snapshot_write = SnapshotWrite::Written {
                    index,
                    region,
                    apply_state,
                };
                Ok(())
            }
            Err(e) => {
                self.snapshot_write = SnapshotWrite::None;
                ctx.store_meta
                    .lock()
                    .applying_snapshots
                    .remove(&self.region_id);
                Err(e)
            }
        }
    }

    /// Whether the snapshot applier is writing this peer's snapshot.
    pub(crate) fn is_writing_snapshot(&self) -> bool {
        matches!(self.snapshot_write, SnapshotWrite::Writing { .. })
    }

    /// Applies the ready's snapshot, whose data the applier made durable: records it in the
    /// raft log and takes on its region and apply state.
    pub(crate) fn apply_snapshot(
        &mut self,
        ctx: &PollContext<EK, ER>,
        snapshot: &eraftpb::Snapshot,
    ) -> Result<()> {
        let index = snapshot.get_metadata().index;
        let (region, apply_state) = match std::mem::take(&mut self.snapshot_write) {
            SnapshotWrite::Written {
                index: written,
                region,
                apply_state,
            } if written == index => (region, apply_state),
            other => {
                return Err(Error::Corrupt {
                    what: "snapshot".into(),
                    reason: format!(
                        "the ready's snapshot at {index} is not the written one ({other:?})"
                    ),
                })
            }
        };
        // A crash here leaves the snapshot's data and apply state in the data engine and the
        // raft log where it was; `Peer::new` rebuilds the log's start on restart.
        fail::fail_point!("snapshot_after_data_before_raft_log", |_| Err(
            Error::FailPoint("snapshot_after_data_before_raft_log")
        ));
        crate::metrics::SNAPSHOTS
            .with_label_values(&["apply"])
            .inc();
        self.raft_group
            .store()
            .raft_log
            .apply_snapshot(snapshot.get_metadata())?;
        info!(
            region_id = self.region_id.get(),
            index = apply_state.applied_index,
            start = ?region.start_key,
            end = ?region.end_key,
            "snapshot applied"
        );
        self.applied_index = apply_state.applied_index;
        self.applied_term = apply_state.applied_term;
        self.committed_sent = apply_state.applied_index;
        if self
            .pending_split_index
            .is_some_and(|index| index <= self.applied_index)
        {
            self.pending_split_index = None;
        }
        self.set_region(region.clone());
        {
            let mut meta = ctx.store_meta.lock();
            meta.applying_snapshots.remove(&self.region_id);
            meta.set_region(&region);
        }
        if self.apply_stopped {
            // The stopped apply FSM is gone: a new one starts from the snapshot.
            let (mailbox, _) = ApplyFsm::create(region, self.peer_id(), apply_state);
            ctx.apply_router.register(self.region_id.get(), mailbox);
            self.apply_stopped = false;
            info!(
                region_id = self.region_id.get(),
                "apply restarted from a snapshot"
            );
            return Ok(());
        }
        let reset = ApplyMsg::Snapshot {
            region,
            apply_state,
            peer_id: self.peer_id(),
        };
        if ctx
            .apply_router
            .force_send(self.region_id.get(), reset)
            .is_err()
        {
            warn!(
                region_id = self.region_id.get(),
                "apply fsm is gone; snapshot state not forwarded"
            );
        }
        Ok(())
    }
}

/// Restarts the raft log at the applied index when the data engine is ahead of it. Two writes
/// can leave it so if the store crashes between them: a split writes the new region's states
/// with the apply batch and its raft log afterwards, and a snapshot writes its data and apply
/// state before the raft log. Everything up to the applied index is applied, hence committed,
/// so the log may start after it; the hard state keeps its term and vote.
pub(crate) fn recover_log_behind_apply<EK: KvEngine, ER: RaftLogEngine>(
    storage: &PeerStorage<EK, ER>,
    region: &metapb::Region,
    apply_state: &RaftApplyState,
) -> Result<()> {
    let last_index = storage.raft_log.last_index()?;
    if apply_state.applied_index <= last_index {
        return Ok(());
    }
    warn!(
        region_id = region.id,
        last_index,
        applied_index = apply_state.applied_index,
        "raft log ends before the applied index (a crash between two writes); it restarts at the applied index"
    );
    let mut meta = eraftpb::SnapshotMetadata {
        index: apply_state.applied_index,
        term: apply_state.applied_term,
        ..Default::default()
    };
    meta.set_conf_state(conf_state_from_region(region));
    storage.raft_log.apply_snapshot(&meta)?;
    Ok(())
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'_, EK, ER> {
    /// Checks a received snapshot and, if it may be applied here, reserves its range in
    /// [`crate::StoreMeta::applying_snapshots`] in the same step, so that no other peer of the
    /// store (on another poller) accepts an overlapping one meanwhile (TiKV's
    /// `pending_snapshot_regions`). Returns why it must not be applied, if it must not: it is
    /// older than the region this peer has, the region is being created here by a split, or
    /// its range overlaps another region of this store (a stale snapshot cut before a split,
    /// arriving after the split-off region's own snapshot; applying it would delete that
    /// region's data).
    ///
    /// Returns the reservation it replaced, for [`Self::release_unaccepted_snapshot`].
    pub(crate) fn reserve_snapshot(
        &self,
        snapshot: &eraftpb::Snapshot,
    ) -> std::result::Result<Option<metapb::Region>, String> {
        let region_id = self.fsm.region_id();
        let snap_region =
            crate::peer_storage::snapshot_region(snapshot).map_err(|e| e.to_string())?;
        if snap_region.id != region_id {
            return Err(format!("it is of region {}", snap_region.id));
        }
        let ours = self.fsm.peer.region.region_epoch.unwrap_or_default();
        let theirs = snap_region.region_epoch.unwrap_or_default();
        if self.fsm.peer.is_initialized()
            && (theirs.version < ours.version || theirs.conf_ver < ours.conf_ver)
        {
            return Err(format!(
                "its epoch {theirs:?} is older than the region's {ours:?}"
            ));
        }
        let mut meta = self.ctx.store_meta.lock();
        if meta.splitting.contains(&RegionId(region_id)) {
            return Err("a split applied here is creating the region".into());
        }
        if let Some(other) = meta.overlapping_region(
            RegionId(region_id),
            &snap_region.start_key,
            &snap_region.end_key,
        ) {
            return Err(format!("its range overlaps {other} on this store"));
        }
        if self.fsm.peer.is_writing_snapshot() {
            // The write in flight covers the older snapshot's range, which holds this one's.
            return Ok(meta.applying_snapshots.get(&RegionId(region_id)).cloned());
        }
        Ok(meta
            .applying_snapshots
            .insert(RegionId(region_id), snap_region))
    }

    /// After raft-rs stepped a snapshot reserved by [`Self::reserve_snapshot`]: if it did not
    /// take it (an older one than it has, say), the reservation goes back to what it was.
    pub(crate) fn release_unaccepted_snapshot(&self, index: u64, previous: Option<metapb::Region>) {
        let accepted = self
            .fsm
            .peer
            .raft_group
            .snap()
            .is_some_and(|s| s.get_metadata().index == index);
        if accepted {
            return;
        }
        let region_id = RegionId(self.fsm.region_id());
        let mut meta = self.ctx.store_meta.lock();
        match previous {
            Some(region) => {
                meta.applying_snapshots.insert(region_id, region);
            }
            None => {
                meta.applying_snapshots.remove(&region_id);
            }
        }
    }
}
