//! The leader balancer (PD's `balance-leader-scheduler`): spreads leaderships evenly over the
//! Up stores, so that no one store serves every region's requests and leads every raft group.
//! Regions split from one region all start led from its leader's store.
//!
//! Counting the moves of running transfers, it moves a region's leadership to the voter whose
//! store leads the fewest regions when that store leads at least two fewer than the leader's.
//! Only stores that are Up and sent a heartbeat within the last 20 s count.
//! At most `leader-schedule-limit` transfers run at once (0 turns the balancer off). A region
//! with a learner, a down or a pending peer keeps its leader: it is the replica checker's.

use std::collections::HashMap;
use std::time::Duration;

use super::{Operator, OperatorStep};
use crate::cluster::{Cluster, RegionInfo, StoreHealth};

/// A store silent this long is left out, as PD's disconnected stores are: it may have died,
/// and a transfer to a dead replica stops the region's writes until the transfer times out.
const DISCONNECTED_AFTER_MS: u64 = 20_000;

/// One scheduling pass's view of the leader counts.
pub(super) struct LeaderBalancer {
    /// Regions each Up store leads, counting the moves of running transfers.
    counts: HashMap<u64, i64>,
    /// Transfers that may still start in this pass.
    slots: usize,
    now: u64,
}

impl LeaderBalancer {
    pub(super) fn new(
        cluster: &Cluster,
        running: &HashMap<u64, Operator>,
        limit: usize,
        max_store_down_time: Duration,
        now: u64,
    ) -> Self {
        let start_ms = cluster.start_time_ms();
        let leaders = cluster.leader_counts();
        let mut counts: HashMap<u64, i64> = cluster
            .stores(true)
            .unwrap_or_default()
            .iter()
            .filter(|s| {
                s.health(now, start_ms, max_store_down_time) == StoreHealth::Up
                    && now.saturating_sub(s.last_heartbeat_ms) <= DISCONNECTED_AFTER_MS
            })
            .map(|s| (s.id(), leaders.get(&s.id()).copied().unwrap_or(0) as i64))
            .collect();
        let mut transfers = 0;
        for op in running.values() {
            let OperatorStep::TransferLeader { peer } = &op.step else {
                continue;
            };
            transfers += 1;
            if let Some(count) = counts.get_mut(&peer.store_id) {
                *count += 1;
            }
            let source = cluster
                .region_by_id(op.region_id)
                .ok()
                .and_then(|r| r.leader)
                .map(|l| l.store_id);
            if let Some(count) = source.and_then(|s| counts.get_mut(&s)) {
                *count -= 1;
            }
        }
        LeaderBalancer {
            counts,
            slots: limit.saturating_sub(transfers),
            now,
        }
    }

    /// Whether every Up store leads within one region of every other.
    pub(super) fn is_balanced(&self) -> bool {
        let most = self.counts.values().max().copied().unwrap_or(0);
        let fewest = self.counts.values().min().copied().unwrap_or(0);
        most - fewest < 2
    }

    /// Whether no more transfers may start in this pass.
    pub(super) fn is_full(&self) -> bool {
        self.slots == 0
    }

    /// The transfer that moves `region`'s leadership to a store leading fewer regions, if it
    /// should move; counted as running from now on.
    pub(super) fn check(&mut self, region: &RegionInfo) -> Option<Operator> {
        if self.slots == 0 || !region.down_peers.is_empty() || !region.pending_peers.is_empty() {
            return None;
        }
        let leader = region.leader?;
        let peers = &region.region.peers;
        if peers
            .iter()
            .any(|p| p.role == kvproto::metapb::PeerRole::Learner as i32)
        {
            return None;
        }
        let source = *self.counts.get(&leader.store_id)?;
        let (target, target_count) = peers
            .iter()
            .filter(|p| p.id != leader.id)
            .filter_map(|p| self.counts.get(&p.store_id).map(|count| (*p, *count)))
            .min_by_key(|(p, count)| (*count, p.store_id))?;
        if source - target_count < 2 {
            return None;
        }
        *self
            .counts
            .get_mut(&leader.store_id)
            .expect("counted above") -= 1;
        *self
            .counts
            .get_mut(&target.store_id)
            .expect("counted above") += 1;
        self.slots -= 1;
        Some(Operator {
            region_id: region.id(),
            epoch: region.epoch(),
            step: OperatorStep::TransferLeader { peer: target },
            reason: format!(
                "balance-leader: store {} leads {source} regions, store {} leads {target_count}",
                leader.store_id, target.store_id
            ),
            created_ms: self.now,
        })
    }
}
