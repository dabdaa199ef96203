//! One replica of a region: its raft-rs `RawNode`, the proposals waiting to commit, reads
//! waiting for a read index, and the leader lease.
//!
//! The write path: a command is checked (store, leader, epoch, keys, size), proposed, and
//! remembered with its callback; when raft commits it, the entries and the proposals go to the
//! region's apply FSM, which answers the callbacks after writing. `handle_ready` persists new
//! entries and the hard state (synced) before any message that depends on them is sent.
//!
//! The read path: under a valid lease the leader answers at once with an engine snapshot;
//! otherwise it asks raft for a read index and answers once that index is applied.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_traits::{KvEngine, Snapshot};
use kvproto::metapb;
use kvproto::raft_cmdpb::{
    AdminCmdType, ChangePeerType, CmdType, RaftCmdRequest, RaftCmdResponse, RaftResponseHeader,
};
use kvproto::raft_serverpb::{RaftApplyState, RaftMessage};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{self, ConfChange, ConfChangeType, Entry, MessageType};
use raft::{RawNode, ReadOnlyOption, StateRole, Storage as _};
use raft_log_engine::RaftLogEngine;
use tracing::{debug, info, warn};

use crate::errors::{Error, Result};
use crate::fsm::{ApplyFsm, ApplyMsg, ApplyTask, PollContext, Proposal};
use crate::log_gc::DurableApplied;
use crate::logger::raft_logger;
use crate::msg::{Callback, ReadResponse, Undetermined};
use crate::peer_storage::{apply_snapshot_data, conf_state_from_region, PeerStorage};
use crate::region_snapshot::RegionSnapshot;
use crate::store_meta::ReadDelegate;
use crate::util;

/// A read waiting for its read index to be confirmed and applied.
struct PendingRead<S: Snapshot> {
    id: u64,
    /// Checked again when answered: the region may have split meanwhile.
    request: RaftCmdRequest,
    callback: Callback<S>,
    propose_time: Instant,
    read_index: Option<u64>,
}

/// What changed in a ready that the FSM must follow up on.
#[derive(Default)]
pub struct ReadyOutcome {
    pub role_changed: bool,
    pub snapshot_applied: bool,
}

pub struct Peer<EK: KvEngine, ER: RaftLogEngine> {
    pub region_id: u64,
    pub peer: metapb::Peer,
    pub region: Arc<metapb::Region>,
    pub raft_group: RawNode<PeerStorage<EK, ER>>,
    peer_cache: HashMap<u64, metapb::Peer>,
    /// Proposed, not yet committed; in index order.
    proposals: VecDeque<Proposal<EK::Snapshot>>,
    pending_reads: VecDeque<PendingRead<EK::Snapshot>>,
    /// The apply FSM stopped after an error: the peer serves nothing, hands nothing to apply,
    /// and waits for a snapshot to start over with a new one.
    apply_stopped: bool,
    /// The last committed split entry not yet applied here: no lease until it is.
    pending_split_index: Option<u64>,
    /// Reads that arrived before this leader committed an entry of its term.
    waiting_reads: Vec<(RaftCmdRequest, Callback<EK::Snapshot>)>,
    next_read_id: u64,
    lease_expire: Option<Instant>,
    pub applied_index: u64,
    pub applied_term: u64,
    /// The applied index a data-engine sync covered, for log compaction.
    durable_applied: DurableApplied,
    /// The highest index handed to the apply FSM.
    committed_sent: u64,
    /// Last time each other peer was heard from, for PD's down peers.
    peer_heartbeats: HashMap<u64, Instant>,
    pub pending_remove: bool,
    pub approximate_size: u64,
    pub approximate_keys: u64,
    pub written_bytes: u64,
    pub written_keys: u64,
    /// Bytes and keys written since the region's size was last checked. The bytes start at
    /// the check threshold, so a new leader checks its region once.
    pub size_diff_hint: u64,
    pub keys_diff_hint: u64,
    /// Size and keys the last check measured; `None` until a check as leader.
    pub last_checked: Option<(u64, u64)>,
}

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Creates the peer `peer` of `region` (which may be an uninitialized stub with no range
    /// and no peers, for a peer created by a raft message).
    ///
    /// # Errors
    ///
    /// Raft log or engine errors, or a raft configuration refused by raft-rs.
    pub fn new(
        ctx: &PollContext<EK, ER>,
        region: metapb::Region,
        peer: metapb::Peer,
        apply_state: &RaftApplyState,
    ) -> Result<Self> {
        let storage = PeerStorage::open(
            ctx.kv.clone(),
            ctx.raft.clone(),
            &region,
            ctx.snap_generator.clone(),
        )?;
        recover_log_behind_apply(&storage, &region, apply_state)?;
        // Applied entries were committed, even if the commit index in the hard state was not
        // persisted after them; raft-rs refuses an applied index above the commit index.
        let mut hard_state = storage.raft_log.hard_state();
        if hard_state.commit < apply_state.applied_index {
            hard_state.commit = apply_state.applied_index;
            storage.raft_log.set_hard_state(&hard_state)?;
        }
        let cfg = &ctx.cfg;
        let raft_cfg = raft::Config {
            id: peer.id,
            election_tick: cfg.raft_election_timeout_ticks,
            heartbeat_tick: cfg.raft_heartbeat_ticks,
            max_size_per_msg: cfg.raft_max_size_per_msg.0,
            max_inflight_msgs: cfg.raft_max_inflight_msgs,
            applied: apply_state.applied_index,
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            ..Default::default()
        };
        let logger = raft_logger(region.id, peer.id);
        let raft_group = RawNode::new(&raft_cfg, storage, &logger)?;
        let mut p = Peer {
            region_id: region.id,
            peer,
            region: Arc::new(region),
            raft_group,
            peer_cache: HashMap::new(),
            proposals: VecDeque::new(),
            pending_reads: VecDeque::new(),
            waiting_reads: Vec::new(),
            pending_split_index: None,
            apply_stopped: false,
            next_read_id: 1,
            lease_expire: None,
            applied_index: apply_state.applied_index,
            applied_term: apply_state.applied_term,
            durable_applied: DurableApplied::default(),
            committed_sent: apply_state.applied_index,
            peer_heartbeats: HashMap::new(),
            pending_remove: false,
            approximate_size: 0,
            approximate_keys: 0,
            written_bytes: 0,
            written_keys: 0,
            size_diff_hint: ctx.cfg.region_split_check_diff.0,
            keys_diff_hint: 0,
            last_checked: None,
        };
        p.refresh_peer_cache();
        Ok(p)
    }

    pub fn is_leader(&self) -> bool {
        self.raft_group.raft.state == StateRole::Leader
    }

    pub fn term(&self) -> u64 {
        self.raft_group.raft.term
    }

    pub fn is_initialized(&self) -> bool {
        self.raft_group.store().is_initialized()
    }

    /// The leader this peer knows of, if any.
    pub fn leader(&self) -> Option<metapb::Peer> {
        let leader_id = self.raft_group.raft.leader_id;
        (leader_id != raft::INVALID_ID)
            .then(|| self.peer_cache.get(&leader_id).copied())
            .flatten()
    }

    pub fn set_region(&mut self, region: metapb::Region) {
        self.region = Arc::new(region);
        self.refresh_peer_cache();
    }

    fn refresh_peer_cache(&mut self) {
        for peer in &self.region.peers {
            self.peer_cache.insert(peer.id, *peer);
        }
    }

    /// Remembers a peer learned from a message, so replies can reach it.
    pub fn insert_peer_cache(&mut self, peer: metapb::Peer) {
        self.peer_cache.insert(peer.id, peer);
    }

    pub fn record_heartbeat(&mut self, peer_id: u64) {
        self.peer_heartbeats.insert(peer_id, Instant::now());
    }

    /// Peers of the region not heard from for `threshold` (leader only), with seconds down.
    pub fn down_peers(&self, threshold: Duration) -> Vec<(metapb::Peer, u64)> {
        let now = Instant::now();
        self.region
            .peers
            .iter()
            .filter(|p| p.id != self.peer.id)
            .filter_map(|p| {
                let last = self.peer_heartbeats.get(&p.id)?;
                let silent = now.saturating_duration_since(*last);
                (silent >= threshold).then_some((*p, silent.as_secs()))
            })
            .collect()
    }

    /// Peers whose log lags behind the leader's compaction point (they need a snapshot).
    pub fn pending_peers(&self) -> Vec<metapb::Peer> {
        let truncated = self.raft_group.store().raft_log.truncated().0;
        let mut pending = Vec::new();
        for (id, progress) in self.raft_group.raft.prs().iter() {
            if *id != self.peer.id && progress.matched < truncated {
                if let Some(peer) = self.peer_cache.get(id) {
                    pending.push(*peer);
                }
            }
        }
        pending
    }

    fn lease_valid(&self, now: Instant) -> bool {
        self.raft_group.raft.lead_transferee.is_none()
            && self.pending_split_index.is_none()
            && self.lease_expire.is_some_and(|expire| now < expire)
    }

    fn renew_lease(&mut self, ctx: &PollContext<EK, ER>, since: Instant) {
        // A leader handing over leadership gets no new lease: the target campaigns without
        // waiting for any lease to run out.
        // Nor does a leader with a committed split it has not applied: once the followers
        // apply it, the split-off region elects its own leader, which this lease knows
        // nothing of.
        if self.raft_group.raft.lead_transferee.is_some() || self.pending_split_index.is_some() {
            return;
        }
        let expire = since + ctx.cfg.max_leader_lease();
        if self.lease_expire.is_none_or(|old| old < expire) {
            self.lease_expire = Some(expire);
        }
    }

    /// Publishes what a local read must check, or withdraws it when not leader.
    pub fn update_read_delegate(&self, ctx: &PollContext<EK, ER>) {
        let mut meta = ctx.store_meta.lock();
        if self.is_leader() && !self.pending_remove && !self.apply_stopped {
            meta.readers.insert(
                self.region_id,
                ReadDelegate {
                    region: self.region.clone(),
                    peer_id: self.peer.id,
                    term: self.term(),
                    applied_term: self.applied_term,
                    lease_expire: self.lease_expire,
                },
            );
        } else {
            meta.readers.remove(&self.region_id);
        }
    }

    // ---- proposing -----------------------------------------------------------------------

    /// Checks a command against this peer and proposes it, or answers it with an error.
    pub fn propose(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) {
        if let Err(e) = self.check_proposal(ctx, &request) {
            callback.invoke_with_error(e, self.term());
            return;
        }
        let is_read = !request.requests.is_empty()
            && request
                .requests
                .iter()
                .all(|r| r.cmd_type() == CmdType::Snap);
        let result = if request.admin_request.is_some() {
            self.propose_admin(ctx, request, callback)
        } else if is_read {
            self.read(ctx, request, callback);
            Ok(())
        } else {
            self.propose_write(ctx, request, callback)
        };
        if let Err((e, callback)) = result {
            callback.invoke_with_error(e, self.term());
        }
    }

    fn check_proposal(&self, ctx: &PollContext<EK, ER>, request: &RaftCmdRequest) -> Result<()> {
        if let Some(peer) = request.header.as_ref().and_then(|h| h.peer) {
            if peer.store_id != 0 && peer.store_id != ctx.store_id {
                return Err(Error::StoreNotMatch {
                    request_store_id: peer.store_id,
                    actual_store_id: ctx.store_id,
                });
            }
        }
        if self.pending_remove {
            return Err(Error::PendingRemove {
                region_id: self.region_id,
            });
        }
        if self.apply_stopped {
            return Err(Error::ApplyStopped {
                region_id: self.region_id,
            });
        }
        if !self.is_leader() {
            return Err(Error::NotLeader {
                region_id: self.region_id,
                leader: self.leader(),
            });
        }
        util::check_region_epoch(request, &self.region)?;
        util::check_write_keys(request, &self.region)
    }

    fn propose_write(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        let data = request.encode_to_vec();
        let max = ctx.cfg.raft_entry_max_size.0;
        if data.len() as u64 > max {
            return Err((
                Error::RaftEntryTooLarge {
                    region_id: self.region_id,
                    entry_size: data.len() as u64,
                },
                callback,
            ));
        }
        let (kind, context) = if request.admin_request.is_some() {
            ("split", vec![PROPOSAL_CONTEXT_SPLIT])
        } else {
            ("normal", vec![])
        };
        crate::metrics::PROPOSALS.with_label_values(&[kind]).inc();
        let last_before = self.raft_group.raft.raft_log.last_index();
        if let Err(e) = self.raft_group.propose(context, data) {
            return Err((self.proposal_dropped(e), callback));
        }
        self.push_proposal(last_before, callback)
    }

    fn push_proposal(
        &mut self,
        last_before: u64,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        let index = self.raft_group.raft.raft_log.last_index();
        if index == last_before {
            return Err((
                self.proposal_dropped(raft::Error::ProposalDropped),
                callback,
            ));
        }
        // The queue holds one leadership's proposals, in index order: a step-down abandons it.
        debug_assert!(self
            .proposals
            .back()
            .is_none_or(|p| p.index < index && p.term == self.term()));
        self.proposals.push_back(Proposal {
            index,
            term: self.term(),
            callback,
            propose_time: Instant::now(),
        });
        Ok(())
    }

    fn proposal_dropped(&self, e: raft::Error) -> Error {
        if self.is_leader() {
            Error::Other(format!("proposal dropped by raft: {e}; retry"))
        } else {
            Error::NotLeader {
                region_id: self.region_id,
                leader: self.leader(),
            }
        }
    }

    fn propose_admin(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        let admin = request
            .admin_request
            .as_ref()
            .expect("checked by the caller");
        match admin.cmd_type() {
            AdminCmdType::TransferLeader => {
                let target = admin.transfer_leader.as_ref().and_then(|t| t.peer);
                match target {
                    Some(peer) if peer.id != self.peer.id => {
                        info!(
                            region_id = self.region_id,
                            to_peer = peer.id,
                            "transferring leadership"
                        );
                        self.raft_group.transfer_leader(peer.id);
                        // The target may lead as soon as it hears from us: stop serving reads
                        // from the lease now (a local read would miss its writes).
                        self.lease_expire = None;
                        self.update_read_delegate(ctx);
                    }
                    _ => {}
                }
                callback.invoke_with_response(ok_response(self.term()));
                Ok(())
            }
            AdminCmdType::ChangePeer => {
                if let Err(e) = self.check_change_peer(&request) {
                    return Err((e, callback));
                }
                let change = admin.change_peer.as_ref().expect("checked");
                let peer = change.peer.expect("checked");
                let mut cc = ConfChange::default();
                cc.set_change_type(match change.change_type() {
                    ChangePeerType::AddNode => ConfChangeType::AddNode,
                    ChangePeerType::RemoveNode => ConfChangeType::RemoveNode,
                    ChangePeerType::AddLearnerNode => ConfChangeType::AddLearnerNode,
                });
                cc.node_id = peer.id;
                let data = request.encode_to_vec();
                cc.context = data.clone().into();
                info!(region_id = self.region_id, change = ?change.change_type(), peer_id = peer.id, store_id = peer.store_id, "proposing conf change");
                crate::metrics::PROPOSALS
                    .with_label_values(&["conf_change"])
                    .inc();
                let last_before = self.raft_group.raft.raft_log.last_index();
                if let Err(e) = self.raft_group.propose_conf_change(data, cc) {
                    return Err((self.proposal_dropped(e), callback));
                }
                self.push_proposal(last_before, callback)
            }
            AdminCmdType::BatchSplit => self.propose_write(ctx, request, callback),
            AdminCmdType::CompactLog | AdminCmdType::InvalidAdmin => Err((
                Error::Other(format!("unsupported admin command {:?}", admin.cmd_type())),
                callback,
            )),
        }
    }

    fn check_change_peer(&self, request: &RaftCmdRequest) -> Result<()> {
        let change = request
            .admin_request
            .as_ref()
            .and_then(|a| a.change_peer.as_ref())
            .ok_or_else(|| Error::Other("change peer request without change".into()))?;
        let peer = change
            .peer
            .ok_or_else(|| Error::Other("change peer request without peer".into()))?;
        if self.raft_group.raft.has_pending_conf() {
            return Err(Error::Other(format!(
                "region {} has a pending conf change; retry later",
                self.region_id
            )));
        }
        let existing = util::find_peer(&self.region, peer.store_id);
        match change.change_type() {
            // Adding a voter where the store has this very peer as a learner promotes it.
            ChangePeerType::AddNode
                if existing.is_some_and(|p| {
                    p.id == peer.id && p.role == metapb::PeerRole::Learner as i32
                }) => {}
            ChangePeerType::AddNode | ChangePeerType::AddLearnerNode => {
                if existing.is_some() {
                    return Err(Error::Other(format!(
                        "region {} already has a peer on store {}",
                        self.region_id, peer.store_id
                    )));
                }
            }
            ChangePeerType::RemoveNode => {
                if util::find_peer_by_id(&self.region, peer.id).is_none() {
                    return Err(Error::Other(format!(
                        "peer {} is not in region {}",
                        peer.id, self.region_id
                    )));
                }
                if peer.id == self.peer.id {
                    return Err(Error::Other(
                        "cannot remove the leader; transfer leadership first".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    // ---- reading -------------------------------------------------------------------------

    fn read(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) {
        let now = Instant::now();

        if self.lease_valid(now) && self.applied_term == self.term() {
            crate::metrics::PROPOSALS
                .with_label_values(&["lease_read"])
                .inc();
            self.respond_read(ctx, &request, callback);
            return;
        }
        if !self.raft_group.raft.commit_to_current_term() {
            self.waiting_reads.push((request, callback));
            return;
        }
        crate::metrics::PROPOSALS
            .with_label_values(&["read_index"])
            .inc();
        let id = self.next_read_id;
        self.next_read_id += 1;
        self.raft_group.read_index(id.to_be_bytes().to_vec());
        self.pending_reads.push_back(PendingRead {
            id,
            request,
            callback,
            propose_time: now,
            read_index: None,
        });
    }

    /// Answers a read with a snapshot of the region, unless the region changed (a split)
    /// since the read was checked: its snapshot would silently miss the part split off.
    fn respond_read(
        &self,
        ctx: &PollContext<EK, ER>,
        request: &RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) {
        if let Err(e) = util::check_region_epoch(request, &self.region) {
            callback.invoke_with_error(e, self.term());
            return;
        }
        let snapshot = RegionSnapshot::new(ctx.kv.snapshot(), self.region.clone());
        match callback {
            Callback::Read(cb) => cb(ReadResponse {
                response: ok_response(self.term()),
                snapshot: Some(snapshot),
            }),
            other => other.invoke_with_response(ok_response(self.term())),
        }
    }

    /// Answers reads whose read index is applied; retries reads that waited for this leader
    /// to commit in its term; fails reads that waited too long.
    pub fn process_reads(&mut self, ctx: &PollContext<EK, ER>) {
        if !self.waiting_reads.is_empty() && self.raft_group.raft.commit_to_current_term() {
            for (request, callback) in std::mem::take(&mut self.waiting_reads) {
                self.read(ctx, request, callback);
            }
        }
        while let Some(read) = self.pending_reads.front() {
            match read.read_index {
                Some(index) if index <= self.applied_index => {
                    let read = self.pending_reads.pop_front().expect("front exists");
                    self.respond_read(ctx, &read.request, read.callback);
                }
                _ => break,
            }
        }
        let timeout = ctx.cfg.election_timeout() * 2;
        let now = Instant::now();
        while self
            .pending_reads
            .front()
            .is_some_and(|r| r.read_index.is_none() && now.duration_since(r.propose_time) > timeout)
        {
            let read = self.pending_reads.pop_front().expect("front exists");
            read.callback.invoke_with_error(
                Error::Other("read index timed out; retry".into()),
                self.term(),
            );
        }
    }

    fn on_read_states(&mut self, ctx: &PollContext<EK, ER>, states: Vec<raft::ReadState>) {
        for state in states {
            let Ok(id) = <[u8; 8]>::try_from(state.request_ctx.as_slice()).map(u64::from_be_bytes)
            else {
                continue;
            };
            let mut confirmed_at = None;
            if let Some(read) = self.pending_reads.iter_mut().find(|r| r.id == id) {
                read.read_index = Some(state.index);
                confirmed_at = Some(read.propose_time);
            }
            if let Some(since) = confirmed_at {
                self.renew_lease(ctx, since);
            }
        }
    }

    /// Fails every waiting read and proposal: the peer lost leadership or is being removed.
    pub fn fail_pending(&mut self, error: impl Fn() -> Error) {
        let term = self.term();
        for read in self.pending_reads.drain(..) {
            read.callback.invoke_with_error(error(), term);
        }
        for (_, callback) in self.waiting_reads.drain(..) {
            callback.invoke_with_error(error(), term);
        }
    }

    /// Answers every proposal not yet seen committed as undetermined: this peer will not learn
    /// its fate (it lost leadership, or is destroyed), yet its entry may still commit.
    pub fn abandon_proposals(&mut self, reason: &'static str) {
        let term = self.term();
        let region_id = self.region_id;
        for proposal in self.proposals.drain(..) {
            let undetermined = Undetermined { region_id, reason };
            proposal.callback.invoke_undetermined(undetermined, term);
        }
    }

    // ---- ready ---------------------------------------------------------------------------

    /// Handles raft-rs's ready: persists, sends, hands committed entries to apply.
    ///
    /// # Errors
    ///
    /// Raft log or engine write failures; the caller treats them as fatal for the store.
    pub fn handle_ready(&mut self, ctx: &PollContext<EK, ER>) -> Result<ReadyOutcome> {
        let mut outcome = ReadyOutcome::default();
        if !self.raft_group.has_ready() {
            return Ok(outcome);
        }
        // A snapshot may only replace the data once everything handed to apply is applied (or
        // apply stopped, and only the snapshot can restart it).
        if self.raft_group.snap().is_some()
            && self.applied_index < self.committed_sent
            && !self.apply_stopped
        {
            return Ok(outcome);
        }
        let mut ready = self.raft_group.ready();
        if let Some(soft_state) = ready.ss() {
            outcome.role_changed = true;
            if soft_state.raft_state != StateRole::Leader {
                self.lease_expire = None;
            }
        }
        self.send_messages(ctx, ready.take_messages());
        let mut snapshot_index = None;
        if !ready.snapshot().is_empty() {
            self.apply_snapshot(ctx, ready.snapshot())?;
            snapshot_index = Some(ready.snapshot().get_metadata().index);
            outcome.snapshot_applied = true;
        }
        let committed = ready.take_committed_entries();
        self.hand_to_apply(ctx, committed);
        let read_states = ready.take_read_states();
        self.on_read_states(ctx, read_states);
        // A confirmed read index at or below the applied index is answered now, not when the
        // next tick or apply result comes by (an idle region's reads waited a whole tick).
        self.process_reads(ctx);
        self.raft_group
            .store()
            .raft_log
            .append(ready.entries(), ready.hs(), true)?;
        self.send_messages(ctx, ready.take_persisted_messages());
        // Not `advance`: it would tell raft that every committed entry handed out is applied,
        // while the apply FSM applies them later. raft learns the applied index from
        // `on_applied` (and here, for a snapshot, which is applied in place).
        let mut light = self.raft_group.advance_append(ready);
        if let Some(index) = snapshot_index {
            self.raft_group.advance_apply_to(index);
        }
        self.send_messages(ctx, light.take_messages());
        let committed = light.take_committed_entries();
        self.hand_to_apply(ctx, committed);
        if outcome.role_changed {
            self.on_role_changed(ctx);
        }
        Ok(outcome)
    }

    fn on_role_changed(&mut self, ctx: &PollContext<EK, ER>) {
        if self.is_leader() {
            info!(
                region_id = self.region_id,
                peer_id = self.peer.id,
                term = self.term(),
                "became leader"
            );
            self.peer_heartbeats.clear();
            let now = Instant::now();
            for peer in &self.region.peers {
                self.peer_heartbeats.insert(peer.id, now);
            }
            ctx.store_meta.lock().leader_changes += 1;
        } else {
            let leader = self.leader();
            let region_id = self.region_id;
            self.fail_pending(|| Error::NotLeader { region_id, leader });
            // Answered now rather than when (if ever) this peer sees the entries' fate, so
            // that the writers' latches are released and later writes, proposed by a new
            // leader, are ordered after these by that leader's log.
            self.abandon_proposals("the leader stepped down before the entry was committed");
        }
        self.update_read_delegate(ctx);
    }

    fn apply_snapshot(
        &mut self,
        ctx: &PollContext<EK, ER>,
        snapshot: &eraftpb::Snapshot,
    ) -> Result<()> {
        let (region, apply_state) = apply_snapshot_data(&ctx.kv, snapshot)?;
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
            region_id = self.region_id,
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
        ctx.store_meta.lock().set_region(&region);
        if self.apply_stopped {
            // The stopped apply FSM is gone: a new one starts from the snapshot.
            let (mailbox, _) = ApplyFsm::create(region, self.peer.id, apply_state);
            ctx.apply_router.register(self.region_id, mailbox);
            self.apply_stopped = false;
            info!(
                region_id = self.region_id,
                "apply restarted from a snapshot"
            );
            return Ok(());
        }
        let reset = ApplyMsg::Snapshot {
            region,
            apply_state,
            peer_id: self.peer.id,
        };
        if ctx.apply_router.force_send(self.region_id, reset).is_err() {
            warn!(
                region_id = self.region_id,
                "apply fsm is gone; snapshot state not forwarded"
            );
        }
        Ok(())
    }

    fn hand_to_apply(&mut self, ctx: &PollContext<EK, ER>, entries: Vec<Entry>) {
        let Some(last) = entries.last() else {
            return;
        };
        if self.apply_stopped {
            return;
        }
        let last_index = last.index;
        if let Some(split) = entries
            .iter()
            .rev()
            .find(|e| e.context.as_ref() == [PROPOSAL_CONTEXT_SPLIT])
        {
            self.pending_split_index = Some(split.index);
            if self.is_leader() {
                self.lease_expire = None;
                self.update_read_delegate(ctx);
            }
        }
        let mut proposals = Vec::new();
        let term = self.term();
        let mut newest_committed_proposal = None;
        while self
            .proposals
            .front()
            .is_some_and(|p| p.index <= last_index)
        {
            let proposal = self.proposals.pop_front().expect("front exists");
            if proposal.term == term {
                newest_committed_proposal = Some(proposal.propose_time);
            }
            proposals.push(proposal);
        }
        if self.is_leader() {
            if let Some(since) = newest_committed_proposal {
                self.renew_lease(ctx, since);
            }
        }
        self.committed_sent = self.committed_sent.max(last_index);
        let task = ApplyMsg::Apply(ApplyTask {
            term,
            entries,
            proposals,
        });
        if let Err(e) = ctx.apply_router.force_send(self.region_id, task) {
            warn!(region_id = self.region_id, error = ?e, "apply fsm is gone; committed entries dropped");
        }
    }

    /// Sends raft-rs messages to the other peers.
    pub fn send_messages(&mut self, ctx: &PollContext<EK, ER>, messages: Vec<eraftpb::Message>) {
        for message in messages {
            let Some(to_peer) = self.peer_cache.get(&message.to).copied() else {
                debug!(
                    region_id = self.region_id,
                    to = message.to,
                    "no address for raft message; dropped"
                );
                continue;
            };
            let is_snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            if is_snapshot {
                info!(
                    region_id = self.region_id,
                    to_peer = to_peer.id,
                    index = message.get_snapshot().get_metadata().index,
                    "sending snapshot"
                );
            }
            let bytes = match message.write_to_bytes() {
                Ok(bytes) => bytes,
                Err(e) => {
                    warn!(region_id = self.region_id, error = %e, "cannot encode raft message");
                    continue;
                }
            };
            let msg = RaftMessage {
                region_id: self.region_id,
                from_peer: Some(self.peer),
                to_peer: Some(to_peer),
                message: bytes,
                region_epoch: self.region.region_epoch,
                is_tombstone: false,
                start_key: self.region.start_key.clone(),
                end_key: self.region.end_key.clone(),
            };
            if is_snapshot {
                ctx.trans.send_snapshot(msg);
            } else {
                ctx.trans.send(msg);
            }
        }
    }

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

    /// Follows the apply FSM's progress.
    pub fn on_applied(&mut self, ctx: &PollContext<EK, ER>, apply_state: &RaftApplyState) {
        if apply_state.applied_index > self.applied_index {
            self.applied_index = apply_state.applied_index;
            self.applied_term = apply_state.applied_term;
            self.raft_group.advance_apply_to(self.applied_index);
        }
        if self
            .pending_split_index
            .is_some_and(|index| index <= self.applied_index)
        {
            self.pending_split_index = None;
        }
        self.process_reads(ctx);
        if self.is_leader() {
            self.update_read_delegate(ctx);
        }
    }

    /// Compacts the raft log up to what every live follower has and this peer has applied
    /// durably, or up to that applied index once the log grows past the count limit.
    pub fn compact_raft_log(&mut self, ctx: &PollContext<EK, ER>) -> Result<()> {
        let syncs = ctx.kv_syncs.load(Ordering::Acquire);
        let Some(applied) = self.durable_applied.on_gc_tick(self.applied_index, syncs) else {
            return Ok(());
        };
        let first = self.raft_group.store().first_index()?;
        if applied < first || applied - first < ctx.cfg.raft_log_gc_threshold {
            return Ok(());
        }
        let mut compact_to = applied;
        if self.is_leader() && applied - first < ctx.cfg.raft_log_gc_count_limit {
            let min_matched = self
                .raft_group
                .raft
                .prs()
                .iter()
                .filter(|(id, _)| **id != self.peer.id)
                .map(|(_, progress)| progress.matched)
                .min()
                .unwrap_or(applied);
            compact_to = compact_to.min(min_matched);
        }
        if compact_to <= first {
            return Ok(());
        }
        self.raft_group.store().raft_log.compact(compact_to)?;
        debug!(region_id = self.region_id, compact_to, "raft log compacted");
        Ok(())
    }

    /// The region as PD should see it, with its epoch; `None` for an uninitialized peer.
    pub fn region_for_pd(&self) -> Option<metapb::Region> {
        self.is_initialized().then(|| (*self.region).clone())
    }
}

/// Restarts the raft log at the applied index when the data engine is ahead of it. Two writes
/// can leave it so if the store crashes between them: a split writes the new region's states
/// with the apply batch and its raft log afterwards, and a snapshot writes its data and apply
/// state before the raft log. Everything up to the applied index is applied, hence committed,
/// so the log may start after it; the hard state keeps its term and vote.
fn recover_log_behind_apply<EK: KvEngine, ER: RaftLogEngine>(
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

/// The context of a split proposal's raft entry, so that the raft side knows a committed entry
/// is a split without decoding it (TiKV's `ProposalContext::SPLIT`).
pub const PROPOSAL_CONTEXT_SPLIT: u8 = 0b10;

/// A successful response header at `term`.
pub fn ok_response(term: u64) -> RaftCmdResponse {
    RaftCmdResponse {
        header: Some(RaftResponseHeader {
            error: None,
            current_term: term,
        }),
        ..Default::default()
    }
}
