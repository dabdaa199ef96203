//! Key encodings shared by PD and the stores.
//!
//! * [`memcomparable`]: TiKV's order-preserving byte-string encoding. Region boundaries seen by
//!   codec-enabled clients (every transactional client, every client with a keyspace) are in this
//!   form, so PD must produce valid encodings when it splits at keyspace boundaries.
//! * [`keyspace`]: API V2 key prefixes (`'r'`/`'x'` followed by the 24-bit keyspace id) and the
//!   region boundaries that give each keyspace its own regions.
//!
//! This crate depends on nothing but `thiserror`; it holds pure functions only.

pub mod keyspace;
pub mod memcomparable;

pub use keyspace::{KeyMode, KeyspaceId};

/// A malformed encoded key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("encoded key ends in the middle of a group (unexpected EOF)")]
    UnexpectedEof,
    #[error("encoded key has invalid padding in group ending at byte {offset}")]
    InvalidPadding { offset: usize },
    #[error("keyspace id {id} does not fit in 24 bits")]
    KeyspaceIdTooLarge { id: u32 },
}
