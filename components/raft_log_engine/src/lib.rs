//! Raft log storage for many regions (multi-raft), and raft-rs's `Storage` on top of it.
//!
//! Owns: each region's log entries, its `HardState`, its `ConfState` and the metadata of the
//! snapshot its log starts after (the compaction point). Never depends on the data engine's
//! column families or on raftstore.
//!
//! Two backends implement [`RaftLogEngine`]:
//! - [`RaftEngineLog`] on `raft-engine`, the append-only multi-raft log store TiKV uses. This
//!   is the one the server uses (ARCHITECTURE.md gives the measurement behind that choice).
//! - [`RocksLog`] on a RocksDB instance of its own, kept as the measured alternative.
//!
//! [`RaftLogStorage`] is one region's view: it implements [`raft::Storage`] and turns raft's
//! `Ready` output (entries, hard state, snapshots) into log writes.

mod engine;
mod error;
mod metrics;
mod raft_engine_log;
mod rocks_log;
mod storage;

pub use engine::{MetaKey, RaftLogBatch, RaftLogEngine};
pub use error::{Error, Result};
pub use raft_engine_log::{RaftEngineConfig, RaftEngineLog};
pub use rocks_log::RocksLog;
pub use storage::{clear_region, RaftLogStorage, StagedAppend};

#[cfg(test)]
mod tests;
