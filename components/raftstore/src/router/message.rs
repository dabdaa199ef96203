//! Messages of the raft and apply pollers, and the callbacks that answer proposals.

use std::fmt;
use std::time::Instant;

use engine_traits::Snapshot;
use kvproto::raft_cmdpb::{RaftCmdRequest, RaftCmdResponse};
use kvproto::raft_serverpb::{RaftApplyState, RaftMessage};
use kvproto::{metapb, pdpb};

use types::{PeerId, RegionId};

use crate::errors::Error;
use crate::region_snapshot::RegionSnapshot;

/// The answer to a read: the response header (an error, or none) and, on success, a snapshot
/// that reflects every write acknowledged before the read was issued.
pub struct ReadResponse<S: Snapshot> {
    pub response: RaftCmdResponse,
    pub snapshot: Option<RegionSnapshot<S>>,
}

/// A write whose outcome this peer cannot know: its entry may or may not have been committed
/// and applied (the peer lost leadership or was destroyed before it saw the entry's fate, or a
/// snapshot replaced the log that held it). It must reach the client as an error that is not
/// retried blindly, and never as a region error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the outcome of a write to {region_id} is undetermined: {reason}")]
pub struct Undetermined {
    pub region_id: RegionId,
    pub reason: &'static str,
}

/// How a write proposal ended: a response (success, or an error header for a write that was
/// certainly not applied), or [`Undetermined`].
pub type WriteResult = std::result::Result<RaftCmdResponse, Undetermined>;

pub type WriteCallback = Box<dyn FnOnce(WriteResult) + Send>;
pub type ReadCallback<S> = Box<dyn FnOnce(ReadResponse<S>) + Send>;

/// How a proposal is answered.
pub enum Callback<S: Snapshot> {
    Read(ReadCallback<S>),
    Write(WriteCallback),
    /// The writes merged into one proposal, each with its number of requests: each is
    /// answered with its own slice of the responses, or with the whole command's error.
    Batch(Vec<(Callback<S>, usize)>),
}

impl<S: Snapshot> Callback<S> {
    /// Answers with `response` (and no snapshot, for a read).
    pub fn invoke_with_response(self, response: RaftCmdResponse) {
        match self {
            Callback::Read(cb) => cb(ReadResponse {
                response,
                snapshot: None,
            }),
            Callback::Write(cb) => cb(Ok(response)),
            Callback::Batch(callbacks) => {
                let mut responses = response.responses.into_iter();
                for (callback, requests) in callbacks {
                    callback.invoke_with_response(RaftCmdResponse {
                        header: response.header.clone(),
                        responses: responses.by_ref().take(requests).collect(),
                        admin_response: None,
                    });
                }
            }
        }
    }

    /// Answers a write as undetermined; a read (never undetermined: it changes nothing) gets
    /// an error to retry.
    pub fn invoke_undetermined(self, undetermined: Undetermined, term: u64) {
        match self {
            Callback::Read(_) => {
                let error = Error::ReadAbandoned(undetermined.reason);
                self.invoke_with_error(error, term);
            }
            Callback::Write(cb) => cb(Err(undetermined)),
            Callback::Batch(callbacks) => {
                for (callback, _) in callbacks {
                    callback.invoke_undetermined(undetermined.clone(), term);
                }
            }
        }
    }

    pub fn invoke_with_error(self, error: Error, term: u64) {
        self.invoke_with_response(error_response(error, term));
    }
}

impl<S: Snapshot> fmt::Debug for Callback<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Callback::Read(_) => "Callback::Read",
            Callback::Write(_) => "Callback::Write",
            Callback::Batch(_) => "Callback::Batch",
        })
    }
}

/// A response carrying `error` in its header.
pub fn error_response(error: Error, term: u64) -> RaftCmdResponse {
    let mut response = RaftCmdResponse::default();
    let header = response.header.get_or_insert_with(Default::default);
    header.error = Some(error.into_error_pb());
    header.current_term = term;
    response
}

/// A command for a region's raft group with its answer.
pub struct RaftCommand<S: Snapshot> {
    pub request: RaftCmdRequest,
    pub callback: Callback<S>,
    /// When the command was sent to the peer, for the time it waits in the mailbox.
    pub send_time: Instant,
}

impl<S: Snapshot> RaftCommand<S> {
    pub fn new(request: RaftCmdRequest, callback: Callback<S>) -> Self {
        RaftCommand {
            request,
            callback,
            send_time: Instant::now(),
        }
    }
}

/// Periodic work of a peer, driven by the store's ticker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerTick {
    Raft,
    RaftLogGc,
    PdHeartbeat,
    SplitRegionCheck,
    CheckPeerStaleState,
}

/// A change the apply poller made that the raft side must follow.
#[derive(Debug)]
pub enum ExecResult {
    ChangePeer {
        conf_change: raft::eraftpb::ConfChange,
        region: metapb::Region,
    },
    Split {
        /// All regions after the split, in key order; one of them is the original.
        regions: Vec<metapb::Region>,
    },
}

/// Progress reported by a region's apply FSM.
#[derive(Debug)]
pub struct ApplyRes {
    pub region_id: RegionId,
    pub apply_state: RaftApplyState,
    pub exec_results: Vec<ExecResult>,
    /// Raft entry bytes and keys written, for statistics.
    pub written_bytes: u64,
    pub written_keys: u64,
    /// Of the keys, those in the write CF (commit records): the keys split checks count.
    pub written_commit_keys: u64,
}

/// Messages of a peer FSM.
pub enum PeerMsg<S: Snapshot> {
    /// A raft message from another store.
    RaftMessage(Box<RaftMessage>),
    /// A command to propose (or a read to serve).
    RaftCommand(Box<RaftCommand<S>>),
    Tick(PeerTick),
    ApplyRes(Box<ApplyRes>),
    /// Sending a snapshot to `to_peer_id` ended.
    SnapshotStatus {
        to_peer_id: PeerId,
        finished: bool,
    },
    /// A message to `to_peer_id` could not be delivered.
    Unreachable {
        to_peer_id: PeerId,
    },
    /// An operator from PD for this region (change peer, transfer leader, split).
    PdOperator(Box<pdpb::RegionHeartbeatResponse>),
    /// PD allocated ids for splitting at `split_keys`; `callback` (a client's SplitRegion)
    /// hears the outcome.
    SplitIds {
        region_epoch: metapb::RegionEpoch,
        split_keys: Vec<Vec<u8>>,
        ids: Vec<pdpb::SplitId>,
        callback: Option<WriteCallback>,
    },
    /// A client asks to split the region at `split_keys` (the `SplitRegion` RPC); the callback
    /// gets the BatchSplit admin response (the new regions) or an error.
    SplitRegion {
        region_epoch: metapb::RegionEpoch,
        split_keys: Vec<Vec<u8>>,
        callback: WriteCallback,
    },
    /// The split checker measured the region (at `region_epoch`).
    SplitCheckResult {
        region_epoch: metapb::RegionEpoch,
        result: crate::split_check::CheckResult,
    },
    /// The split checker estimated the region's size (at `region_epoch`) for PD.
    RegionStats {
        region_epoch: metapb::RegionEpoch,
        stats: crate::split_check::RegionStats,
    },
    /// Start campaigning right away (a region created by a split whose parent this store led).
    Campaign,
    /// The region's apply FSM stopped after an error; only a snapshot can restart it.
    ApplyStopped,
    /// The region's apply FSM handled `ApplyMsg::Destroy`: everything it applied is written
    /// and it writes nothing more, so the peer may delete the region's data.
    ApplyDestroyed,
    /// Resume ticking if hibernating: another store went silent.
    WakeUp,
    /// The store writer wrote the peer's staged ready (`peer_id`'s), durably unless `error`.
    Persisted {
        peer_id: PeerId,
        error: Option<String>,
    },
    /// The snapshot applier wrote the data of `peer_id`'s snapshot at `index` durably (or
    /// failed to).
    SnapshotWritten {
        peer_id: PeerId,
        index: u64,
        result: Box<crate::snap_apply::Written>,
    },
}

impl<S: Snapshot> fmt::Debug for PeerMsg<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerMsg::RaftMessage(m) => write!(f, "RaftMessage(region {})", m.region_id),
            PeerMsg::RaftCommand(_) => f.write_str("RaftCommand"),
            PeerMsg::Tick(t) => write!(f, "Tick({t:?})"),
            PeerMsg::ApplyRes(r) => {
                write!(f, "ApplyRes(applied {:?})", r.apply_state.applied_index)
            }
            PeerMsg::SnapshotStatus {
                to_peer_id,
                finished,
            } => {
                write!(f, "SnapshotStatus(to {to_peer_id}, finished {finished})")
            }
            PeerMsg::Unreachable { to_peer_id } => write!(f, "Unreachable({to_peer_id})"),
            PeerMsg::PdOperator(_) => f.write_str("PdOperator"),
            PeerMsg::SplitIds { .. } => f.write_str("SplitIds"),
            PeerMsg::SplitRegion { split_keys, .. } => {
                write!(f, "SplitRegion({} keys)", split_keys.len())
            }
            PeerMsg::SplitCheckResult { result, .. } => {
                write!(
                    f,
                    "SplitCheckResult({} split keys)",
                    result.split_keys.len()
                )
            }
            PeerMsg::RegionStats { stats, .. } => {
                write!(f, "RegionStats({} bytes, {} keys)", stats.size, stats.keys)
            }
            PeerMsg::Campaign => f.write_str("Campaign"),
            PeerMsg::ApplyStopped => f.write_str("ApplyStopped"),
            PeerMsg::ApplyDestroyed => f.write_str("ApplyDestroyed"),
            PeerMsg::WakeUp => f.write_str("WakeUp"),
            PeerMsg::Persisted { peer_id, error } => {
                write!(f, "Persisted({peer_id}, error {error:?})")
            }
            PeerMsg::SnapshotWritten {
                peer_id,
                index,
                result,
            } => write!(
                f,
                "SnapshotWritten({peer_id}, index {index}, ok {})",
                result.is_ok()
            ),
        }
    }
}

/// Messages of the store FSM.
#[derive(Debug)]
pub enum StoreMsg {
    /// A raft message for a region this store has no peer of (yet).
    RaftMessage(Box<RaftMessage>),
    /// Regions created by a split: create their peers.
    SplitRegions {
        regions: Vec<metapb::Region>,
        /// The parent's peer here was leader, so the new peers campaign at once.
        campaign: bool,
    },
    /// A peer has been destroyed; forget its range.
    PeerDestroyed {
        region_id: RegionId,
        peer_id: PeerId,
    },
    /// Time to send the store heartbeat.
    StoreHeartbeatTick,
    /// Time to tell the other stores this one is alive, and to wake the sleeping replicas if
    /// one of them went silent (see [`crate::hibernate`]).
    LivenessTick,
}
