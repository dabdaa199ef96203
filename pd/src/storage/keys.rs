//! Every metadata key PD writes, shaped like the etcd paths of upstream PD.
//!
//! | key | value |
//! |---|---|
//! | `meta/cluster_id` | u64, generated once |
//! | `meta/member` | JSON [`crate::server::MemberRecord`]: this PD's name and member id |
//! | `meta/cluster` | `metapb.Cluster`, written at bootstrap |
//! | `meta/bootstrap_time` | u64, Unix milliseconds |
//! | `meta/replication` | JSON replication config (max-replicas) |
//! | `raft/s/{id:020}` | `metapb.Store` |
//! | `raft/r/{id:020}` | `metapb.Region` |
//! | `alloc_id` | u64, the end of the allocated ID window |
//! | `timestamp` | u64, the TSO window: no timestamp at or above this physical time was issued |
//! | `gc/safe_point` | u64 |
//! | `keyspaces/meta/{id:08}` | `keyspacepb.KeyspaceMeta` |
//! | `keyspaces/id/{name}` | u64 keyspace id |
//! | `keyspaces/next_id` | u64, the next id to give a new keyspace |

pub const CLUSTER_ID: &str = "meta/cluster_id";
pub const MEMBER: &str = "meta/member";
pub const CLUSTER: &str = "meta/cluster";
pub const BOOTSTRAP_TIME: &str = "meta/bootstrap_time";
pub const REPLICATION: &str = "meta/replication";
pub const STORE_PREFIX: &str = "raft/s/";
pub const REGION_PREFIX: &str = "raft/r/";
pub const ALLOC_ID: &str = "alloc_id";
pub const TIMESTAMP: &str = "timestamp";
pub const GC_SAFE_POINT: &str = "gc/safe_point";
pub const KEYSPACE_META_PREFIX: &str = "keyspaces/meta/";
pub const KEYSPACE_NAME_PREFIX: &str = "keyspaces/id/";
pub const KEYSPACE_NEXT_ID: &str = "keyspaces/next_id";

pub fn store(id: u64) -> String {
    format!("{STORE_PREFIX}{id:020}")
}

pub fn region(id: u64) -> String {
    format!("{REGION_PREFIX}{id:020}")
}

pub fn keyspace_meta(id: u32) -> String {
    format!("{KEYSPACE_META_PREFIX}{id:08}")
}

pub fn keyspace_name(name: &str) -> String {
    format!("{KEYSPACE_NAME_PREFIX}{name}")
}
