//! Errors of the placement driver, each mapped to the `pdpb.ErrorType` PD puts in a response
//! header.

use kvproto::pdpb;

use crate::storage::StorageError;

pub type Result<T> = std::result::Result<T, PdError>;

#[derive(Debug, thiserror::Error)]
pub enum PdError {
    #[error("cluster is not bootstrapped; start a tikv-server against this PD to bootstrap it")]
    NotBootstrapped,
    #[error("cluster {cluster_id} is already bootstrapped")]
    AlreadyBootstrapped { cluster_id: u64 },
    #[error("mismatch cluster id, need {expected} but got {actual}")]
    ClusterIdMismatch { expected: u64, actual: u64 },
    #[error("invalid store ID {store_id}, not found")]
    StoreNotFound { store_id: u64 },
    #[error("store {store_id} has been removed (tombstone)")]
    StoreTombstone { store_id: u64 },
    #[error("region {region_id} not found")]
    RegionNotFound { region_id: u64 },
    #[error("no region contains key {key}")]
    RegionNotFoundForKey { key: String },
    #[error("keyspace {name:?} not found")]
    KeyspaceNotFound { name: String },
    #[error("{what} already exists")]
    Duplicated { what: String },
    #[error("invalid request: {reason}")]
    InvalidValue { reason: String },
    #[error("region {region_id} is stale: {reason}")]
    StaleRegion { region_id: u64, reason: String },
    #[error("metadata storage failed: {0}")]
    Storage(#[from] StorageError),
}

impl PdError {
    pub fn invalid(reason: impl Into<String>) -> PdError {
        PdError::InvalidValue {
            reason: reason.into(),
        }
    }

    /// Returns the error type PD reports for this error.
    pub fn error_type(&self) -> pdpb::ErrorType {
        use pdpb::ErrorType;
        match self {
            PdError::NotBootstrapped => ErrorType::NotBootstrapped,
            PdError::AlreadyBootstrapped { .. } => ErrorType::AlreadyBootstrapped,
            PdError::StoreTombstone { .. } => ErrorType::StoreTombstone,
            PdError::RegionNotFound { .. } | PdError::RegionNotFoundForKey { .. } => {
                ErrorType::RegionNotFound
            }
            PdError::KeyspaceNotFound { .. } => ErrorType::EntryNotFound,
            PdError::Duplicated { .. } => ErrorType::DuplicatedEntry,
            PdError::InvalidValue { .. } => ErrorType::InvalidValue,
            PdError::ClusterIdMismatch { .. }
            | PdError::StoreNotFound { .. }
            | PdError::StaleRegion { .. }
            | PdError::Storage(_) => ErrorType::Unknown,
        }
    }

    /// Returns the `pdpb.Error` for a response header.
    pub fn to_pb(&self) -> pdpb::Error {
        pdpb::Error {
            r#type: self.error_type() as i32,
            message: self.to_string(),
        }
    }
}
