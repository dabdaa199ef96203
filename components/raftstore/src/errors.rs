//! Raftstore errors, and how each becomes the `errorpb::Error` a client sees.

use kvproto::{errorpb, metapb};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("peer is not leader for region {region_id}, leader may be {leader:?}")]
    NotLeader {
        region_id: u64,
        leader: Option<metapb::Peer>,
    },
    #[error("region {region_id} not found")]
    RegionNotFound { region_id: u64 },
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
    #[error(
        "store id mismatch: request for store {request_store_id}, this is store {actual_store_id}"
    )]
    StoreNotMatch {
        request_store_id: u64,
        actual_store_id: u64,
    },
    #[error("raft entry of region {region_id} is too large: {entry_size} bytes")]
    RaftEntryTooLarge { region_id: u64, entry_size: u64 },
    #[error("region {region_id} is being removed from this store")]
    PendingRemove { region_id: u64 },
    #[error("region {region_id} stopped applying on this store after an error; another replica serves it")]
    ApplyStopped { region_id: u64 },
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("engine: {0}")]
    Engine(#[from] engine_traits::Error),
    #[error("raft log: {0}")]
    RaftLog(#[from] raft_log_engine::Error),
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// PD could not be asked, or refused.
    #[error("PD: {0}")]
    Pd(String),
    /// A fail point configured by a test stopped the operation here.
    #[error("fail point {0}")]
    FailPoint(&'static str),
    #[error("{0}")]
    Other(String),
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
                error.not_leader = Some(errorpb::NotLeader { region_id, leader });
            }
            Error::RegionNotFound { region_id } | Error::PendingRemove { region_id } => {
                error.region_not_found = Some(errorpb::RegionNotFound { region_id });
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
                    request_store_id,
                    actual_store_id,
                });
            }
            Error::RaftEntryTooLarge {
                region_id,
                entry_size,
            } => {
                error.raft_entry_too_large = Some(errorpb::RaftEntryTooLarge {
                    region_id,
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
            region_id: 2,
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
        let e = Error::Other("boom".into()).into_error_pb();
        assert_eq!(e.message, "boom");
        assert!(e.not_leader.is_none());
    }
}
