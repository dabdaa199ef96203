//! The replica checker: keeps every region at `max-replicas` replicas on distinct, live stores.
//!
//! For a region without a running operator it decides, in this order, as PD's replica checker:
//!
//! 1. A peer on a down, tombstone or unknown store is replaced: while the region has fewer
//!    healthy peers than max-replicas, a new peer is added on a suitable store; once it has
//!    enough, the bad peer is removed. Adding first keeps the number of live replicas from
//!    dropping while the data moves.
//! 2. A region with too few peers gets one more on a suitable store.
//! 3. A region with too many peers loses one: not the leader's, preferably one on a store that
//!    is not Up, else the one on the store holding the most replicas.
//!
//! A suitable store is Up, heard from within max-store-down-time and holds no peer of the
//! region; of those, the one with the fewest replicas wins, counting the replicas that running
//! operators are adding or removing so that a burst of heartbeats does not pile every new
//! replica onto the same store. The leader's peer is never replaced nor removed: the leader
//! just sent the heartbeat, so its store is alive whatever its last store heartbeat says.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kvproto::metapb;
use tracing::{debug, warn};

use super::{Operator, OperatorStep};
use crate::cluster::{Cluster, RegionInfo, StoreHealth};

/// Returns the operator that brings `region` closer to max-replicas healthy replicas, if it
/// needs one. `running` holds the other regions' operators.
pub(super) fn check_replicas(
    cluster: &Cluster,
    region: &RegionInfo,
    max_store_down_time: Duration,
    running: &HashMap<u64, Operator>,
    now: u64,
) -> Option<Operator> {
    let start_ms = cluster.start_time_ms();
    let stores = cluster
        .stores(false)
        .ok()?
        .iter()
        .map(|s| (s.id(), s.health(now, start_ms, max_store_down_time)))
        .collect();
    let checker = ReplicaChecker {
        cluster,
        region,
        stores,
        running,
        now,
    };
    checker.check()
}

struct ReplicaChecker<'a> {
    cluster: &'a Cluster,
    region: &'a RegionInfo,
    /// Every store PD knows, tombstones included; a peer's store missing here is unknown.
    stores: BTreeMap<u64, StoreHealth>,
    running: &'a HashMap<u64, Operator>,
    now: u64,
}

impl ReplicaChecker<'_> {
    fn check(&self) -> Option<Operator> {
        let max_replicas = self.cluster.replication().max_replicas as usize;
        if let Some(learner) = self.region.region.peers.iter().find(|p| is_learner(p)) {
            return self.check_learner(learner);
        }
        let peers = &self.region.region.peers;
        let bad: Vec<(metapb::Peer, &'static str)> = peers
            .iter()
            .filter_map(|p| self.replace_reason(p).map(|why| (*p, why)))
            .collect();
        if let Some((peer, why)) = bad.first() {
            let reason = format!("replica checker: {why} store {}", peer.store_id);
            return if peers.len() - bad.len() < max_replicas {
                self.add_peer(reason)
            } else {
                Some(self.operator(OperatorStep::RemovePeer { peer: *peer }, reason))
            };
        }
        match peers.len().cmp(&max_replicas) {
            Ordering::Less => self.add_peer("replica checker: missing replica".into()),
            Ordering::Greater => self.remove_extra_peer(),
            Ordering::Equal => None,
        }
    }

    /// A learner is one step of adding a replica: removed if its store went bad, promoted
    /// once it has caught up (the leader no longer reports it pending), else waited for.
    fn check_learner(&self, learner: &metapb::Peer) -> Option<Operator> {
        if let Some(why) = self.replace_reason(learner) {
            let reason = format!(
                "replica checker: learner on {why} store {}",
                learner.store_id
            );
            return Some(self.operator(OperatorStep::RemovePeer { peer: *learner }, reason));
        }
        if self.region.pending_peers.iter().any(|p| p.id == learner.id) {
            return None;
        }
        Some(self.operator(
            OperatorStep::PromoteLearner { peer: *learner },
            "replica checker: learner caught up".into(),
        ))
    }

    /// Returns why `peer` must be replaced (its store is down, removed or unknown), or `None`
    /// if it is healthy.
    fn replace_reason(&self, peer: &metapb::Peer) -> Option<&'static str> {
        if self.is_leader(peer) {
            return None;
        }
        match self.stores.get(&peer.store_id) {
            None => Some("unknown"),
            Some(StoreHealth::Down) => Some("down"),
            Some(StoreHealth::Tombstone) => Some("tombstone"),
            Some(StoreHealth::Up | StoreHealth::Offline) => None,
        }
    }

    fn is_leader(&self, peer: &metapb::Peer) -> bool {
        self.region
            .leader
            .is_some_and(|leader| leader.id == peer.id)
    }

    fn add_peer(&self, reason: String) -> Option<Operator> {
        let region_id = self.region.id();
        let Some(store_id) = self.target_store() else {
            debug!(region_id, reason, "no store can take a new replica");
            return None;
        };
        let peer_id = match self.cluster.alloc_id() {
            Ok(id) => id,
            Err(e) => {
                warn!(region_id, error = %e, "cannot allocate a peer id; will retry");
                return None;
            }
        };
        let peer = metapb::Peer {
            id: peer_id,
            store_id,
            ..Default::default()
        };
        Some(self.operator(OperatorStep::AddPeer { peer }, reason))
    }

    /// Returns the suitable store with the fewest replicas, the lowest id on a tie.
    fn target_store(&self) -> Option<u64> {
        let counts = self.replica_counts();
        let peers = &self.region.region.peers;
        self.stores
            .iter()
            .filter(|(id, health)| {
                **health == StoreHealth::Up && peers.iter().all(|p| p.store_id != **id)
            })
            .min_by_key(|(id, _)| (counts.get(*id).copied().unwrap_or(0), **id))
            .map(|(id, _)| *id)
    }

    /// Removes a non-leader peer: one on a store that is not Up first, then the one on the
    /// store with the most replicas, the highest store id on a tie.
    fn remove_extra_peer(&self) -> Option<Operator> {
        let counts = self.replica_counts();
        let peer = self
            .region
            .region
            .peers
            .iter()
            .filter(|p| !self.is_leader(p))
            .max_by_key(|p| {
                (
                    self.stores.get(&p.store_id) != Some(&StoreHealth::Up),
                    counts.get(&p.store_id).copied().unwrap_or(0),
                    p.store_id,
                )
            })?;
        Some(self.operator(
            OperatorStep::RemovePeer { peer: *peer },
            "replica checker: extra replica".into(),
        ))
    }

    /// Returns the replicas per store that the region tree shows, adjusted by the peers that
    /// running operators add or remove.
    fn replica_counts(&self) -> BTreeMap<u64, i64> {
        let (_, per_store) = self.cluster.region_counts();
        let mut counts: BTreeMap<u64, i64> = per_store
            .into_iter()
            .map(|(store_id, (regions, _))| (store_id, regions as i64))
            .collect();
        for op in self.running.values() {
            match &op.step {
                OperatorStep::AddPeer { peer } => *counts.entry(peer.store_id).or_default() += 1,
                OperatorStep::RemovePeer { peer } => *counts.entry(peer.store_id).or_default() -= 1,
                OperatorStep::PromoteLearner { .. }
                | OperatorStep::TransferLeader { .. }
                | OperatorStep::Split { .. } => {}
            }
        }
        counts
    }

    fn operator(&self, step: OperatorStep, reason: String) -> Operator {
        Operator {
            region_id: self.region.id(),
            epoch: self.region.epoch(),
            step,
            reason,
            created_ms: self.now,
        }
    }
}

fn is_learner(peer: &metapb::Peer) -> bool {
    peer.role == metapb::PeerRole::Learner as i32
}
