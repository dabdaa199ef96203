//! One replica of a region: its raft-rs `RawNode`, the proposals waiting to commit, reads
//! waiting for a read index, and the leader lease.
//!
//! The write path: a command is checked (store, leader, epoch, keys, size), proposed, and
//! remembered with its callback; when raft commits it, the entries and the proposals go to the
//! region's apply FSM, which answers the callbacks after writing. `handle_ready` stages new
//! entries and the hard state in the poll round's raft log batch; the raft poller writes it with
//! one sync for all its peers (group commit) before any message that depends on it is sent.
//!
//! The read path: under a valid lease the leader answers at once with an engine snapshot;
//! otherwise it asks raft for a read index and answers once that index is applied.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use engine_traits::{KvEngine, Snapshot};
use kvproto::metapb;
use kvproto::raft_cmdpb::{RaftCmdRequest, RaftCmdResponse, RaftResponseHeader};
use kvproto::raft_serverpb::RaftApplyState;
use raft::{RawNode, ReadOnlyOption, StateRole};
use raft_log_engine::RaftLogEngine;
use types::{PeerId, RegionId};

use crate::errors::Result;
use crate::fsm::{PollContext, Proposal};
use crate::log_gc::DurableApplied;
use crate::logger::raft_logger;
use crate::msg::Callback;
use crate::operation::{
    recover_log_behind_apply, HibernateState, LeaderMissing, PendingWrites, UnpersistedReady,
};
use crate::peer_storage::PeerStorage;
use crate::store_meta::ReadCell;

/// A read waiting for its read index to be confirmed and applied.
pub(crate) struct PendingRead<S: Snapshot> {
    pub(crate) id: u64,
    /// Checked again when answered: the region may have split meanwhile.
    pub(crate) request: RaftCmdRequest,
    pub(crate) callback: Callback<S>,
    pub(crate) propose_time: Instant,
    pub(crate) read_index: Option<u64>,
}

/// What changed in a ready that the FSM must follow up on.
#[derive(Default)]
pub struct ReadyOutcome {
    pub role_changed: bool,
    pub snapshot_applied: bool,
}

pub struct Peer<EK: KvEngine, ER: RaftLogEngine> {
    pub region_id: RegionId,
    pub peer: metapb::Peer,
    pub region: Arc<metapb::Region>,
    pub raft_group: RawNode<PeerStorage<EK, ER>>,
    pub(crate) peer_cache: HashMap<PeerId, metapb::Peer>,
    /// Proposed, not yet committed; in index order.
    pub(crate) proposals: VecDeque<Proposal<EK::Snapshot>>,
    pub(crate) pending_reads: VecDeque<PendingRead<EK::Snapshot>>,
    /// The apply FSM stopped after an error: the peer serves nothing, hands nothing to apply,
    /// and waits for a snapshot to start over with a new one.
    pub(crate) apply_stopped: bool,
    /// The last committed split entry not yet applied here: no lease until it is.
    pub(crate) pending_split_index: Option<u64>,
    /// Reads that arrived before this leader committed an entry of its term.
    pub(crate) waiting_reads: Vec<(RaftCmdRequest, Callback<EK::Snapshot>)>,
    pub(crate) next_read_id: u64,
    pub(crate) lease_expire: Option<Instant>,
    pub applied_index: u64,
    pub applied_term: u64,
    /// The applied index a data-engine sync covered, for log compaction.
    pub(crate) durable_applied: DurableApplied,
    /// About how many bytes of entries the raft log holds (TiKV's `raft_log_size_hint`): what
    /// this replica appended, scaled down by each compaction, reset by a snapshot. An
    /// overestimate after a conflicting suffix is replaced; 0 after a restart.
    pub(crate) raft_log_size_hint: u64,
    /// The highest index handed to the apply FSM.
    pub(crate) committed_sent: u64,
    /// Last time each other peer was heard from, for PD's down peers.
    pub(crate) peer_heartbeats: HashMap<PeerId, Instant>,
    pub pending_remove: bool,
    pub approximate_size: u64,
    pub approximate_keys: u64,
    /// The approximate size and keys need measuring again (new range, new data).
    pub(crate) approximate_stale: bool,
    pub written_bytes: u64,
    pub written_keys: u64,
    /// Bytes and keys written since the region's size was last checked. The bytes start at
    /// the check threshold, so a new leader checks its region once.
    pub size_diff_hint: u64,
    pub keys_diff_hint: u64,
    /// Size and keys the last check measured; `None` until a check as leader.
    pub last_checked: Option<(u64, u64)>,
    /// A ready staged in the round's raft log batch, finished when the batch is written.
    pub(crate) unpersisted: Option<UnpersistedReady>,
    /// What local readers may serve while this peer leads (see [`ReadCell`]).
    pub(crate) read_cell: Arc<ReadCell>,
    /// Writes of this round, proposed as one entry at its end.
    pub(crate) pending_writes: Option<PendingWrites<EK::Snapshot>>,
    /// Whether the replica sleeps, and a leader's progress towards sleeping.
    pub(crate) hibernate: HibernateState,
    /// Since when no leader was heard of (the stale state check).
    pub(crate) leader_missing: LeaderMissing,
    /// While this leader has applied less than this index, it tells followers of every commit
    /// at once instead of with its next append or heartbeat (see [`Peer::bcast_commit_until`]).
    pub(crate) last_urgent_index: Option<u64>,
    /// A leadership transfer refused because its target was silent (most likely asleep with
    /// the region), and when it was asked: retried if the target answers soon.
    pub(crate) pending_transfer: Option<(metapb::Peer, Instant)>,
    /// Where the snapshot applier stands with this peer's pending snapshot.
    pub(crate) snapshot_write: SnapshotWrite,
}

/// A received snapshot's data on its way into the data engine (see `snap_apply`).
#[derive(Debug, Default)]
pub(crate) enum SnapshotWrite {
    #[default]
    None,
    /// The applier is writing the data of the snapshot at this index.
    Writing { index: u64 },
    /// The snapshot's data is durable; the raft log and raft-rs are yet to follow.
    Written {
        index: u64,
        region: metapb::Region,
        apply_state: kvproto::raft_serverpb::RaftApplyState,
    },
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
            // Followers learn of a commit with the leader's next append or heartbeat, not from
            // a message of its own: with one small write per region at a time that halves the
            // messages and follower readies per write. `bcast_commit_until` lifts it where a
            // follower must apply soon.
            skip_bcast_commit: true,
            ..Default::default()
        };
        let logger = raft_logger(RegionId(region.id), PeerId(peer.id));
        let raft_group = RawNode::new(&raft_cfg, storage, &logger)?;
        let mut p = Peer {
            region_id: RegionId(region.id),
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
            raft_log_size_hint: 0,
            committed_sent: apply_state.applied_index,
            peer_heartbeats: HashMap::new(),
            pending_remove: false,
            approximate_size: 0,
            approximate_keys: 0,
            approximate_stale: true,
            written_bytes: 0,
            written_keys: 0,
            size_diff_hint: ctx.cfg.region_split_check_diff.0,
            keys_diff_hint: 0,
            last_checked: None,
            unpersisted: None,
            snapshot_write: SnapshotWrite::None,
            read_cell: Arc::default(),
            pending_writes: None,
            hibernate: HibernateState::default(),
            leader_missing: LeaderMissing::default(),
            last_urgent_index: None,
            pending_transfer: None,
        };
        p.refresh_peer_cache();
        Ok(p)
    }

    pub fn peer_id(&self) -> PeerId {
        PeerId(self.peer.id)
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
            .then(|| self.peer_cache.get(&PeerId(leader_id)).copied())
            .flatten()
    }

    pub fn set_region(&mut self, region: metapb::Region) {
        // This replica's own record follows the region's: a promoted learner speaks, and
        // reports itself to PD, as the voter it now is.
        if let Some(me) = region.peers.iter().find(|p| p.id == self.peer.id) {
            self.peer = *me;
        }
        if region.start_key != self.region.start_key || region.end_key != self.region.end_key {
            self.approximate_stale = true;
        }
        self.region = Arc::new(region);
        self.refresh_peer_cache();
    }

    pub(crate) fn refresh_peer_cache(&mut self) {
        for peer in &self.region.peers {
            self.peer_cache.insert(PeerId(peer.id), *peer);
        }
    }

    /// Remembers a peer learned from a message, so replies can reach it.
    pub fn insert_peer_cache(&mut self, peer: metapb::Peer) {
        self.peer_cache.insert(PeerId(peer.id), peer);
    }

    pub fn record_heartbeat(&mut self, peer_id: PeerId) {
        self.peer_heartbeats.insert(peer_id, Instant::now());
    }

    /// The region as PD should see it, with its epoch; `None` for an uninitialized peer.
    /// For a new leader: what it applied as a follower, its last leader reported to PD, and
    /// the region may have changed size since this peer's last estimate.
    pub(crate) fn reset_pd_stats(&mut self) {
        self.written_bytes = 0;
        self.written_keys = 0;
        self.approximate_stale = true;
    }

    pub fn region_for_pd(&self) -> Option<metapb::Region> {
        self.is_initialized().then(|| (*self.region).clone())
    }
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
