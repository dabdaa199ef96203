//! Errors decoding the stored forms of keys, locks and write records.

/// A stored key or value that does not have the layout this crate writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("bad format lock: {reason}")]
    BadFormatLock { reason: &'static str },
    #[error("bad format write: {reason}")]
    BadFormatWrite { reason: &'static str },
    #[error("bad format key: {0}")]
    KeyDecode(#[from] codec::Error),
    #[error("bad format key: no timestamp suffix")]
    KeyWithoutTimestamp,
}

pub type Result<T> = std::result::Result<T, Error>;
