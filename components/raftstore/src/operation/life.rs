//! A peer's life: creation (at start, by a split, by a raft message), a stopped apply, and
//! destruction (removal, tombstones).

use batch_system::BasicMailbox;
use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, CF_RAFT, DATA_CFS};
use kvproto::metapb;
use kvproto::raft_serverpb::{PeerState, RaftApplyState, RaftMessage, RegionLocalState};
use prost::Message as _;
use raft_log_engine::{clear_region, RaftLogEngine};
use tracing::{error, info};
use types::{PeerId, RegionId};

use crate::errors::{Error, Result};
use crate::fsm::peer::{Mailboxes, PeerFsmDelegate};
use crate::fsm::{ApplyFsm, ApplyMsg, PeerFsm, PollContext};
use crate::msg::StoreMsg;
use crate::peer::{Peer, SnapshotWrite};
use crate::peer_storage::{load_apply_state, load_region_state};
use crate::transport::Transport;
use crate::util;

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// The apply FSM stopped after an error. This replica can no longer serve: what waits is
    /// answered, leadership goes to another peer, and a snapshot will restart apply.
    pub fn on_apply_stopped(&mut self, ctx: &PollContext<EK, ER>) {
        self.apply_stopped = true;
        let region_id = self.region_id;
        self.abandon_proposals("this replica stopped applying entries");
        self.fail_pending(|| Error::ApplyStopped { region_id });
        self.lease_expire = None;
        self.recover_stopped_apply();
        self.update_read_delegate(ctx);
    }

    /// While apply is stopped: a leader hands leadership over, a follower asks the leader for
    /// a snapshot (its log may be complete, so none would come otherwise). Called again on
    /// every raft tick until a snapshot restarts apply; raft-rs drops a request while it has
    /// no leader or one pending.
    pub fn recover_stopped_apply(&mut self) {
        if !self.apply_stopped {
            return;
        }
        if self.is_leader() {
            if self.raft_group.raft.lead_transferee.is_none() {
                let target = self
                    .region
                    .peers
                    .iter()
                    .find(|p| p.id != self.peer.id)
                    .map(|p| p.id);
                if let Some(target) = target {
                    self.raft_group.transfer_leader(target);
                }
            }
        } else if self.raft_group.raft.pending_request_snapshot == raft::INVALID_INDEX {
            let _ = self.raft_group.request_snapshot();
        }
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsm<EK, ER> {
    /// Creates the FSM of an initialized region on this store, with its apply FSM's mailbox.
    ///
    /// # Errors
    ///
    /// Engine or raft errors while loading the peer's state.
    pub fn create(ctx: &PollContext<EK, ER>, region: metapb::Region) -> Result<Mailboxes<EK, ER>> {
        let peer =
            *util::find_peer(&region, ctx.store_id).ok_or_else(|| Error::PeerNotOnStore {
                region_id: RegionId(region.id),
                store_id: ctx.store_id,
            })?;
        let apply_state = load_apply_state(&ctx.kv, region.id)?.ok_or(Error::RegionNotFound {
            region_id: RegionId(region.id),
        })?;
        Self::build(ctx, region, peer, apply_state)
    }

    /// Creates the FSM of a peer that a raft message announced: no data until a snapshot.
    /// `after_tombstone`: an earlier peer of the region here was destroyed.
    ///
    /// # Errors
    ///
    /// Raft log errors.
    pub fn replicate(
        ctx: &PollContext<EK, ER>,
        region_id: u64,
        peer: metapb::Peer,
        after_tombstone: bool,
    ) -> Result<Mailboxes<EK, ER>> {
        // What a destroyed peer of this region left in the raft log (if the store crashed
        // before its destruction cleared it) must go. Otherwise the raft log is kept: it is
        // this peer's own hard state from before a restart (an uninitialized peer is not
        // reloaded at start), and a vote it cast must not be forgotten.
        if after_tombstone {
            clear_region(&ctx.raft, RegionId(region_id))?;
        }
        let region = metapb::Region {
            id: region_id,
            ..Default::default()
        };
        Self::build(ctx, region, peer, RaftApplyState::default())
    }

    pub(crate) fn build(
        ctx: &PollContext<EK, ER>,
        region: metapb::Region,
        peer: metapb::Peer,
        apply_state: RaftApplyState,
    ) -> Result<Mailboxes<EK, ER>> {
        let (apply_mailbox, _) = ApplyFsm::create(region.clone(), PeerId(peer.id), apply_state);
        let peer = Peer::new(ctx, region, peer, &apply_state)?;
        let (sender, receiver) = crossbeam::channel::unbounded();
        let fsm = PeerFsm {
            peer,
            receiver,
            mailbox: None,
            stopped: false,
            destroy_after_persist: false,
            destroy_after_apply: false,
        };
        Ok((BasicMailbox::new(sender, Box::new(fsm)), apply_mailbox))
    }
}

/// Tells the removed replica `to` of `region_id` to destroy itself: the region as of `epoch`
/// (`from`'s configuration, or a destroyed replica's last) no longer has it.
pub(crate) fn send_tombstone(
    trans: &dyn Transport,
    region_id: u64,
    from: metapb::Peer,
    to: metapb::Peer,
    epoch: Option<metapb::RegionEpoch>,
) {
    info!(
        region_id,
        to_peer = to.id,
        to_store = to.store_id,
        "telling a removed replica to destroy itself"
    );
    trans.send(util::tombstone_message(region_id, from, to, epoch));
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'_, EK, ER> {
    /// A message from a peer that the region no longer has (its epoch is older than ours).
    pub(crate) fn is_from_removed_peer(&self, msg: &RaftMessage, from: &metapb::Peer) -> bool {
        let region = &self.fsm.peer.region;
        // The region's own peers first: that is nearly every message, and it needs no lock.
        if util::find_peer_by_id(region, PeerId(from.id)).is_some()
            || !self.fsm.peer.is_initialized()
        {
            return false;
        }
        let ours = region.region_epoch.unwrap_or_default();
        let theirs = msg.region_epoch.unwrap_or_default();
        theirs.conf_ver < ours.conf_ver
    }

    pub(crate) fn send_tombstone(&self, msg: &RaftMessage, to: metapb::Peer) {
        send_tombstone(
            self.ctx.trans.as_ref(),
            msg.region_id,
            self.fsm.peer.peer,
            to,
            self.fsm.peer.region.region_epoch,
        );
    }

    pub(crate) fn on_tombstone_message(&mut self, msg: &RaftMessage) {
        // A replica whose snapshot is being applied knows the snapshot's configuration.
        let applying = if self.fsm.peer.is_initialized() {
            None
        } else {
            let meta = self.ctx.store_meta.lock();
            meta.applying_snapshots
                .get(&self.fsm.peer.region_id)
                .and_then(|region| region.region_epoch)
        };
        let ours = applying
            .or(self.fsm.peer.region.region_epoch)
            .unwrap_or_default();
        let knows_configuration = self.fsm.peer.is_initialized() || applying.is_some();
        let theirs = msg.region_epoch.unwrap_or_default();
        let for_us = msg.to_peer.is_some_and(|p| p.id == self.fsm.peer.peer.id);
        if for_us && (!knows_configuration || theirs.conf_ver > ours.conf_ver) {
            info!(
                region_id = self.fsm.region_id(),
                "peer was removed from its region; destroying it"
            );
            self.destroy(true);
        }
    }

    /// Removes this peer: answers what is pending, marks it tombstone, deletes its data (when
    /// `clean`) and raft log, and stops the FSM.
    ///
    /// The apply FSM may still be writing entries of the region (a replica removed while its
    /// apply is behind learns of it from a tombstone message): deleting the data before those
    /// writes land would let them bring back the region's state and data. So a clean destroy
    /// first stops the apply FSM and finishes when it answers ([`Self::on_apply_destroyed`]),
    /// as TiKV's peer waits for its apply FSM's destroy.
    pub fn destroy(&mut self, clean: bool) {
        if self.fsm.destroy_after_apply {
            // Already waiting for the apply FSM.
            return;
        }
        if clean && (self.fsm.peer.has_unpersisted_ready() || self.fsm.peer.is_writing_snapshot()) {
            // The store writer still holds this peer's ready, or the snapshot applier its
            // snapshot: clearing the log or the data now could be overtaken by that write.
            // Destroyed once told it is written; nothing is proposed meanwhile.
            self.fsm.peer.pending_remove = true;
            self.fsm.destroy_after_persist = true;
            return;
        }
        let peer = &mut self.fsm.peer;
        let region_id = peer.region_id;
        peer.pending_remove = true;
        peer.fail_pending(|| Error::RegionNotFound { region_id });
        peer.abandon_proposals("the replica was destroyed before the entry was committed");
        let apply_told = self
            .ctx
            .apply_router
            .force_send(region_id.get(), ApplyMsg::Destroy)
            .is_ok();
        if clean && apply_told {
            self.fsm.destroy_after_apply = true;
            // Tells a test that the destroy waits for the apply FSM (it names the peer).
            fail::fail_point!(&format!(
                "destroy_waits_for_apply_{}",
                self.fsm.peer.peer_id().get()
            ));
            return;
        }
        // Without a clean up there is nothing to wait for; an apply FSM that cannot be told
        // has stopped already.
        self.finish_destroy(clean);
    }

    /// The apply FSM has stopped: the destroy that waited for it finishes.
    pub(crate) fn on_apply_destroyed(&mut self) {
        if std::mem::take(&mut self.fsm.destroy_after_apply) && !self.fsm.stopped {
            self.finish_destroy(true);
        }
    }

    fn finish_destroy(&mut self, clean: bool) {
        let region_id = self.fsm.peer.region_id;
        let peer_id = self.fsm.peer.peer_id();
        if clean {
            if let Err(e) = self.clean_up() {
                error!(region_id = region_id.get(), error = %e, "failed to clean up a destroyed peer");
            }
        }
        self.ctx.store_meta.lock().remove_region(region_id);
        let _ = self
            .ctx
            .router
            .force_send_control(StoreMsg::PeerDestroyed { region_id, peer_id });
        self.fsm.stopped = true;
    }

    pub(crate) fn clean_up(&self) -> Result<()> {
        let peer = &self.fsm.peer;
        // A snapshot whose data is written but not yet applied (the peer was removed
        // meanwhile) counts: its data and states are in the engine.
        let written = match &peer.snapshot_write {
            SnapshotWrite::Written { region, .. } => Some(region),
            _ => None,
        };
        let region = written.unwrap_or(&peer.region);
        let has_data = peer.is_initialized() || written.is_some();
        let mut batch = self.ctx.kv.write_batch();
        if has_data {
            // No other region on this store owns this range: deleting the data is safe.
            let overlap = self.ctx.store_meta.lock().overlapping_region(
                peer.region_id,
                &region.start_key,
                &region.end_key,
            );
            if overlap.is_none() {
                let start = keys::data_key(&region.start_key);
                let end = keys::data_end_key(&region.end_key);
                for cf in DATA_CFS {
                    batch.delete_range_cf(cf, &start, &end)?;
                }
            }
        }
        // An uninitialized replica knows no configuration of the region: the tombstone an
        // earlier replica here left says more (messages from replicas removed before it are
        // answered and dropped by it), so it stays.
        let keep_earlier = !has_data
            && load_region_state(&self.ctx.kv, region.id)?
                .is_some_and(|s| s.state == PeerState::Tombstone as i32);
        if !keep_earlier {
            let state = RegionLocalState {
                state: PeerState::Tombstone as i32,
                region: Some(region.clone()),
            };
            batch.put_cf(
                CF_RAFT,
                &keys::region_state_key(region.id),
                &state.encode_to_vec(),
            )?;
        }
        batch.delete_cf(CF_RAFT, &keys::apply_state_key(region.id))?;
        batch.write_opt(WriteOptions { sync: true })?;
        clear_region(&self.ctx.raft, RegionId(region.id))?;
        Ok(())
    }
}
