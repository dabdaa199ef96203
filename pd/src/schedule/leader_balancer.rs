//! The leader balancer (PD's `balance-leader-scheduler`): spreads leaderships evenly over the
//! Up stores, so that no one store serves every region's requests and leads every raft group.
//! Regions split from one region all start led from its leader's store.
//!
//! Counting the moves of running transfers, it moves a region's leadership to the voter whose
//! store leads the fewest regions when the leader's store leads more than twice the tolerance
//! more (PD's `tolerant-size-ratio`, 5 regions by default): as in PD, a few regions' leaders
//! are left where they are, and the leaderships of regions just split off a region are moved
//! in bulk, not one by one as each split makes the stores differ by two. Every move makes
//! clients that cached the old leader retry, and some retry loops multiply (client-rust's lock
//! scan re-plans the rest of its range on every region error).
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

/// PD's tolerance for leader counts when `tolerant-size-ratio` is 0 (`leaderTolerantSizeRatio`).
const DEFAULT_LEADER_TOLERANCE: i64 = 5;

/// The leader-count tolerance `tolerant-size-ratio` sets: PD reads the ratio as a number of
/// regions when it balances leaders by count, 0 meaning its default.
pub(super) fn leader_tolerance(tolerant_size_ratio: f64) -> i64 {
    if tolerant_size_ratio > 0.0 {
        // At least 1: with none, a store leading one region more than another would hand a
        // leadership back and forth.
        (tolerant_size_ratio as i64).max(1)
    } else {
        DEFAULT_LEADER_TOLERANCE
    }
}

/// One scheduling pass's view of the leader counts.
pub(super) struct LeaderBalancer {
    /// Regions each Up store leads, counting the moves of running transfers.
    counts: HashMap<u64, i64>,
    /// Transfers that may still start in this pass.
    slots: usize,
    /// A store leading more than twice this many regions more than another gives it some.
    tolerance: i64,
    now: u64,
}

impl LeaderBalancer {
    pub(super) fn new(
        cluster: &Cluster,
        running: &HashMap<u64, Operator>,
        limit: usize,
        tolerance: i64,
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
            tolerance,
            now,
        }
    }

    /// Whether no Up store leads more than twice the tolerance more regions than another.
    pub(super) fn is_balanced(&self) -> bool {
        let most = self.counts.values().max().copied().unwrap_or(0);
        let fewest = self.counts.values().min().copied().unwrap_or(0);
        !self.should_move(most, fewest)
    }

    /// PD's test: the source's count less the tolerance above the target's plus it.
    fn should_move(&self, source: i64, target: i64) -> bool {
        source - self.tolerance > target + self.tolerance
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
        if !self.should_move(source, target_count) {
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
