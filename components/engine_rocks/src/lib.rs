//! The production [`engine_traits::KvEngine`]: RocksDB through the `rocksdb` crate.
//!
//! This is the only crate that links RocksDB. It owns opening a database with every column
//! family of [`engine_traits::ALL_CFS`], and adapting RocksDB's borrowed snapshots and iterators
//! to the owned handles the traits require (see `snapshot.rs` for why that is sound).
//!
//! Key types: [`RocksEngine`], [`RocksSnapshot`], [`RocksIterator`], [`RocksWriteBatch`],
//! [`RocksConfig`].

mod config;
mod engine;
mod iterator;
mod snapshot;
mod write_batch;

pub use config::RocksConfig;
pub use engine::RocksEngine;
pub use iterator::RocksIterator;
pub use snapshot::RocksSnapshot;
pub use write_batch::RocksWriteBatch;

type Db = rocksdb::DB;

fn engine_error(e: rocksdb::Error) -> engine_traits::Error {
    engine_traits::Error::Engine(e.into_string())
}

#[cfg(test)]
mod tests;
