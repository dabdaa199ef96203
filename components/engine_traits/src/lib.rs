//! Storage engine traits: the only way the rest of the system touches local key-value data.
//!
//! This crate owns the *shape* of an engine and nothing else. It holds no implementation and must
//! never depend on RocksDB, raft or the network. Implementations live in `engine_rocks`
//! (production) and `engine_memory` (fast unit tests); both pass the same conformance suite
//! (`engine_traits::conformance`, enabled with the `testsuite` feature).
//!
//! Key types:
//! - [`KvEngine`]: a handle to a whole engine; takes [`Snapshot`]s and writes [`WriteBatch`]es.
//! - [`Peekable`] / [`Iterable`]: point reads and bounded forward/reverse iteration, shared by
//!   engines and snapshots.
//! - [`CfName`] and the column families [`CF_DEFAULT`], [`CF_LOCK`], [`CF_WRITE`] (Percolator's
//!   data, value and commit records) and [`CF_RAFT`] (region and apply state of each replica).

mod cf;
mod engine;
mod error;
mod iterable;
mod write_batch;

#[cfg(feature = "testsuite")]
pub mod conformance;

pub use cf::{data_cf, CfName, ALL_CFS, CF_DEFAULT, CF_LOCK, CF_RAFT, CF_WRITE, DATA_CFS};
pub use engine::{KvEngine, RangeStats, Snapshot};
pub use error::{Error, Result};
pub use iterable::{EngineIterator, IterOptions, Iterable, Peekable, SeekKey};
pub use write_batch::{Mutable, WriteBatch, WriteOptions};
