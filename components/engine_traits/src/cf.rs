//! Column family names.

/// The name of a column family. Every engine creates all of [`ALL_CFS`] when it opens.
pub type CfName = &'static str;

/// User values of raw KV, and large values of transactional writes (key + start_ts).
pub const CF_DEFAULT: CfName = "default";
/// Percolator locks (key -> lock), at most one per key.
pub const CF_LOCK: CfName = "lock";
/// Percolator commit and rollback records (key + commit_ts -> write record).
pub const CF_WRITE: CfName = "write";
/// Per-region replica metadata: region local state and apply state.
pub const CF_RAFT: CfName = "raft";

/// Column families that hold user data, in the order snapshots send them.
pub const DATA_CFS: &[CfName] = &[CF_DEFAULT, CF_LOCK, CF_WRITE];
/// Every column family an engine must have.
pub const ALL_CFS: &[CfName] = &[CF_DEFAULT, CF_LOCK, CF_WRITE, CF_RAFT];

/// The data column family named `name`, as requests and snapshots name them (empty means
/// default); `None` for anything else, `raft` included.
pub fn data_cf(name: &str) -> Option<CfName> {
    if name.is_empty() {
        return Some(CF_DEFAULT);
    }
    DATA_CFS.iter().find(|cf| **cf == name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cfs_by_name() {
        assert_eq!(data_cf(""), Some(CF_DEFAULT));
        assert_eq!(data_cf("write"), Some(CF_WRITE));
        assert_eq!(data_cf("raft"), None);
        assert_eq!(data_cf("nope"), None);
    }
}
