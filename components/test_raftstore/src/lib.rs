//! An in-process cluster for raftstore tests, in the shape of TiKV's `test_raftstore`.
//!
//! * [`Cluster`] runs N stores in this process, each on its own RocksDB and raft-engine
//!   directories, with PD's cluster logic standing in for PD ([`pd::TestPd`]). A store can be
//!   stopped and restarted on its data, as after `kill -9`.
//! * [`transport::Network`] carries raft messages between the stores through [`filter`]s:
//!   partitions, an isolated store, dropped message types, seeded random drops and delays.
//! * Clients call each store's storage with the request a real client would send and retry
//!   on region errors as it does ([`Cluster::call`], [`client`]).
//!
//! Every random choice comes from one seed (`TEST_SEED` in the environment overrides the
//! config's), printed at start, so a failing case replays.

pub mod client;
pub mod cluster;
pub mod filter;
pub mod pd;
pub mod rng;
pub mod transport;

pub use client::RawError;
pub use cluster::{CallError, Cluster, ClusterConfig, TestStorage};
pub use filter::{Delay, DropType, Filter, Isolate, Partition, RandomDelay, RandomDrop, Verdict};
pub use rng::SeededRng;
pub use transport::FilterId;
