//! The peer FSM (seed: `PeerFsm` / `PeerFsmDelegate`): one per region replica on the raft
//! poller. It turns each message into raft-rs calls and follows up on apply results.

use batch_system::{BasicMailbox, Fsm};
use crossbeam::channel::Receiver;
use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, CF_RAFT, DATA_CFS};
use kvproto::metapb;
use kvproto::pdpb;
use kvproto::raft_cmdpb::{
    AdminCmdType, AdminRequest, BatchSplitRequest, ChangePeerRequest, ChangePeerType,
    RaftCmdRequest, RaftRequestHeader, SplitRequest, TransferLeaderRequest,
};
use kvproto::raft_serverpb::{PeerState, RaftApplyState, RaftMessage, RegionLocalState};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{self, ConfChangeType, MessageType};
use raft::SnapshotStatus;
use raft_log_engine::{clear_region, RaftLogEngine};
use tracing::{error, info, warn};
use types::RegionId;

use crate::errors::{Error, Result};
use crate::fsm::{ApplyFsm, ApplyMsg, PollContext};
use crate::msg::{Callback, ExecResult, PeerMsg, PeerTick, StoreMsg};
use crate::pd::PdTask;
use crate::peer::Peer;
use crate::peer_storage::{load_apply_state, write_initial_raft_state};
use crate::util;

/// A new peer's mailbox and its apply FSM's mailbox.
pub type Mailboxes<EK, ER> = (BasicMailbox<PeerFsm<EK, ER>>, BasicMailbox<ApplyFsm<EK>>);

pub struct PeerFsm<EK: KvEngine, ER: RaftLogEngine> {
    pub peer: Peer<EK, ER>,
    receiver: Receiver<PeerMsg<EK::Snapshot>>,
    mailbox: Option<BasicMailbox<PeerFsm<EK, ER>>>,
    stopped: bool,
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
    /// Creates the FSM of an initialized region on this store, with its apply FSM's mailbox.
    ///
    /// # Errors
    ///
    /// Engine or raft errors while loading the peer's state.
    pub fn create(ctx: &PollContext<EK, ER>, region: metapb::Region) -> Result<Mailboxes<EK, ER>> {
        let peer = *util::find_peer(&region, ctx.store_id).ok_or_else(|| {
            Error::Other(format!(
                "region {} has no peer on store {}",
                region.id, ctx.store_id
            ))
        })?;
        let apply_state = load_apply_state(&ctx.kv, region.id)?.ok_or(Error::RegionNotFound {
            region_id: region.id,
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

    fn build(
        ctx: &PollContext<EK, ER>,
        region: metapb::Region,
        peer: metapb::Peer,
        apply_state: RaftApplyState,
    ) -> Result<Mailboxes<EK, ER>> {
        let (apply_mailbox, _) = ApplyFsm::create(region.clone(), peer.id, apply_state);
        let peer = Peer::new(ctx, region, peer, &apply_state)?;
        let (sender, receiver) = crossbeam::channel::unbounded();
        let fsm = PeerFsm {
            peer,
            receiver,
            mailbox: None,
            stopped: false,
        };
        Ok((BasicMailbox::new(sender, Box::new(fsm)), apply_mailbox))
    }

    pub fn receiver(&self) -> &Receiver<PeerMsg<EK::Snapshot>> {
        &self.receiver
    }

    pub fn region_id(&self) -> u64 {
        self.peer.region_id
    }
}

/// Handles the messages of one peer FSM with the poller's context.
pub struct PeerFsmDelegate<'a, EK: KvEngine, ER: RaftLogEngine> {
    fsm: &'a mut PeerFsm<EK, ER>,
    ctx: &'a PollContext<EK, ER>,
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
                        region_id: self.fsm.region_id(),
                    },
                    0,
                );
            }
            return;
        }
        match msg {
            PeerMsg::RaftMessage(m) => self.on_raft_message(*m),
            PeerMsg::RaftCommand(cmd) => {
                let cmd = *cmd;
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
                self.fsm.peer.raft_group.report_snapshot(to_peer_id, status);
            }
            PeerMsg::Unreachable { to_peer_id } => {
                self.fsm.peer.raft_group.report_unreachable(to_peer_id);
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
            PeerMsg::ApplyStopped => self.fsm.peer.on_apply_stopped(self.ctx),
            PeerMsg::Campaign => {
                if let Err(e) = self.fsm.peer.raft_group.campaign() {
                    warn!(region_id = self.fsm.region_id(), error = %e, "campaign failed");
                }
            }
        }
    }

    /// Handles raft's ready after a batch of messages.
    pub fn collect_ready(&mut self) {
        if self.fsm.stopped {
            return;
        }
        match self.fsm.peer.handle_ready(self.ctx) {
            Ok(outcome) => {
                if outcome.role_changed && self.fsm.peer.is_leader() {
                    self.heartbeat_pd();
                }
                if outcome.snapshot_applied {
                    self.fsm.peer.update_read_delegate(self.ctx);
                }
            }
            Err(e) => {
                // Without its log the peer cannot go on; a restart replays from disk.
                error!(region_id = self.fsm.region_id(), error = %e, "failed to persist raft ready; peer stops");
                self.destroy(false);
            }
        }
    }

    fn on_raft_message(&mut self, msg: RaftMessage) {
        let region_id = self.fsm.region_id();
        if msg.is_tombstone {
            self.on_tombstone_message(&msg);
            return;
        }
        let Some(from) = msg.from_peer else {
            return;
        };
        let message = match eraftpb::Message::parse_from_bytes(&msg.message) {
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
        if message.get_msg_type() == MessageType::MsgSnapshot {
            if let Some(reason) = self.snapshot_conflict(message.get_snapshot()) {
                info!(region_id, %reason, "snapshot dropped");
                return;
            }
        }
        self.fsm.peer.insert_peer_cache(from);
        self.fsm.peer.record_heartbeat(from.id);
        let answer_from_pending = message.get_msg_type() == MessageType::MsgAppendResponse
            && self.fsm.peer.is_leader()
            && self
                .fsm
                .peer
                .pending_peers()
                .iter()
                .any(|p| p.id == from.id);
        if let Err(e) = self.fsm.peer.raft_group.step(message) {
            warn!(region_id, error = %e, "raft rejected a message");
        }
        // A replica that needed a snapshot has caught up: PD waits for that to promote a
        // learner, so tell it now rather than at the next heartbeat tick.
        if answer_from_pending
            && !self
                .fsm
                .peer
                .pending_peers()
                .iter()
                .any(|p| p.id == from.id)
        {
            self.heartbeat_pd();
        }
    }

    /// Why a snapshot must not be applied here, if it must not: it is older than the region
    /// this peer has, or its range overlaps another region of this store (a stale snapshot cut
    /// before a split, arriving after the split-off region's own snapshot; applying it would
    /// delete that region's data).
    fn snapshot_conflict(&self, snapshot: &eraftpb::Snapshot) -> Option<String> {
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
            region_id,
            &snap_region.start_key,
            &snap_region.end_key,
        );
        overlap.map(|other| format!("its range overlaps region {other} on this store"))
    }

    /// A message from a peer that the region no longer has (its epoch is older than ours).
    fn is_from_removed_peer(&self, msg: &RaftMessage, from: &metapb::Peer) -> bool {
        let region = &self.fsm.peer.region;
        if !self.fsm.peer.is_initialized() || util::find_peer_by_id(region, from.id).is_some() {
            return false;
        }
        let ours = region.region_epoch.unwrap_or_default();
        let theirs = msg.region_epoch.unwrap_or_default();
        theirs.conf_ver < ours.conf_ver
    }

    fn send_tombstone(&self, msg: &RaftMessage, to: metapb::Peer) {
        info!(
            region_id = msg.region_id,
            to_peer = to.id,
            to_store = to.store_id,
            "telling a removed peer to destroy itself"
        );
        self.ctx.trans.send(RaftMessage {
            region_id: msg.region_id,
            from_peer: Some(self.fsm.peer.peer),
            to_peer: Some(to),
            message: Vec::new(),
            region_epoch: self.fsm.peer.region.region_epoch,
            is_tombstone: true,
            start_key: Vec::new(),
            end_key: Vec::new(),
        });
    }

    fn on_tombstone_message(&mut self, msg: &RaftMessage) {
        let ours = self.fsm.peer.region.region_epoch.unwrap_or_default();
        let theirs = msg.region_epoch.unwrap_or_default();
        let for_us = msg.to_peer.is_some_and(|p| p.id == self.fsm.peer.peer.id);
        if for_us && (!self.fsm.peer.is_initialized() || theirs.conf_ver > ours.conf_ver) {
            info!(
                region_id = self.fsm.region_id(),
                "peer was removed from its region; destroying it"
            );
            self.destroy(true);
        }
    }

    fn on_tick(&mut self, tick: PeerTick) {
        match tick {
            PeerTick::Raft => {
                self.fsm.peer.raft_group.tick();
                self.fsm.peer.recover_stopped_apply();
                self.fsm.peer.process_reads(self.ctx);
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
        }
    }

    /// Hands the region to the split checker once enough was written to it since the last
    /// check and it may be over its limits; only the leader checks.
    fn maybe_check_split(&mut self) {
        let peer = &mut self.fsm.peer;
        let written = (peer.size_diff_hint, peer.keys_diff_hint);
        if !peer.is_leader()
            || written.0 < self.ctx.cfg.region_split_check_diff.0
            || !self
                .ctx
                .split_checker
                .config()
                .may_exceed(peer.last_checked, written)
        {
            return;
        }
        peer.size_diff_hint = 0;
        peer.keys_diff_hint = 0;
        let region = (*peer.region).clone();
        let region_id = region.id;
        let region_epoch = region.region_epoch.unwrap_or_default();
        let router = self.ctx.router.clone();
        self.ctx
            .split_checker
            .schedule(self.ctx.kv.clone(), region, move |result| {
                let msg = PeerMsg::SplitCheckResult {
                    region_epoch,
                    result,
                };
                let _ = router.force_send(region_id, msg);
            });
    }

    fn on_split_check_result(
        &mut self,
        region_epoch: metapb::RegionEpoch,
        result: crate::split_check::CheckResult,
    ) {
        let peer = &mut self.fsm.peer;
        let current = peer.region.region_epoch.unwrap_or_default();
        if !peer.is_leader() || current.version != region_epoch.version {
            // Split or moved meanwhile; the next check sees the new region.
            return;
        }
        peer.last_checked = Some((result.size, result.keys));
        if result.split_keys.is_empty() {
            return;
        }
        self.ctx.pd_scheduler.schedule(PdTask::AskBatchSplit {
            region: (*peer.region).clone(),
            split_keys: result.split_keys,
            callback: None,
        });
    }

    fn on_apply_res(&mut self, res: crate::msg::ApplyRes) {
        self.fsm.peer.written_bytes += res.written_bytes;
        self.fsm.peer.size_diff_hint += res.written_bytes;
        self.fsm.peer.keys_diff_hint += res.written_keys;
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
        self.fsm.peer.on_applied(self.ctx, &res.apply_state);
    }

    fn on_change_peer(&mut self, conf_change: eraftpb::ConfChange, region: metapb::Region) {
        let peer = &mut self.fsm.peer;
        if let Err(e) = peer.raft_group.apply_conf_change(&conf_change) {
            warn!(region_id = peer.region_id, error = %e, "raft refused an applied conf change");
        }
        let removed_self = conf_change.get_change_type() == ConfChangeType::RemoveNode
            && conf_change.node_id == peer.peer.id;
        peer.set_region(region.clone());
        self.ctx.store_meta.lock().set_region(&region);
        if removed_self {
            info!(
                region_id = region.id,
                "this peer was removed from the region; destroying it"
            );
            self.destroy(true);
            return;
        }
        peer.update_read_delegate(self.ctx);
        if peer.is_leader() {
            self.heartbeat_pd();
        }
    }

    fn on_split(&mut self, regions: Vec<metapb::Region>) {
        let region_id = self.fsm.region_id();
        let is_leader = self.fsm.peer.is_leader();
        let mut new_regions = Vec::new();
        // One check proposes at most ten keys: measure the derived region again.
        self.fsm.peer.size_diff_hint = self.ctx.cfg.region_split_check_diff.0;
        self.fsm.peer.last_checked = None;
        for region in &regions {
            if region.id == region_id {
                self.fsm.peer.set_region(region.clone());
                self.ctx.store_meta.lock().set_region(region);
            } else {
                new_regions.push(region.clone());
            }
        }
        self.fsm.peer.update_read_delegate(self.ctx);
        // The new regions' peers must exist before their first raft message is routed.
        let _ = self.ctx.router.force_send_control(StoreMsg::SplitRegions {
            regions: new_regions,
            campaign: is_leader,
        });
        if is_leader {
            self.ctx
                .pd_scheduler
                .schedule(PdTask::ReportBatchSplit { regions });
            self.heartbeat_pd();
        }
    }

    fn heartbeat_pd(&mut self) {
        let peer = &mut self.fsm.peer;
        let Some(region) = peer.region_for_pd() else {
            return;
        };
        let start = keys::data_key(&region.start_key);
        let end = keys::data_end_key(&region.end_key);
        if let Ok(stats) =
            self.ctx
                .kv
                .approximate_range_stats(engine_traits::CF_DEFAULT, &start, &end)
        {
            peer.approximate_size = stats.size;
            peer.approximate_keys = stats.keys;
        }
        let down_threshold = self.ctx.cfg.max_peer_down_duration.0;
        self.ctx.pd_scheduler.schedule(PdTask::RegionHeartbeat {
            region,
            leader: peer.peer,
            down_peers: peer
                .down_peers(down_threshold)
                .into_iter()
                .map(|(p, secs)| pdpb::PeerStats {
                    peer: Some(p),
                    down_seconds: secs,
                })
                .collect(),
            pending_peers: peer.pending_peers(),
            approximate_size: peer.approximate_size,
            approximate_keys: peer.approximate_keys,
            term: peer.term(),
            written_bytes: std::mem::take(&mut peer.written_bytes),
            written_keys: std::mem::take(&mut peer.written_keys),
        });
    }

    fn admin_request(&self, admin: AdminRequest) -> RaftCmdRequest {
        let peer = &self.fsm.peer;
        RaftCmdRequest {
            header: Some(RaftRequestHeader {
                region_id: peer.region_id,
                peer: Some(peer.peer),
                region_epoch: peer.region.region_epoch,
                term: peer.term(),
            }),
            requests: Vec::new(),
            admin_request: Some(admin),
        }
    }

    fn on_pd_operator(&mut self, resp: pdpb::RegionHeartbeatResponse) {
        if !self.fsm.peer.is_leader() {
            return;
        }
        let current = self.fsm.peer.region.region_epoch.unwrap_or_default();
        if let Some(epoch) = resp.region_epoch {
            if epoch.version != current.version || epoch.conf_ver != current.conf_ver {
                info!(
                    region_id = self.fsm.region_id(),
                    "operator for an older epoch ignored"
                );
                return;
            }
        }
        if let Some(change) = resp.change_peer.as_ref().filter(|c| c.peer.is_some()) {
            let change_type = match pdpb::ConfChangeType::try_from(change.change_type) {
                Ok(pdpb::ConfChangeType::RemoveNode) => ChangePeerType::RemoveNode,
                Ok(pdpb::ConfChangeType::AddLearnerNode) => ChangePeerType::AddLearnerNode,
                _ => ChangePeerType::AddNode,
            };
            let request = self.admin_request(AdminRequest {
                cmd_type: AdminCmdType::ChangePeer as i32,
                change_peer: Some(ChangePeerRequest {
                    change_type: change_type as i32,
                    peer: change.peer,
                }),
                ..Default::default()
            });
            self.propose_internal(request);
        } else if let Some(transfer) = resp.transfer_leader.as_ref() {
            let request = self.admin_request(AdminRequest {
                cmd_type: AdminCmdType::TransferLeader as i32,
                transfer_leader: Some(TransferLeaderRequest {
                    peer: transfer.peer,
                }),
                ..Default::default()
            });
            self.propose_internal(request);
        } else if let Some(split) = resp.split_region.as_ref() {
            if split.keys.is_empty() {
                return;
            }
            let region = (*self.fsm.peer.region).clone();
            self.ctx.pd_scheduler.schedule(PdTask::AskBatchSplit {
                region,
                split_keys: split.keys.clone(),
                callback: None,
            });
        }
    }

    fn propose_internal(&mut self, request: RaftCmdRequest) {
        let region_id = self.fsm.region_id();
        let callback = Callback::Write(Box::new(
            move |result: crate::msg::WriteResult| match result
                .map(|resp| resp.header.and_then(|h| h.error))
            {
                Ok(None) => {}
                Ok(Some(error)) => {
                    info!(region_id, error = %error.message, "admin command failed");
                }
                Err(undetermined) => info!(region_id, %undetermined, "admin command"),
            },
        ));
        self.fsm.peer.propose(self.ctx, request, callback);
    }

    /// A client's SplitRegion: only the leader of the epoch the client saw splits, at keys
    /// strictly inside the region, in order; PD allocates the ids as for any other split.
    fn on_split_region(
        &mut self,
        epoch: metapb::RegionEpoch,
        mut split_keys: Vec<Vec<u8>>,
        callback: crate::msg::WriteCallback,
    ) {
        let peer = &self.fsm.peer;
        let term = peer.term();
        let fail = |callback: crate::msg::WriteCallback, error: Error| {
            callback(Ok(crate::msg::error_response(error, term)));
        };
        if !peer.is_leader() {
            let leader = peer.leader();
            return fail(
                callback,
                Error::NotLeader {
                    region_id: peer.region_id,
                    leader,
                },
            );
        }
        let region = &peer.region;
        let current = region.region_epoch.unwrap_or_default();
        if current.version != epoch.version || current.conf_ver != epoch.conf_ver {
            return fail(
                callback,
                Error::EpochNotMatch {
                    message: format!("region {} has changed since the split was asked", region.id),
                    current_regions: vec![(**region).clone()],
                },
            );
        }
        split_keys.sort();
        split_keys.dedup();
        for key in &split_keys {
            if key.is_empty()
                || key.as_slice() <= region.start_key.as_slice()
                || !keys::in_range(key, &region.start_key, &region.end_key)
            {
                return fail(
                    callback,
                    Error::KeyNotInRegion {
                        key: key.clone(),
                        region: Box::new((**region).clone()),
                    },
                );
            }
        }
        if split_keys.is_empty() {
            return fail(callback, Error::Other("no split keys given".into()));
        }
        self.ctx.pd_scheduler.schedule(PdTask::AskBatchSplit {
            region: (**region).clone(),
            split_keys,
            callback: Some(callback),
        });
    }

    fn on_split_ids(
        &mut self,
        epoch: metapb::RegionEpoch,
        split_keys: Vec<Vec<u8>>,
        ids: Vec<pdpb::SplitId>,
        callback: Option<crate::msg::WriteCallback>,
    ) {
        if ids.len() != split_keys.len() {
            warn!(
                region_id = self.fsm.region_id(),
                "PD returned a wrong number of split ids"
            );
            if let Some(callback) = callback {
                let error = Error::Other("PD returned a wrong number of split ids".into());
                callback(Ok(crate::msg::error_response(error, self.fsm.peer.term())));
            }
            return;
        }
        let requests = split_keys
            .into_iter()
            .zip(ids)
            .map(|(split_key, id)| SplitRequest {
                split_key,
                new_region_id: id.new_region_id,
                new_peer_ids: id.new_peer_ids,
            })
            .collect();
        let mut request = self.admin_request(AdminRequest {
            cmd_type: AdminCmdType::BatchSplit as i32,
            splits: Some(BatchSplitRequest { requests }),
            ..Default::default()
        });
        if let Some(header) = request.header.as_mut() {
            header.region_epoch = Some(epoch);
        }
        match callback {
            Some(callback) => {
                let callback = Callback::Write(callback);
                self.fsm.peer.propose(self.ctx, request, callback);
            }
            None => self.propose_internal(request),
        }
    }

    /// Removes this peer: answers what is pending, marks it tombstone, deletes its data (when
    /// `clean`) and raft log, and stops the FSM.
    pub fn destroy(&mut self, clean: bool) {
        let peer = &mut self.fsm.peer;
        let region_id = peer.region_id;
        let peer_id = peer.peer.id;
        peer.pending_remove = true;
        peer.fail_pending(|| Error::RegionNotFound { region_id });
        peer.abandon_proposals("the replica was destroyed before the entry was committed");
        let _ = self
            .ctx
            .apply_router
            .force_send(region_id, ApplyMsg::Destroy);
        if clean {
            if let Err(e) = self.clean_up() {
                error!(region_id, error = %e, "failed to clean up a destroyed peer");
            }
        }
        {
            let mut meta = self.ctx.store_meta.lock();
            if meta
                .regions
                .get(&region_id)
                .is_some_and(|r| r.id == region_id)
            {
                meta.remove_region(region_id);
            }
        }
        let _ = self
            .ctx
            .router
            .force_send_control(StoreMsg::PeerDestroyed { region_id, peer_id });
        self.fsm.stopped = true;
    }

    fn clean_up(&self) -> Result<()> {
        let peer = &self.fsm.peer;
        let region = &peer.region;
        let mut batch = self.ctx.kv.write_batch();
        if peer.is_initialized() {
            // No other region on this store owns this range: deleting the data is safe.
            let overlap = self.ctx.store_meta.lock().overlapping_region(
                region.id,
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
        let state = RegionLocalState {
            state: PeerState::Tombstone as i32,
            region: Some((**region).clone()),
        };
        batch.put_cf(
            CF_RAFT,
            &keys::region_state_key(region.id),
            &state.encode_to_vec(),
        )?;
        batch.delete_cf(CF_RAFT, &keys::apply_state_key(region.id))?;
        batch.write_opt(WriteOptions { sync: true })?;
        clear_region(&self.ctx.raft, RegionId(region.id))?;
        Ok(())
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

/// Prepares the raft log of a region created by a split before its peer is built.
///
/// # Errors
///
/// Raft log errors.
pub fn init_split_region<ER: RaftLogEngine>(raft: &ER, region: &metapb::Region) -> Result<()> {
    write_initial_raft_state(raft, region)
}
