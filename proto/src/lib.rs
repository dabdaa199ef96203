//! Protocol definitions for our TiKV and PD reimplementation.
//!
//! This crate owns two things:
//!
//! * a wire-compatible subset of TiKV's `kvproto` (`metapb`, `errorpb`,
//!   `kvrpcpb`, `debugpb`, `deadlock`, `pdpb`, `keyspacepb`, `tikvpb`), with field names, field
//!   numbers and gRPC paths identical to upstream, so that the official
//!   `tikv-client` crate can talk to our servers unchanged;
//! * our internal store-to-store protocol and on-disk raftstore metadata
//!   (`raft_serverpb`), which only our own binaries speak.
//!
//! The `.proto` sources live in `proto/`. `build.rs` parses them with
//! `protox` and generates prost messages plus tonic clients and servers with
//! `tonic-prost-build`. The generated code must never be edited by hand:
//! change the `.proto` files instead.

/// Cluster metadata: regions, peers, stores.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod metapb {
    tonic::include_proto!("metapb");
}

/// Region errors carried in every TiKV response.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod errorpb {
    tonic::include_proto!("errorpb");
}

/// Raw and transactional key-value requests and responses.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod kvrpcpb {
    tonic::include_proto!("kvrpcpb");
}

/// The Debug service tikv-ctl talks to: a store's own engine, bypassing raft.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod debugpb {
    tonic::include_proto!("debugpb");
}

/// The deadlock detector's service and its wait-for entries.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod deadlock {
    tonic::include_proto!("deadlock");
}

/// The placement driver service (`pdpb.PD`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pdpb {
    tonic::include_proto!("pdpb");
}

/// The keyspace service (`keyspacepb.Keyspace`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod keyspacepb {
    tonic::include_proto!("keyspacepb");
}

/// The client-facing TiKV service (`tikvpb.Tikv`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod tikvpb {
    tonic::include_proto!("tikvpb");
}

/// Internal store-to-store messages (`raft_serverpb.RaftTransport`) and
/// persisted raftstore state.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod raft_serverpb {
    tonic::include_proto!("raft_serverpb");
}

/// Internal: commands proposed to a region's raft group and their responses.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod raft_cmdpb {
    tonic::include_proto!("raft_cmdpb");
}
