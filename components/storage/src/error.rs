//! Errors of the storage layer and how they reach a client.
//!
//! A request fails in one of two ways the client tells apart. A *region error* (wrong region,
//! epoch, leader, or a key outside the region) makes the client refresh its region cache and
//! retry; it travels in the response's `region_error` field and nothing else is set. Every
//! other error is final for the request and travels as text in the response's `error` field (or,
//! for responses without one, as a `KeyError` in a pair). [`Error::into_response_error`] makes
//! that split.

use codec::KeyMode;
use kvproto::{errorpb, kvrpcpb};

use crate::kv;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request reached the wrong region, epoch, peer or store, or read a key outside the
    /// region. Sent to the client as `region_error`.
    #[error("region error: {}", .0.message)]
    Region(Box<errorpb::Error>),
    /// A written key is longer than `StorageConfig::max_key_size`.
    #[error("key is too large, key size: {size}, limit: {limit}")]
    KeyTooLarge { size: usize, limit: usize },
    /// An API V2 request named a key (or range bound) outside its key mode: a raw key that does
    /// not start with `r`, or a transactional key that does not start with `x`. `cmd` is the
    /// command that refused it.
    #[error(
        "invalid key mode in {cmd}: API V2 {} keys must start with '{}'",
        if *.mode == KeyMode::Raw { "raw" } else { "transactional" },
        char::from(.mode.byte())
    )]
    InvalidKeyMode {
        cmd: &'static str,
        key: Vec<u8>,
        mode: KeyMode,
    },
    /// `Context.api_version` is not a known `kvrpcpb::ApiVersion`.
    #[error("unsupported api version {version}")]
    InvalidApiVersion { version: i32 },
    /// The request named a column family raw KV does not serve.
    #[error("invalid column family {cf:?}: expected \"default\", \"lock\" or \"write\"")]
    InvalidCf { cf: String },
    /// A batch put whose TTL list matches neither zero, one, nor every pair.
    #[error("invalid ttls: {ttls} ttls for {pairs} pairs")]
    InvalidTtls { pairs: usize, ttls: usize },
    /// A range whose start is after its end.
    #[error("invalid range: start key is after end key")]
    InvalidRange,
    /// A stored raw value that does not have the layout storage writes.
    #[error("malformed raw value: {reason}")]
    MalformedValue { reason: &'static str },
    /// The configuration is unusable.
    #[error("invalid storage config: {reason}")]
    InvalidConfig { reason: String },
    /// A transactional command met a lock, a conflict or another transaction's state; the
    /// client reads it as a `KeyError`.
    #[error(transparent)]
    Mvcc(crate::mvcc::Error),
    /// The engine failed.
    #[error(transparent)]
    Engine(engine_traits::Error),
    /// The request did not finish in time.
    #[error("request timed out: {0}")]
    Timeout(String),
    /// The write may or may not have been applied; the client must find out before it retries.
    /// Sent as the response's error (a `KeyError.abort` for transactions), never as a region
    /// error, which clients retry blindly.
    #[error("{0}; the write may or may not have been applied, read the key before retrying it")]
    Undetermined(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<errorpb::Error> for Error {
    fn from(e: errorpb::Error) -> Self {
        Error::Region(Box::new(e))
    }
}

/// A read outside the region is the client's routing mistake, not an engine failure: it
/// becomes a `KeyNotInRegion` region error so that the client reloads the region and retries.
impl From<engine_traits::Error> for Error {
    fn from(e: engine_traits::Error) -> Self {
        match e {
            engine_traits::Error::NotInRange {
                key,
                region_id,
                start,
                end,
            } => kv::key_not_in_region(key, region_id, start, end).into(),
            other => Error::Engine(other),
        }
    }
}

/// Engine errors inside MVCC keep their meaning: a read outside the region is a region error.
impl From<crate::mvcc::Error> for Error {
    fn from(e: crate::mvcc::Error) -> Self {
        match e {
            crate::mvcc::Error::Engine(engine_error) => engine_error.into(),
            other => Error::Mvcc(other),
        }
    }
}

impl From<kv::Error> for Error {
    fn from(e: kv::Error) -> Self {
        match e {
            kv::Error::Region(region_error) => Error::Region(region_error),
            kv::Error::Engine(engine_error) => engine_error.into(),
            kv::Error::Timeout(message) => Error::Timeout(message),
            kv::Error::Undetermined(message) => Error::Undetermined(message),
            kv::Error::Other(message) => Error::Other(message),
        }
    }
}

/// What a raw response carries for a failed request: either a region error or a message,
/// never both.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResponseError {
    pub region_error: Option<errorpb::Error>,
    pub error: String,
}

impl ResponseError {
    /// The pair list of a failed request whose response has no `error` field (batch get, scan,
    /// batch scan): no pairs on a region error, otherwise one pair carrying the message as an
    /// aborting `KeyError`, which the client reports to its caller. TiKV does the same.
    pub fn into_pairs(self) -> (Option<errorpb::Error>, Vec<kvrpcpb::KvPair>) {
        if self.region_error.is_some() {
            return (self.region_error, vec![]);
        }
        let pair = kvrpcpb::KvPair {
            error: Some(kvrpcpb::KeyError {
                abort: self.error,
                ..Default::default()
            }),
            ..Default::default()
        };
        (None, vec![pair])
    }
}

impl Error {
    /// The region error, if this is one.
    pub fn region_error(&self) -> Option<&errorpb::Error> {
        match self {
            Error::Region(e) => Some(e),
            _ => None,
        }
    }

    /// Splits the error into what a kvrpcpb transactional response carries: a region error
    /// alone, or a `KeyError` (an MVCC error's own field, `abort` with the message otherwise).
    pub fn into_key_error(self) -> (Option<errorpb::Error>, Option<kvrpcpb::KeyError>) {
        match self {
            Error::Region(e) => (Some(*e), None),
            Error::Mvcc(e) => (None, Some(e.to_key_error())),
            other => (
                None,
                Some(kvrpcpb::KeyError {
                    abort: other.to_string(),
                    ..Default::default()
                }),
            ),
        }
    }

    /// Splits the error into what a kvrpcpb raw response carries: a region error alone, or
    /// the error's text alone.
    pub fn into_response_error(self) -> ResponseError {
        match self {
            Error::Region(e) => ResponseError {
                region_error: Some(*e),
                error: String::new(),
            },
            other => ResponseError {
                region_error: None,
                error: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_in_range_becomes_key_not_in_region() {
        let err: Error = kv::Error::Engine(engine_traits::Error::NotInRange {
            key: b"k".to_vec(),
            region_id: 3,
            start: b"a".to_vec(),
            end: b"c".to_vec(),
        })
        .into();
        let response = err.into_response_error();
        assert!(response.error.is_empty());
        let region_error = response.region_error.expect("a region error");
        let expected = errorpb::KeyNotInRegion {
            key: b"k".to_vec(),
            region_id: 3,
            start_key: b"a".to_vec(),
            end_key: b"c".to_vec(),
        };
        assert_eq!(region_error.key_not_in_region, Some(expected));
        assert!(!region_error.message.is_empty());
    }

    #[test]
    fn other_errors_become_messages() {
        let response = Error::KeyTooLarge {
            size: 9000,
            limit: 8192,
        }
        .into_response_error();
        assert_eq!(response.region_error, None);
        assert_eq!(
            response.error,
            "key is too large, key size: 9000, limit: 8192"
        );

        let (region_error, pairs) = response.into_pairs();
        assert_eq!(region_error, None);
        let key_error = pairs[0].error.as_ref().expect("a key error");
        assert_eq!(
            key_error.abort,
            "key is too large, key size: 9000, limit: 8192"
        );
    }

    #[test]
    fn undetermined_writes_are_never_region_errors() {
        let undetermined = || Error::from(kv::Error::Undetermined("leader stepped down".into()));
        let response = undetermined().into_response_error();
        assert_eq!(response.region_error, None);
        assert!(response.error.starts_with("leader stepped down"));
        assert!(response.error.contains("may or may not have been applied"));
        let (region_error, key_error) = undetermined().into_key_error();
        assert_eq!(region_error, None);
        assert!(key_error
            .unwrap()
            .abort
            .contains("may or may not have been applied"));
    }

    #[test]
    fn region_errors_carry_no_pairs() {
        let err = Error::from(errorpb::Error {
            message: "not leader".into(),
            ..Default::default()
        });
        let (region_error, pairs) = err.into_response_error().into_pairs();
        assert_eq!(region_error.unwrap().message, "not leader");
        assert!(pairs.is_empty());
    }
}
