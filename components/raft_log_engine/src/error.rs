use thiserror::Error;
use types::RegionId;

/// Errors of the raft log store.
#[derive(Debug, Error)]
pub enum Error {
    /// The backend failed to read or write (I/O error, corruption).
    #[error("raft log backend: {0}")]
    Backend(String),
    /// Stored bytes do not decode: the log is corrupt.
    #[error("corrupt raft log metadata of {region}: {reason}")]
    Corrupt { region: RegionId, reason: String },
    /// Entries to append would leave a gap after, or overwrite below, the stored log.
    #[error("{region}: cannot append entries from index {first}: stored log is [{log_first}, {log_last}]")]
    NonContiguous {
        region: RegionId,
        first: u64,
        log_first: u64,
        log_last: u64,
    },
    /// An entry that should be stored is missing.
    #[error("{region}: entry {index} is missing")]
    MissingEntry { region: RegionId, index: u64 },
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<raft_engine::Error> for Error {
    fn from(e: raft_engine::Error) -> Self {
        Error::Backend(e.to_string())
    }
}

impl From<engine_traits::Error> for Error {
    fn from(e: engine_traits::Error) -> Self {
        Error::Backend(e.to_string())
    }
}

impl From<Error> for raft::Error {
    fn from(e: Error) -> Self {
        raft::Error::Store(raft::StorageError::Other(Box::new(e)))
    }
}
