//! gRPC services of a store.

pub mod debug;
pub mod kv;
pub mod raft;
pub mod unimplemented;
