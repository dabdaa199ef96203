//! Operators: one scheduling step for one region, and how it reaches the region's leader.

use kvproto::{metapb, pdpb};
use serde::Serialize;

use crate::cluster::{hex_upper, RegionInfo};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorStep {
    /// Adds the peer as a learner: it catches up without counting toward the quorum, and the
    /// replica checker promotes it once it has (a new voter that still needs a snapshot would
    /// make the group depend on an empty replica).
    AddPeer {
        peer: metapb::Peer,
    },
    /// Makes a caught-up learner a voter.
    PromoteLearner {
        peer: metapb::Peer,
    },
    RemovePeer {
        peer: metapb::Peer,
    },
    TransferLeader {
        peer: metapb::Peer,
    },
    Split {
        keys: Vec<Vec<u8>>,
    },
}

#[derive(Clone, Debug)]
pub struct Operator {
    pub region_id: u64,
    /// The region's epoch when the operator was created; stores refuse a step whose epoch is
    /// stale.
    pub epoch: metapb::RegionEpoch,
    pub step: OperatorStep,
    /// Why the operator exists, for logs and the HTTP API.
    pub reason: String,
    pub created_ms: u64,
}

/// An operator as the HTTP API shows it.
#[derive(Serialize)]
pub struct OperatorView {
    pub region_id: u64,
    pub kind: &'static str,
    pub desc: String,
    pub reason: String,
    pub created_ms: u64,
}

impl Operator {
    pub(super) fn is_finished(&self, region: &RegionInfo) -> bool {
        let peers = &region.region.peers;
        match &self.step {
            OperatorStep::AddPeer { peer } => peers.iter().any(|p| p.store_id == peer.store_id),
            OperatorStep::PromoteLearner { peer } => peers
                .iter()
                .any(|p| p.id == peer.id && p.role == metapb::PeerRole::Voter as i32),
            OperatorStep::RemovePeer { peer } => peers.iter().all(|p| p.id != peer.id),
            OperatorStep::TransferLeader { peer } => {
                region.leader.as_ref().map(|l| l.store_id) == Some(peer.store_id)
            }
            OperatorStep::Split { .. } => region.epoch().version > self.epoch.version,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.step {
            OperatorStep::AddPeer { .. } => "add-peer",
            OperatorStep::PromoteLearner { .. } => "promote-learner",
            OperatorStep::RemovePeer { .. } => "remove-peer",
            OperatorStep::TransferLeader { .. } => "transfer-leader",
            OperatorStep::Split { .. } => "split-region",
        }
    }

    pub fn describe(&self) -> String {
        match &self.step {
            OperatorStep::AddPeer { peer } => {
                format!("add learner {} on store {}", peer.id, peer.store_id)
            }
            OperatorStep::PromoteLearner { peer } => {
                format!("promote learner {} on store {}", peer.id, peer.store_id)
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
                    peer: Some(metapb::Peer {
                        role: metapb::PeerRole::Learner as i32,
                        ..*peer
                    }),
                    change_type: pdpb::ConfChangeType::AddLearnerNode as i32,
                });
            }
            OperatorStep::PromoteLearner { peer } => {
                resp.change_peer = Some(pdpb::ChangePeer {
                    peer: Some(metapb::Peer {
                        role: metapb::PeerRole::Voter as i32,
                        ..*peer
                    }),
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
