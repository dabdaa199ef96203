//! Raftstore errors, and how each becomes the `errorpb::Error` a client sees.

use kvproto::{errorpb, metapb};
use types::{RegionId, StoreId};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("peer is not leader for {region_id}, leader may be {leader:?}")]
    NotLeader {
        region_id: RegionId,
        leader: Option<metapb::Peer>,
    },
    #[error("{region_id} not found")]
    RegionNotFound { region_id: RegionId },
    #[error("{message}")]
    EpochNotMatch {
        message: String,
        current_regions: Vec<metapb::Region>,
    },
    #[error("key {key:?} is not in region {} [{:?}, {:?})", region.id, region.start_key, region.end_key)]
    KeyNotInRegion {
        key: Vec<u8>,
        region: Box<metapb::Region>,
    },
    #[error("stale command")]
    StaleCommand,
    #[error("store id mismatch: request for {request_store_id}, this is {actual_store_id}")]
    StoreNotMatch {
        request_store_id: StoreId,
        actual_store_id: StoreId,
    },
    #[error("raft entry of {region_id} is too large: {entry_size} bytes")]
    RaftEntryTooLarge {
        region_id: RegionId,
        entry_size: u64,
    },
    #[error("{region_id} is being removed from this store")]
    PendingRemove { region_id: RegionId },
    #[error(
        "{region_id} stopped applying on this store after an error; another replica serves it"
    )]
    ApplyStopped { region_id: RegionId },
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("engine: {0}")]
    Engine(#[from] engine_traits::Error),
    #[error("raft log: {0}")]
    RaftLog(#[from] raft_log_engine::Error),
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// Raft refused to take a proposal (for example during a leadership transfer); it was
    /// not proposed, so it may be retried.
    #[error("proposal to {region_id} dropped by raft: {reason}; retry")]
    ProposalDropped { region_id: RegionId, reason: String },
    /// A conf change while another is still pending in raft.
    #[error("{region_id} has a pending conf change; retry later")]
    PendingConfChange { region_id: RegionId },
    /// A conf change that does not fit the region (a second peer on a store, removing a
    /// missing peer or the leader).
    #[error("invalid conf change: {0}")]
    InvalidConfChange(String),
    /// A request or log entry that is malformed (missing parts, unknown kinds, bad split keys).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A read's read index was not confirmed in time (no quorum answered).
    #[error("read index of {region_id} timed out; retry")]
    ReadIndexTimeout { region_id: RegionId },
    /// A read that was waiting when its peer lost track of it.
    #[error("read abandoned: {0}")]
    ReadAbandoned(&'static str),
    /// The store's region state names no peer of this store.
    #[error("{region_id} has no peer on {store_id}")]
    PeerNotOnStore {
        region_id: RegionId,
        store_id: StoreId,
    },
    /// The store writer could not write a raft log batch.
    #[error("raft log write failed: {0}")]
    PersistFailed(String),
    /// A thread of the store could not be started.
    #[error("cannot start {what}: {reason}")]
    Start { what: &'static str, reason: String },
    /// PD could not be asked, or refused.
    #[error("PD: {0}")]
    Pd(String),
    /// A fail point configured by a test stopped the operation here.
    #[error("fail point {0}")]
    FailPoint(&'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Returns the region error a client sees.
    pub fn into_error_pb(self) -> errorpb::Error {
        let message = self.to_string();
        let mut error = errorpb::Error {
            message,
            ..Default::default()
        };
        match self {
            Error::NotLeader { region_id, leader } => {
                error.not_leader = Some(errorpb::NotLeader {
                    region_id: region_id.get(),
                    leader,
                });
            }
            Error::RegionNotFound { region_id } | Error::PendingRemove { region_id } => {
                error.region_not_found = Some(errorpb::RegionNotFound {
                    region_id: region_id.get(),
                });
            }
            Error::EpochNotMatch {
                current_regions, ..
            } => {
                error.epoch_not_match = Some(errorpb::EpochNotMatch { current_regions });
            }
            Error::KeyNotInRegion { key, region } => {
                error.key_not_in_region = Some(errorpb::KeyNotInRegion {
                    key,
                    region_id: region.id,
                    start_key: region.start_key,
                    end_key: region.end_key,
                });
            }
            Error::StaleCommand => error.stale_command = Some(errorpb::StaleCommand {}),
            Error::StoreNotMatch {
                request_store_id,
                actual_store_id,
            } => {
                error.store_not_match = Some(errorpb::StoreNotMatch {
                    request_store_id: request_store_id.get(),
                    actual_store_id: actual_store_id.get(),
                });
            }
            Error::RaftEntryTooLarge {
                region_id,
                entry_size,
            } => {
                error.raft_entry_too_large = Some(errorpb::RaftEntryTooLarge {
                    region_id: region_id.get(),
                    entry_size,
                });
            }
            // Anything else carries only the message; clients retry those.
            _ => {}
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_errors_fill_their_field() {
        let e = Error::NotLeader {
            region_id: RegionId(2),
            leader: Some(metapb::Peer {
                id: 3,
                store_id: 1,
                ..Default::default()
            }),
        }
        .into_error_pb();
        assert_eq!(e.not_leader.unwrap().leader.unwrap().store_id, 1);
        let e = Error::StaleCommand.into_error_pb();
        assert!(e.stale_command.is_some());
        let e = Error::ReadIndexTimeout {
            region_id: RegionId(2),
        }
        .into_error_pb();
        assert_eq!(e.message, "read index of region 2 timed out; retry");
        assert!(e.not_leader.is_none());
    }
}
