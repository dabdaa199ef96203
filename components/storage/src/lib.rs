//! The storage layer (seed: `Storage` -> `Engine` -> `RaftKv`).
//!
//! * [`Storage`]: the facade the KV service holds, with a raw half ([`raw::RawStorage`]) and a
//!   transactional half ([`txn::TxnStorage`]) that share one engine and one latch table
//!   ([`latch`]).
//! * [`kv`]: the [`kv::Engine`] trait storage runs on: `async_snapshot` gives a consistent,
//!   region-bounded view; `async_write` applies a batch of modifications once it is durable
//!   and replicated. Raftstore implements it as `RaftKv`; tests use `kv::mock::MockEngine`
//!   (also exported to other crates with the `testexport` feature).
//! * [`api_version`]: how each API version's keys map to storage keys.
//! * [`raw`]: the raw KV API with TTLs and compare-and-swap, and [`raw::service`], which maps
//!   `kvrpcpb` raw requests to responses.
//! * [`txn`]: Percolator transactions: a scheduler, one file per command, the actions they
//!   share, and [`txn::service`]; on [`mvcc`] (readers, scanners and the writer over the
//!   default, lock and write column families) and the [`concurrency_manager`] (`max_ts` and
//!   in-memory locks for async commit and 1PC).
//! * [`config`] holds [`StorageConfig`] (key size limit, scheduler flow control).
//! * [`error`]: [`Error`], and how it splits into a response's `region_error` or `error`.
//!
//! Storage never depends on raftstore: region routing, leadership and replication stay behind
//! the `Engine` trait and come back only as region errors (`errorpb::Error`).

pub mod api_version;
pub mod concurrency_manager;
pub mod config;
pub mod error;
pub mod kv;
pub mod latch;
pub mod lock_manager;
pub mod metrics;
pub mod mvcc;
pub mod raw;
pub mod split;
pub mod txn;

use std::sync::Arc;

pub use config::StorageConfig;
pub use error::{Error, ResponseError, Result};
pub use raw::RawStorage;
pub use txn::TxnStorage;

use concurrency_manager::ConcurrencyManager;
use kv::Engine;
use latch::Latches;
use lock_manager::{LockManager, LockWaitConfig};

/// The storage a KV service holds. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Storage<E: Engine> {
    raw: RawStorage<E>,
    txn: TxnStorage<E>,
}

impl<E: Engine> Storage<E> {
    /// Storage on `engine`; `config` should have passed [`StorageConfig::validate`].
    /// `concurrency_manager` is the store's (its `max_ts` should start at a recent PD
    /// timestamp).
    /// Lock waits are detected for deadlocks among this storage's own waits.
    pub fn new(engine: E, config: StorageConfig, concurrency_manager: ConcurrencyManager) -> Self {
        let lock_manager = LockManager::local(LockWaitConfig::default());
        Self::with_parts(
            engine,
            config,
            concurrency_manager,
            lock_manager,
            raw::system_clock(),
        )
    }

    /// Storage whose lock waits go through `lock_manager` (a store's reports to the cluster's
    /// deadlock detector) and whose raw TTLs are measured with `clock` (a store uses PD's
    /// time, so that stores agree on expiry whatever their own clocks say).
    pub fn with_parts(
        engine: E,
        config: StorageConfig,
        concurrency_manager: ConcurrencyManager,
        lock_manager: LockManager,
        clock: raw::Clock,
    ) -> Self {
        let latches = Arc::new(Latches::default());
        let raw = RawStorage::with_latches(engine.clone(), config.clone(), clock, latches.clone());
        let txn = TxnStorage::new(engine, config, latches, concurrency_manager, lock_manager);
        Storage { raw, txn }
    }

    /// The raw KV half.
    pub fn raw(&self) -> &RawStorage<E> {
        &self.raw
    }

    /// The transactional half.
    pub fn txn(&self) -> &TxnStorage<E> {
        &self.txn
    }

    /// The engine both halves run on.
    pub fn engine(&self) -> &E {
        self.raw.engine()
    }
}
