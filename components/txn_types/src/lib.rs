//! Percolator's vocabulary, shared by storage (MVCC and the transaction commands) and raftstore
//! (the split checker cuts timestamps off split keys).
//!
//! | type | what it is |
//! |---|---|
//! | [`TimeStamp`] | a PD timestamp: `physical_ms << 18 \| logical` |
//! | [`Key`] | a user key in memcomparable form, optionally followed by a descending timestamp |
//! | [`Lock`] | the value of a key in the `lock` column family: an uncommitted write or a lock |
//! | [`Write`] | the value of `key + commit_ts` in the `write` column family: a commit or rollback record |
//! | [`Mutation`] | one change a prewrite carries |
//!
//! # Key layout (the data engine adds its own `z` prefix in front of every key)
//!
//! | column family | key | value |
//! |---|---|---|
//! | `lock` | `enc(user_key)` | [`Lock`] |
//! | `write` | `enc(user_key) ++ !commit_ts (u64 big-endian)` | [`Write`] |
//! | `default` | `enc(user_key) ++ !start_ts (u64 big-endian)` | the value, when too long to inline |
//!
//! `enc` is the memcomparable encoding (`codec::memcomparable`), so the versions of one key sort
//! together, newest first. Values of at most [`SHORT_VALUE_MAX_LEN`] bytes are kept inline in
//! the lock and then in the write record; longer values go to the `default` column family.
//!
//! The byte formats of [`Lock`] and [`Write`] are TiKV's, so that data written by one can be
//! read by tools that know the other. This crate depends only on `codec` and `kvproto`.

mod error;
mod lock;
mod number;
mod timestamp;
mod types;
mod write;

pub use error::{Error, Result};
pub use lock::{Lock, LockType};
pub use timestamp::TimeStamp;
pub use types::{strip_timestamp_if_exists, Key, Mutation, MutationOp, Value};
pub use write::{Write, WriteType};

/// Values up to this length are stored inline in locks and write records.
pub const SHORT_VALUE_MAX_LEN: usize = 255;
