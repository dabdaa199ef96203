//! The placement driver (PD): the cluster's brain.
//!
//! PD owns the cluster id, the timestamp oracle ([`tso`]), the ID allocator ([`id`]), the
//! metadata of stores, regions, keyspaces and the GC safe point ([`cluster`]), and scheduling
//! ([`schedule`]): operators that region leaders receive in heartbeat responses. It serves
//! `pdpb.PD`, `keyspacepb.Keyspace` and an HTTP API on one port ([`api`], [`server`]).
//!
//! All metadata lives behind [`storage::MetaStore`], written durably before a change is
//! acknowledged. One PD process serves the cluster for now; a replicated PD will put consensus
//! behind the same interface.
//!
//! Depends on the protocol crate, the engine crates (for its metadata store) and the key codec;
//! never on raftstore or storage.

pub mod api;
pub mod cluster;
pub mod config;
pub mod error;
pub mod id;
pub mod metrics;
pub mod schedule;
pub mod server;
pub mod storage;
pub mod tso;

pub use config::Config;
pub use error::{PdError, Result};
pub use server::{PdState, Server, ServerError};
