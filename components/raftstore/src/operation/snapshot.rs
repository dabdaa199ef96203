//! Snapshots: which ones a peer accepts, applying one, and restarting a raft log that a crash
//! left behind the data engine.

use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::raft_serverpb::RaftApplyState;
use raft::eraftpb::{self};
use raft::Storage as _;
use raft_log_engine::RaftLogEngine;
use tracing::{info, warn};
use types::RegionId;

use crate::errors::Result;
use crate::fsm::peer::PeerFsmDelegate;
use crate::fsm::{ApplyFsm, ApplyMsg, PollContext};
use crate::peer::Peer;
use crate::peer_storage::{apply_snapshot_data, conf_state_from_region, PeerStorage};

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    pub(crate) fn apply_snapshot(
        &mut self,
        ctx: &PollContext<EK, ER>,
        snapshot: &eraftpb::Snapshot,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let (region, apply_state) = apply_snapshot_data(&ctx.kv, snapshot)?;
        let took = started.elapsed();
        crate::metrics::SNAPSHOT_DURATION
            .with_label_values(&["apply"])
            .observe(took.as_secs_f64());
        // A crash here leaves the snapshot's data and apply state in the data engine and the
        // raft log where it was; `Peer::new` rebuilds the log's start on restart.
        fail::fail_point!("snapshot_after_data_before_raft_log", |_| Err(
            crate::errors::Error::FailPoint("snapshot_after_data_before_raft_log")
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
            took_ms = took.as_millis() as u64,
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
        ctx.store_meta.lock().set_region(&region);
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
    /// Why a snapshot must not be applied here, if it must not: it is older than the region
    /// this peer has, or its range overlaps another region of this store (a stale snapshot cut
    /// before a split, arriving after the split-off region's own snapshot; applying it would
    /// delete that region's data).
    pub(crate) fn snapshot_conflict(&self, snapshot: &eraftpb::Snapshot) -> Option<String> {
        let region_id = self.fsm.region_id();
        let snap_region = match crate::peer_storage::snapshot_region(snapshot) {
            Ok(region) => region,
            Err(e) => return Some(e.to_string()),
        };
        if snap_region.id != region_id {
            return Some(format!("it is of region {}", snap_region.id));
        }
        let ours = self.fsm.peer.region.region_epoch.unwrap_or_default();
        let theirs = snap_region.region_epoch.unwrap_or_default();
        if self.fsm.peer.is_initialized()
            && (theirs.version < ours.version || theirs.conf_ver < ours.conf_ver)
        {
            return Some(format!(
                "its epoch {theirs:?} is older than the region's {ours:?}"
            ));
        }
        let overlap = self.ctx.store_meta.lock().overlapping_region(
            RegionId(region_id),
            &snap_region.start_key,
            &snap_region.end_key,
        );
        overlap.map(|other| format!("its range overlaps {other} on this store"))
    }
}
