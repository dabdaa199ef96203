//! The peer FSM (seed: `PeerFsm` / `PeerFsmDelegate`): one per region replica on the raft
//! poller. It turns each message into raft-rs calls and follows up on apply results.

use batch_system::{BasicMailbox, Fsm};
use crossbeam::channel::Receiver;
use engine_traits::KvEngine;
use kvproto::raft_serverpb::RaftMessage;
use protobuf::Message as _;
use raft::eraftpb::{self, MessageType};
use raft::SnapshotStatus;
use raft_log_engine::RaftLogEngine;
use tracing::{error, info, warn};

use types::PeerId;

use crate::errors::Error;
use crate::fsm::{ApplyFsm, PollContext};
use crate::msg::{ExecResult, PeerMsg, PeerTick};
use crate::peer::Peer;

/// A new peer's mailbox and its apply FSM's mailbox.
pub type Mailboxes<EK, ER> = (BasicMailbox<PeerFsm<EK, ER>>, BasicMailbox<ApplyFsm<EK>>);

pub struct PeerFsm<EK: KvEngine, ER: RaftLogEngine> {
    pub peer: Peer<EK, ER>,
    pub(crate) receiver: Receiver<PeerMsg<EK::Snapshot>>,
    pub(crate) mailbox: Option<BasicMailbox<PeerFsm<EK, ER>>>,
    pub(crate) stopped: bool,
    /// Destroy the peer (cleaning its data) once its ready in the store writer and its
    /// snapshot in the snapshot applier are written.
    pub(crate) destroy_after_persist: bool,
    /// Destroy the peer (cleaning its data) once its apply FSM says it writes nothing more;
    /// meanwhile the peer takes no raft messages and handles no readies.
    pub(crate) destroy_after_apply: bool,
}

impl<EK: KvEngine, ER: RaftLogEngine> Fsm for PeerFsm<EK, ER> {
    type Message = PeerMsg<EK::Snapshot>;

    fn is_stopped(&self) -> bool {
        self.stopped
    }

    fn set_mailbox(&mut self, mailbox: &BasicMailbox<Self>) {
        self.mailbox = Some(mailbox.clone());
    }

    fn take_mailbox(&mut self) -> Option<BasicMailbox<Self>> {
        self.mailbox.take()
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsm<EK, ER> {
    pub fn receiver(&self) -> &Receiver<PeerMsg<EK::Snapshot>> {
        &self.receiver
    }

    pub fn region_id(&self) -> u64 {
        self.peer.region_id.get()
    }
}

/// Handles the messages of one peer FSM with the poller's context.
pub struct PeerFsmDelegate<'a, EK: KvEngine, ER: RaftLogEngine> {
    pub(crate) fsm: &'a mut PeerFsm<EK, ER>,
    pub(crate) ctx: &'a PollContext<EK, ER>,
}

impl<'a, EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'a, EK, ER> {
    pub fn new(fsm: &'a mut PeerFsm<EK, ER>, ctx: &'a PollContext<EK, ER>) -> Self {
        PeerFsmDelegate { fsm, ctx }
    }

    pub fn handle_msg(&mut self, msg: PeerMsg<EK::Snapshot>) {
        if self.fsm.stopped {
            if let PeerMsg::RaftCommand(cmd) = msg {
                cmd.callback.invoke_with_error(
                    Error::RegionNotFound {
                        region_id: self.fsm.peer.region_id,
                    },
                    0,
                );
            }
            return;
        }
        // A sleeping replica wakes for anything but a tick, the store writer's answer (not
        // activity: a ready staged as the region fell asleep is answered after) or a size
        // estimate (asked for by a heartbeat tick, which does not wake it either); a raft
        // message decides below.
        if !matches!(
            msg,
            PeerMsg::Tick(_)
                | PeerMsg::RaftMessage(_)
                | PeerMsg::Persisted { .. }
                | PeerMsg::RegionStats { .. }
        ) {
            self.fsm.peer.wake_up(self.ctx);
        }
        match msg {
            PeerMsg::RaftMessage(m) => self.on_raft_message(*m),
            PeerMsg::RaftCommand(cmd) => {
                self.fsm.peer.note_activity();
                let cmd = *cmd;
                crate::metrics::REQUEST_WAIT_DURATION
                    .observe(cmd.send_time.elapsed().as_secs_f64());
                self.fsm.peer.propose(self.ctx, cmd.request, cmd.callback);
            }
            PeerMsg::Tick(tick) => self.on_tick(tick),
            PeerMsg::ApplyRes(res) => self.on_apply_res(*res),
            PeerMsg::SnapshotStatus {
                to_peer_id,
                finished,
            } => {
                let status = if finished {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.fsm
                    .peer
                    .raft_group
                    .report_snapshot(to_peer_id.get(), status);
            }
            PeerMsg::Unreachable { to_peer_id } => {
                self.fsm
                    .peer
                    .raft_group
                    .report_unreachable(to_peer_id.get());
            }
            PeerMsg::PdOperator(resp) => self.on_pd_operator(*resp),
            PeerMsg::SplitIds {
                region_epoch,
                split_keys,
                ids,
                callback,
            } => self.on_split_ids(region_epoch, split_keys, ids, callback),
            PeerMsg::SplitRegion {
                region_epoch,
                split_keys,
                callback,
            } => self.on_split_region(region_epoch, split_keys, callback),
            PeerMsg::SplitCheckResult {
                region_epoch,
                result,
            } => self.on_split_check_result(region_epoch, result),
            PeerMsg::RegionStats {
                region_epoch,
                stats,
            } => self.on_region_stats(region_epoch, stats),
            PeerMsg::ApplyStopped => self.fsm.peer.on_apply_stopped(self.ctx),
            PeerMsg::ApplyDestroyed => self.on_apply_destroyed(),
            PeerMsg::WakeUp => {}
            PeerMsg::Persisted { peer_id, error } => self.on_persisted(peer_id, error),
            PeerMsg::SnapshotWritten {
                peer_id,
                index,
                result,
            } => self.on_snapshot_written(peer_id, index, *result),
            PeerMsg::Campaign => {
                if let Err(e) = self.fsm.peer.raft_group.campaign() {
                    warn!(region_id = self.fsm.region_id(), error = %e, "campaign failed");
                }
            }
        }
    }

    /// Handles raft's ready after a batch of messages, staging what must be persisted in the
    /// round's raft log batch. Returns `None` if no ready was staged, else whether its write
    /// must be synced.
    pub fn collect_ready(&mut self, batch: &mut ER::Batch) -> Option<bool> {
        if self.fsm.stopped || self.fsm.destroy_after_apply {
            // A peer being destroyed writes and sends nothing more.
            return None;
        }
        self.fsm.peer.propose_pending_writes(self.ctx);
        if self.fsm.peer.has_unpersisted_ready() {
            // One ready in flight at a time; the next waits for the writer's answer.
            return None;
        }
        let must_sync = match self.fsm.peer.handle_ready(self.ctx, batch) {
            Ok(must_sync) => must_sync,
            Err(e) => {
                self.on_persist_failed(&e);
                false
            }
        };
        self.fsm.peer.has_unpersisted_ready().then_some(must_sync)
    }

    /// The store writer wrote this peer's staged ready (or failed to).
    fn on_persisted(&mut self, peer_id: PeerId, error: Option<String>) {
        if peer_id != self.fsm.peer.peer_id() || !self.fsm.peer.has_unpersisted_ready() {
            return;
        }
        match error {
            None => self.on_ready_persisted(),
            Some(reason) => self.on_persist_failed(&Error::PersistFailed(reason)),
        }
        if std::mem::take(&mut self.fsm.destroy_after_persist) && !self.fsm.stopped {
            self.destroy(true);
        }
    }

    /// The snapshot applier wrote this peer's snapshot (or failed to); the next ready applies
    /// it.
    fn on_snapshot_written(
        &mut self,
        peer_id: PeerId,
        index: u64,
        result: crate::snap_apply::Written,
    ) {
        if peer_id != self.fsm.peer.peer_id() {
            return;
        }
        if let Err(e) = self.fsm.peer.on_snapshot_written(self.ctx, index, result) {
            self.on_persist_failed(&e);
        }
        if self.fsm.destroy_after_persist
            && !self.fsm.peer.has_unpersisted_ready()
            && !self.fsm.peer.is_writing_snapshot()
        {
            self.fsm.destroy_after_persist = false;
            if !self.fsm.stopped {
                self.destroy(true);
            }
        }
    }

    /// Finishes the peer's ready once the round's raft log batch is on disk.
    pub fn on_ready_persisted(&mut self) {
        let outcome = self.fsm.peer.on_ready_persisted(self.ctx);
        if outcome.role_changed && self.fsm.peer.is_leader() {
            self.fsm.peer.reset_pd_stats();
            self.heartbeat_pd();
        }
        if outcome.snapshot_applied {
            self.fsm.peer.update_read_delegate(self.ctx);
        }
    }

    /// Without its log the peer cannot go on; a restart replays from disk.
    pub fn on_persist_failed(&mut self, e: &Error) {
        error!(region_id = self.fsm.region_id(), error = %e, "failed to persist raft ready; peer stops");
        self.fsm.peer.unpersisted = None;
        self.destroy(false);
    }

    fn on_raft_message(&mut self, msg: RaftMessage) {
        if self.fsm.destroy_after_apply {
            return;
        }
        let region_id = self.fsm.region_id();
        if msg.is_tombstone {
            self.on_tombstone_message(&msg);
            return;
        }
        let Some(from) = msg.from_peer else {
            return;
        };
        if let Some(extra) = &msg.extra_msg {
            self.on_extra_message(PeerId(from.id), extra);
            return;
        }
        let message = match eraftpb::Message::parse_from_carllerche_bytes(&msg.message) {
            Ok(message) => message,
            Err(e) => {
                warn!(region_id, error = %e, "undecodable raft message dropped");
                return;
            }
        };
        if self.is_from_removed_peer(&msg, &from) {
            self.send_tombstone(&msg, from);
            return;
        }
        let mut reserved = None;
        if message.get_msg_type() == MessageType::MsgSnapshot {
            match self.reserve_snapshot(message.get_snapshot()) {
                Ok(previous) => {
                    reserved = Some((message.get_snapshot().get_metadata().index, previous))
                }
                Err(reason) => {
                    info!(region_id, %reason, "snapshot dropped");
                    return;
                }
            }
        }
        // Heartbeats change nothing: the leader's, to a sleeping follower (a leader still
        // asking its followers to sleep sends them), and their answers, which can reach a
        // leader after it fell asleep. They are handled without waking the replica.
        let heartbeat = match message.get_msg_type() {
            MessageType::MsgHeartbeat => message.from == self.fsm.peer.raft_group.raft.leader_id,
            MessageType::MsgHeartbeatResponse => true,
            _ => false,
        };
        if !heartbeat {
            self.fsm.peer.wake_up(self.ctx);
        }
        self.fsm.peer.insert_peer_cache(from);
        self.fsm.peer.record_heartbeat(PeerId(from.id));
        let answer_from_pending = message.get_msg_type() == MessageType::MsgAppendResponse
            && self.fsm.peer.is_leader()
            && self.fsm.peer.is_pending(PeerId(from.id));
        if let Err(e) = self.fsm.peer.raft_group.step(message) {
            warn!(region_id, error = %e, "raft rejected a message");
        }
        if let Some((index, previous)) = reserved {
            self.release_unaccepted_snapshot(index, previous);
        }
        if from.id == self.fsm.peer.raft_group.raft.leader_id {
            self.fsm.peer.leader_missing.heard_from_leader();
        }
        // A replica that needed a snapshot has caught up: PD waits for that to promote a
        // learner, so tell it now rather than at the next heartbeat tick.
        if answer_from_pending && !self.fsm.peer.is_pending(PeerId(from.id)) {
            self.heartbeat_pd();
        }
        if let Some(target) = self.fsm.peer.take_due_transfer(self.ctx, PeerId(from.id)) {
            self.fsm
                .peer
                .propose_transfer_leader(self.ctx, Some(target));
        }
    }

    fn on_tick(&mut self, tick: PeerTick) {
        match tick {
            PeerTick::Raft => {
                // Sent before it fell asleep.
                if self.fsm.peer.hibernate.is_asleep() {
                    return;
                }
                self.fsm.peer.raft_group.tick();
                self.fsm.peer.recover_stopped_apply();
                self.fsm.peer.process_reads(self.ctx);
                self.maybe_hibernate();
            }
            PeerTick::RaftLogGc => {
                if let Err(e) = self.fsm.peer.compact_raft_log(self.ctx) {
                    warn!(region_id = self.fsm.region_id(), error = %e, "raft log compaction failed");
                }
            }
            PeerTick::PdHeartbeat => {
                if self.fsm.peer.is_leader() {
                    self.heartbeat_pd();
                }
            }
            PeerTick::SplitRegionCheck => self.maybe_check_split(),
            PeerTick::CheckPeerStaleState => self.on_check_stale_state_tick(),
        }
    }

    fn on_apply_res(&mut self, res: crate::msg::ApplyRes) {
        self.fsm.peer.written_bytes += res.written_bytes;
        self.fsm.peer.size_diff_hint += res.written_bytes;
        self.fsm.peer.keys_diff_hint += res.written_commit_keys;
        self.fsm.peer.written_keys += res.written_keys;
        for result in res.exec_results {
            match result {
                ExecResult::ChangePeer {
                    conf_change,
                    region,
                } => {
                    self.on_change_peer(conf_change, region);
                }
                ExecResult::Split { regions } => self.on_split(regions),
            }
            if self.fsm.stopped {
                return;
            }
        }
        if self.fsm.destroy_after_apply {
            // Its results still count (a split's new regions are not this peer's to delete),
            // but a peer being destroyed serves nothing more.
            return;
        }
        self.fsm.peer.on_applied(self.ctx, &res.apply_state);
    }
}

/// Whether a raft message may create a new peer: only messages a leader or candidate sends.
pub fn is_initial_message(msg: &eraftpb::Message) -> bool {
    matches!(
        msg.get_msg_type(),
        MessageType::MsgRequestVote
            | MessageType::MsgRequestPreVote
            | MessageType::MsgAppend
            | MessageType::MsgHeartbeat
            | MessageType::MsgSnapshot
    )
}
