//! The storage layer (seed: `Storage` -> `Engine` -> `RaftKv`).
//!
//! * [`kv`]: the [`kv::Engine`] trait storage runs on: `async_snapshot` gives a consistent,
//!   region-bounded view; `async_write` applies a batch of modifications once it is durable
//!   and replicated. Raftstore implements it as `RaftKv`; tests use `kv::mock::MockEngine`
//!   (also exported to other crates with the `testexport` feature).
//! * [`raw`]: the raw KV API, [`raw::RawStorage`], with API V1/V2 key encoding, TTLs and
//!   compare-and-swap, and [`raw::service`], which maps `kvrpcpb` raw requests to responses.
//! * [`config`]: [`StorageConfig`] (key size limit).
//! * [`error`]: [`Error`], and how it splits into a response's `region_error` or `error`.
//!
//! Storage never depends on raftstore: region routing, leadership and replication stay behind
//! the `Engine` trait and come back only as region errors (`errorpb::Error`).

pub mod config;
pub mod error;
pub mod kv;
pub mod raw;

pub use config::StorageConfig;
pub use error::{Error, ResponseError, Result};
pub use raw::RawStorage;
