//! Scheduling: operators that PD hands to region leaders in region heartbeat responses.
//!
//! An [`Operator`] is one step for one region: add a peer, remove a peer, transfer the
//! leadership or split at given keys. Operators come from checkers (today the keyspace
//! checker, which splits regions at keyspace boundaries) and from the HTTP API. While an
//! operator is running, every heartbeat of its region either shows the goal reached (the
//! operator finishes), or gets the step again, as PD re-dispatches on heartbeats, until the
//! operator times out.

use std::collections::HashMap;
use std::time::Duration;

use kvproto::{metapb, pdpb};
use parking_lot::Mutex;
use serde::Serialize;
use tracing::{debug, info};

use crate::cluster::{hex_upper, Cluster, RegionInfo};
use crate::error::{PdError, Result};

/// How long an operator may run before it is dropped (and possibly created again).
pub const OPERATOR_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorStep {
    AddPeer { peer: metapb::Peer },
    RemovePeer { peer: metapb::Peer },
    TransferLeader { peer: metapb::Peer },
    Split { keys: Vec<Vec<u8>> },
}

#[derive(Clone, Debug)]
pub struct Operator {
    pub region_id: u64,
    /// The region's epoch when the operator was created; stores refuse a step whose epoch is
    /// stale.
    pub epoch: metapb::RegionEpoch,
    pub step: OperatorStep,
    pub reason: &'static str,
    pub created_ms: u64,
}

/// An operator as the HTTP API shows it.
#[derive(Serialize)]
pub struct OperatorView {
    pub region_id: u64,
    pub kind: &'static str,
    pub desc: String,
    pub reason: &'static str,
    pub created_ms: u64,
}

impl Operator {
    fn is_finished(&self, region: &RegionInfo) -> bool {
        let peers = &region.region.peers;
        match &self.step {
            OperatorStep::AddPeer { peer } => peers.iter().any(|p| p.store_id == peer.store_id),
            OperatorStep::RemovePeer { peer } => peers.iter().all(|p| p.id != peer.id),
            OperatorStep::TransferLeader { peer } => {
                region.leader.as_ref().map(|l| l.store_id) == Some(peer.store_id)
            }
            OperatorStep::Split { .. } => region.epoch().version > self.epoch.version,
        }
    }

    fn kind(&self) -> &'static str {
        match self.step {
            OperatorStep::AddPeer { .. } => "add-peer",
            OperatorStep::RemovePeer { .. } => "remove-peer",
            OperatorStep::TransferLeader { .. } => "transfer-leader",
            OperatorStep::Split { .. } => "split-region",
        }
    }

    fn describe(&self) -> String {
        match &self.step {
            OperatorStep::AddPeer { peer } => {
                format!("add peer {} on store {}", peer.id, peer.store_id)
            }
            OperatorStep::RemovePeer { peer } => {
                format!("remove peer {} on store {}", peer.id, peer.store_id)
            }
            OperatorStep::TransferLeader { peer } => {
                format!("transfer leader to store {}", peer.store_id)
            }
            OperatorStep::Split { keys } => format!(
                "split at {}",
                keys.iter()
                    .map(|k| hex_upper(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Returns the heartbeat response that carries this step.
    pub fn to_response(&self, leader: Option<metapb::Peer>) -> pdpb::RegionHeartbeatResponse {
        let mut resp = pdpb::RegionHeartbeatResponse {
            region_id: self.region_id,
            region_epoch: Some(self.epoch),
            target_peer: leader,
            ..Default::default()
        };
        match &self.step {
            OperatorStep::AddPeer { peer } => {
                resp.change_peer = Some(pdpb::ChangePeer {
                    peer: Some(*peer),
                    change_type: pdpb::ConfChangeType::AddNode as i32,
                });
            }
            OperatorStep::RemovePeer { peer } => {
                resp.change_peer = Some(pdpb::ChangePeer {
                    peer: Some(*peer),
                    change_type: pdpb::ConfChangeType::RemoveNode as i32,
                });
            }
            OperatorStep::TransferLeader { peer } => {
                resp.transfer_leader = Some(pdpb::TransferLeader {
                    peer: Some(*peer),
                    peers: vec![*peer],
                });
            }
            OperatorStep::Split { keys } => {
                resp.split_region = Some(pdpb::SplitRegion {
                    policy: pdpb::CheckPolicy::Usekey as i32,
                    keys: keys.clone(),
                });
            }
        }
        resp
    }
}

/// Running operators, at most one per region.
#[derive(Default)]
pub struct OperatorController {
    running: Mutex<HashMap<u64, Operator>>,
}

impl OperatorController {
    /// Handles a region's heartbeat: finishes or times out its operator, creates one if a
    /// checker wants one, and returns the step to send back, if any.
    pub fn on_region_heartbeat(
        &self,
        cluster: &Cluster,
        region: &RegionInfo,
    ) -> Option<pdpb::RegionHeartbeatResponse> {
        let now = cluster.now_ms();
        let mut running = self.running.lock();
        if let Some(op) = running.get(&region.id()) {
            if op.is_finished(region) {
                info!(region_id = op.region_id, op = %op.describe(), "operator finished");
                running.remove(&region.id());
            } else if now.saturating_sub(op.created_ms) > OPERATOR_TIMEOUT.as_millis() as u64 {
                info!(region_id = op.region_id, op = %op.describe(), "operator timed out");
                running.remove(&region.id());
            } else {
                return Some(op.to_response(region.leader));
            }
        }
        let op = check_keyspace_split(cluster, region, now)?;
        debug!(region_id = op.region_id, op = %op.describe(), "operator created");
        let resp = op.to_response(region.leader);
        running.insert(region.id(), op);
        Some(resp)
    }

    /// Adds an operator from the HTTP API, replacing none: a region runs one at a time.
    ///
    /// # Errors
    ///
    /// [`PdError::Duplicated`] if the region already has an operator.
    pub fn add(&self, op: Operator) -> Result<()> {
        let mut running = self.running.lock();
        if let Some(existing) = running.get(&op.region_id) {
            return Err(PdError::Duplicated {
                what: format!(
                    "operator for region {} ({})",
                    op.region_id,
                    existing.describe()
                ),
            });
        }
        info!(region_id = op.region_id, op = %op.describe(), reason = op.reason, "operator added");
        running.insert(op.region_id, op);
        Ok(())
    }

    pub fn list(&self) -> Vec<OperatorView> {
        let mut ops: Vec<OperatorView> = self
            .running
            .lock()
            .values()
            .map(|op| OperatorView {
                region_id: op.region_id,
                kind: op.kind(),
                desc: op.describe(),
                reason: op.reason,
                created_ms: op.created_ms,
            })
            .collect();
        ops.sort_by_key(|op| op.region_id);
        ops
    }
}

/// Splits a region that contains keyspace boundaries strictly inside it, so every keyspace's
/// raw and transactional ranges start as their own regions.
fn check_keyspace_split(cluster: &Cluster, region: &RegionInfo, now: u64) -> Option<Operator> {
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
        reason: "keyspace boundary",
        created_ms: now,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::ReplicationConfig;
    use crate::storage::{self, MetaStore};

    fn bootstrapped_cluster() -> Cluster {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let cluster =
            Cluster::open(store, 7, ReplicationConfig::default(), Arc::new(|| 1_000)).unwrap();
        let store = metapb::Store {
            id: 1,
            address: "127.0.0.1:20160".into(),
            ..Default::default()
        };
        let region = whole_region(2, 1);
        cluster.bootstrap(store, region).unwrap();
        cluster
    }

    fn whole_region(id: u64, version: u64) -> metapb::Region {
        metapb::Region {
            id,
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version,
            }),
            peers: vec![metapb::Peer {
                id: 3,
                store_id: 1,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn heartbeat(region: metapb::Region) -> RegionInfo {
        let leader = region.peers[0];
        RegionInfo {
            region,
            leader: Some(leader),
            ..RegionInfo::default()
        }
    }

    #[test]
    fn first_region_is_split_at_default_keyspace_boundaries() {
        let cluster = bootstrapped_cluster();
        let ops = OperatorController::default();
        let info = heartbeat(whole_region(2, 1));
        let resp = ops
            .on_region_heartbeat(&cluster, &info)
            .expect("split operator");
        let split = resp.split_region.expect("split step");
        assert_eq!(split.policy, pdpb::CheckPolicy::Usekey as i32);
        assert_eq!(
            split.keys,
            codec::KeyspaceId::DEFAULT.region_boundaries().to_vec()
        );
        assert_eq!(resp.region_epoch.unwrap().version, 1);
        // Re-sent while the split has not happened.
        assert!(ops
            .on_region_heartbeat(&cluster, &info)
            .unwrap()
            .split_region
            .is_some());
        // A heartbeat with a newer version finishes it; the remaining region holds no
        // boundary strictly inside it.
        let mut left = whole_region(2, 5);
        left.end_key = split.keys[0].clone();
        assert!(ops
            .on_region_heartbeat(&cluster, &heartbeat(left))
            .is_none());
        assert!(ops.list().is_empty());
    }

    #[test]
    fn manual_operators_are_dispatched_once_per_region() {
        let cluster = bootstrapped_cluster();
        let ops = OperatorController::default();
        let target = metapb::Peer {
            id: 9,
            store_id: 4,
            ..Default::default()
        };
        let mut region = whole_region(2, 1);
        region.end_key = b"a".to_vec();
        let op = Operator {
            region_id: 2,
            epoch: region.region_epoch.unwrap(),
            step: OperatorStep::AddPeer { peer: target },
            reason: "test",
            created_ms: 1_000,
        };
        ops.add(op.clone()).unwrap();
        assert!(matches!(ops.add(op), Err(PdError::Duplicated { .. })));
        let resp = ops
            .on_region_heartbeat(&cluster, &heartbeat(region.clone()))
            .unwrap();
        let change = resp.change_peer.unwrap();
        assert_eq!(change.peer, Some(target));
        assert_eq!(change.change_type, pdpb::ConfChangeType::AddNode as i32);
        region.peers.push(target);
        assert!(ops
            .on_region_heartbeat(&cluster, &heartbeat(region))
            .is_none());
    }
}
