//! PD's client-facing APIs: gRPC (`pdpb.PD`, `keyspacepb.Keyspace`) and the HTTP API, served
//! together on each client URL.

pub mod grpc;
pub mod http;
