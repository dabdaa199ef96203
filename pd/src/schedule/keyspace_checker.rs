//! The keyspace checker: splits regions at keyspace boundaries.

use super::{Operator, OperatorStep};
use crate::cluster::{Cluster, RegionInfo};

/// Splits a region that contains keyspace boundaries strictly inside it, so every keyspace's
/// raw and transactional ranges start as their own regions.
pub(super) fn check_keyspace_split(
    cluster: &Cluster,
    region: &RegionInfo,
    now: u64,
) -> Option<Operator> {
    let start = region.region.start_key.as_slice();
    let end = region.region.end_key.as_slice();
    let keys: Vec<Vec<u8>> = cluster
        .keyspaces()
        .region_boundaries()
        .into_iter()
        .filter(|k| k.as_slice() > start && (end.is_empty() || k.as_slice() < end))
        .collect();
    if keys.is_empty() {
        return None;
    }
    Some(Operator {
        region_id: region.id(),
        epoch: region.epoch(),
        step: OperatorStep::Split { keys },
        reason: "keyspace boundary".into(),
        created_ms: now,
    })
}
