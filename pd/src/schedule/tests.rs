use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use config_types::ReadableDuration;
use kvproto::metapb;

use super::*;
use crate::cluster::{ReplicationConfig, StoreHealth};
use crate::storage::{self, keys, MetaStore};

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
        reason: "test".into(),
        created_ms: 1_000,
    };
    ops.add(op.clone()).unwrap();
    assert!(matches!(ops.add(op), Err(PdError::Duplicated { .. })));
    let resp = ops
        .on_region_heartbeat(&cluster, &heartbeat(region.clone()))
        .unwrap();
    let change = resp.change_peer.unwrap();
    let learner = metapb::Peer {
        role: metapb::PeerRole::Learner as i32,
        ..target
    };
    assert_eq!(change.peer, Some(learner));
    assert_eq!(
        change.change_type,
        pdpb::ConfChangeType::AddLearnerNode as i32
    );
    region.peers.push(learner);
    // The addition is done and not sent again (the replica checker may follow up on the
    // learner: that is another operator).
    let next = ops
        .on_region_heartbeat(&cluster, &heartbeat(region))
        .and_then(|resp| resp.change_peer);
    assert!(next.is_none_or(|c| c.change_type != pdpb::ConfChangeType::AddLearnerNode as i32));
}

/// Unix milliseconds at which the replica checker tests start.
const T0: u64 = 1_700_000_000_000;
/// The max-store-down-time of the replica checker tests.
const DOWN_MS: u64 = 2_000;

/// A bootstrapped cluster on an in-memory store with a manual clock, for the replica checker.
struct TestCluster {
    meta: Arc<dyn MetaStore>,
    time: Arc<AtomicU64>,
    cluster: Cluster,
    ops: OperatorController,
}

impl TestCluster {
    /// Stores `1..=store_count` are Up and have just reported.
    fn new(store_count: u64) -> Self {
        let meta: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let time = Arc::new(AtomicU64::new(T0));
        let test = TestCluster::open(meta, time);
        test.cluster
            .bootstrap(new_store(1), whole_region(2, 1))
            .unwrap();
        for id in 2..=store_count {
            test.cluster.put_store(new_store(id)).unwrap();
        }
        test
    }

    fn open(meta: Arc<dyn MetaStore>, time: Arc<AtomicU64>) -> Self {
        let clock = time.clone();
        let cluster = Cluster::open(
            meta.clone(),
            7,
            ReplicationConfig::default(),
            Arc::new(move || clock.load(Ordering::SeqCst)),
        )
        .unwrap();
        let ops = OperatorController::new(ScheduleConfig {
            max_store_down_time: ReadableDuration(Duration::from_millis(DOWN_MS)),
            ..ScheduleConfig::default()
        });
        TestCluster {
            meta,
            time,
            cluster,
            ops,
        }
    }

    /// Opens the metadata again, as a restarted PD does.
    fn restart(self) -> Self {
        TestCluster::open(self.meta, self.time)
    }

    fn advance(&self, ms: u64) {
        self.time.fetch_add(ms, Ordering::SeqCst);
    }

    fn store_heartbeats(&self, store_ids: &[u64]) {
        for &store_id in store_ids {
            self.cluster
                .store_heartbeat(pdpb::StoreStats {
                    store_id,
                    ..Default::default()
                })
                .unwrap();
        }
    }

    /// Sends a heartbeat of `region` led by its peer on `leader_store`, as the gRPC handler
    /// does: the region tree first, then the operator controller.
    fn heartbeat(
        &self,
        region: &metapb::Region,
        leader_store: u64,
    ) -> Option<pdpb::RegionHeartbeatResponse> {
        let leader = *region
            .peers
            .iter()
            .find(|p| p.store_id == leader_store)
            .expect("the leader is a peer");
        let info = RegionInfo {
            region: region.clone(),
            leader: Some(leader),
            ..RegionInfo::default()
        };
        self.cluster.region_heartbeat(info.clone()).unwrap();
        self.ops.on_region_heartbeat(&self.cluster, &info)
    }

    /// Returns the reason of the region's running operator.
    fn reason(&self, region_id: u64) -> String {
        let ops = self.ops.list();
        let op = ops.iter().find(|op| op.region_id == region_id);
        op.expect("a running operator").reason.clone()
    }
}

fn new_store(id: u64) -> metapb::Store {
    metapb::Store {
        id,
        address: format!("127.0.0.1:{}", 20160 + id),
        ..Default::default()
    }
}

/// Region `id` over `[start, end)` with a peer `id * 100 + store` on each of `stores`. The
/// range holds no keyspace boundary, so the keyspace checker leaves it alone.
fn region_on(id: u64, range: (&[u8], &[u8]), conf_ver: u64, stores: &[u64]) -> metapb::Region {
    metapb::Region {
        id,
        start_key: range.0.to_vec(),
        end_key: range.1.to_vec(),
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver,
            version: 2,
        }),
        peers: stores.iter().map(|&s| peer(id * 100 + s, s)).collect(),
        ..Default::default()
    }
}

/// Region 2 over `["", "a")`, after the split that gave it that range.
fn region_2(conf_ver: u64, stores: &[u64]) -> metapb::Region {
    region_on(2, (b"", b"a"), conf_ver, stores)
}

fn peer(id: u64, store_id: u64) -> metapb::Peer {
    metapb::Peer {
        id,
        store_id,
        ..Default::default()
    }
}

/// Returns the peer a response adds (as a learner), failing on any other step.
fn added_peer(resp: Option<pdpb::RegionHeartbeatResponse>) -> metapb::Peer {
    let change = resp
        .expect("a response")
        .change_peer
        .expect("a peer change");
    assert_eq!(
        change.change_type,
        pdpb::ConfChangeType::AddLearnerNode as i32
    );
    let peer = change.peer.expect("a peer");
    assert_eq!(peer.role, metapb::PeerRole::Learner as i32);
    peer
}

/// Returns the learner a response promotes, failing on any other step.
fn promoted_peer(resp: Option<pdpb::RegionHeartbeatResponse>) -> metapb::Peer {
    let change = resp
        .expect("a response")
        .change_peer
        .expect("a peer change");
    assert_eq!(change.change_type, pdpb::ConfChangeType::AddNode as i32);
    let peer = change.peer.expect("a peer");
    assert_eq!(peer.role, metapb::PeerRole::Voter as i32);
    peer
}

/// Adds `learner` (from [`added_peer`]) to `region`, has the checker promote it once caught
/// up, and returns the region after the promotion.
fn with_promoted(
    test: &TestCluster,
    region: &metapb::Region,
    learner: metapb::Peer,
) -> metapb::Region {
    let mut region = with_peer(region, learner);
    let promoted = promoted_peer(test.heartbeat(&region, region.peers[0].store_id));
    assert_eq!(promoted.id, learner.id);
    for p in &mut region.peers {
        if p.id == learner.id {
            p.role = metapb::PeerRole::Voter as i32;
        }
    }
    region.region_epoch.as_mut().unwrap().conf_ver += 1;
    region
}

/// Returns the peer a response removes, failing on any other step.
fn removed_peer(resp: Option<pdpb::RegionHeartbeatResponse>) -> metapb::Peer {
    let change = resp
        .expect("a response")
        .change_peer
        .expect("a peer change");
    assert_eq!(change.change_type, pdpb::ConfChangeType::RemoveNode as i32);
    change.peer.expect("a peer")
}

/// `region` with `peer` added and its conf_ver raised, as after the step ran.
fn with_peer(region: &metapb::Region, peer: metapb::Peer) -> metapb::Region {
    let mut region = region.clone();
    region.peers.push(peer);
    region.region_epoch.as_mut().unwrap().conf_ver += 1;
    region
}

/// `region` without the peer on `store_id`, as after the step ran.
fn without_store(region: &metapb::Region, store_id: u64) -> metapb::Region {
    let mut region = region.clone();
    region.peers.retain(|p| p.store_id != store_id);
    region.region_epoch.as_mut().unwrap().conf_ver += 1;
    region
}

#[test]
fn missing_replicas_go_to_the_emptiest_stores() {
    let test = TestCluster::new(3);
    // Store 2 already holds a replica of another region; store 3 holds none.
    test.cluster
        .region_heartbeat(RegionInfo {
            region: region_on(10, (b"a", b"b"), 1, &[2]),
            leader: Some(peer(1002, 2)),
            ..RegionInfo::default()
        })
        .unwrap();
    let region = region_2(1, &[1]);
    let first = added_peer(test.heartbeat(&region, 1));
    assert_eq!(first.store_id, 3);
    assert_eq!(test.reason(2), "replica checker: missing replica");
    // Re-sent until the peer shows up.
    assert_eq!(added_peer(test.heartbeat(&region, 1)), first);

    let region = with_promoted(&test, &region, first);
    let second = added_peer(test.heartbeat(&region, 1));
    assert_eq!(second.store_id, 2);
    assert_ne!(second.id, first.id, "every new peer gets a fresh id");

    let region = with_promoted(&test, &region, second);
    assert!(test.heartbeat(&region, 1).is_none());
    assert!(test.ops.list().is_empty());
}

#[test]
fn pending_additions_spread_new_replicas() {
    let test = TestCluster::new(3);
    // Two single-replica regions ask at once: the second one counts the first one's
    // running operator and picks the other empty store.
    let a = added_peer(test.heartbeat(&region_2(1, &[1]), 1));
    let b = added_peer(test.heartbeat(&region_on(10, (b"a", b"b"), 1, &[1]), 1));
    assert_eq!((a.store_id, b.store_id), (2, 3));
}

#[test]
fn extra_replica_is_removed_but_never_the_leader() {
    let test = TestCluster::new(4);
    // Stores 2 and 3 hold one more replica each; store 2 leads region 2.
    test.cluster
        .region_heartbeat(RegionInfo {
            region: region_on(10, (b"a", b"b"), 1, &[2, 3]),
            leader: Some(peer(1002, 2)),
            ..RegionInfo::default()
        })
        .unwrap();
    let region = region_2(4, &[1, 2, 3, 4]);
    let removed = removed_peer(test.heartbeat(&region, 2));
    assert_eq!(
        removed,
        peer(203, 3),
        "the busiest store that is not the leader's"
    );
    assert_eq!(test.reason(2), "replica checker: extra replica");

    let region = without_store(&region, 3);
    assert!(test.heartbeat(&region, 2).is_none());
}

#[test]
fn down_store_replica_is_replaced_then_removed() {
    let test = TestCluster::new(4);
    let region = region_2(3, &[1, 2, 3]);
    assert!(test.heartbeat(&region, 1).is_none());

    // Store 3 falls silent; within max-store-down-time nothing happens.
    test.advance(DOWN_MS);
    test.store_heartbeats(&[1, 2, 4]);
    assert!(test.heartbeat(&region, 1).is_none());
    let store_3 = test.cluster.get_store(3).unwrap();
    let max_down = test.ops.config().max_store_down_time.0;
    assert_eq!(
        test.cluster.store_health(&store_3, max_down),
        StoreHealth::Up
    );

    test.advance(1);
    assert_eq!(
        test.cluster.store_health(&store_3, max_down),
        StoreHealth::Down
    );
    let added = added_peer(test.heartbeat(&region, 1));
    assert_eq!(added.store_id, 4);
    assert_eq!(test.reason(2), "replica checker: down store 3");

    let region = with_promoted(&test, &region, added);
    assert_eq!(removed_peer(test.heartbeat(&region, 1)), peer(203, 3));
    assert_eq!(test.reason(2), "replica checker: down store 3");

    let region = without_store(&region, 3);
    assert!(test.heartbeat(&region, 1).is_none());
}

/// Issue 9, bug 10: a new replica joined as a voter, so a 3-replica region replacing a down
/// peer became a 4-voter group that needed the empty new replica for a quorum. It now joins
/// as a learner and is promoted only once the leader no longer reports it pending.
#[test]
fn a_new_replica_is_a_learner_until_it_caught_up() {
    let test = TestCluster::new(4);
    let region = region_2(3, &[1, 2, 3]);
    test.advance(DOWN_MS + 1);
    test.store_heartbeats(&[1, 2, 4]);
    let learner = added_peer(test.heartbeat(&region, 1));
    let region = with_peer(&region, learner);
    // Still catching up: no promotion, no removal.
    let info = RegionInfo {
        region: region.clone(),
        leader: Some(region.peers[0]),
        pending_peers: vec![learner],
        ..RegionInfo::default()
    };
    test.cluster.region_heartbeat(info.clone()).unwrap();
    assert!(test.ops.on_region_heartbeat(&test.cluster, &info).is_none());
    // Caught up: promoted, and only then is the down voter removed.
    let region = with_promoted(&test, &region, learner);
    assert_eq!(removed_peer(test.heartbeat(&region, 1)), peer(203, 3));
}

#[test]
fn silent_leader_store_keeps_its_replica() {
    let test = TestCluster::new(4);
    let region = region_2(3, &[1, 2, 3]);
    // Store 1 sends no store heartbeats, but its peer leads the region and reports it.
    test.advance(DOWN_MS + 1);
    test.store_heartbeats(&[2, 3, 4]);
    assert!(test.heartbeat(&region, 1).is_none());
}

#[test]
fn no_replica_is_added_without_a_suitable_store() {
    let test = TestCluster::new(3);
    // Store 3 is down: it may not receive the missing replica.
    test.advance(DOWN_MS + 1);
    test.store_heartbeats(&[1, 2]);
    assert!(test.heartbeat(&region_2(2, &[1, 2]), 1).is_none());
    // A down replica with nowhere to move stays: removing it would only lose a copy.
    assert!(test.heartbeat(&region_2(3, &[1, 2, 3]), 1).is_none());
    assert!(test.ops.list().is_empty());
}

#[test]
fn tombstone_and_unknown_store_replicas_are_replaced() {
    let test = TestCluster::new(4);
    let mut tombstone = new_store(3);
    tombstone.state = metapb::StoreState::Tombstone as i32;
    test.meta
        .put(keys::store(3), prost::Message::encode_to_vec(&tombstone))
        .unwrap();
    let test = test.restart();
    test.store_heartbeats(&[1, 2, 4]);

    // Store 9 was never registered.
    let region = region_2(4, &[1, 2, 3, 9]);
    let added = added_peer(test.heartbeat(&region, 1));
    assert_eq!(added.store_id, 4);
    assert_eq!(test.reason(2), "replica checker: tombstone store 3");
    let region = with_promoted(&test, &region, added);
    assert_eq!(removed_peer(test.heartbeat(&region, 1)).store_id, 3);
    let region = without_store(&region, 3);
    assert_eq!(removed_peer(test.heartbeat(&region, 1)).store_id, 9);
    assert_eq!(test.reason(2), "replica checker: unknown store 9");
    let region = without_store(&region, 9);
    assert!(test.heartbeat(&region, 1).is_none());
}

#[test]
fn stores_loaded_after_a_restart_are_not_down_at_once() {
    let test = TestCluster::new(4);
    let region = region_2(3, &[1, 2, 3]);
    assert!(test.heartbeat(&region, 1).is_none());

    // PD is down for an hour; the stores it loads have not reported since it started.
    test.advance(3_600_000);
    let test = test.restart();
    assert_eq!(test.cluster.get_store(3).unwrap().last_heartbeat_ms, 0);
    assert!(test.heartbeat(&region, 1).is_none());

    // Stores that report stay up; store 3 stays silent and is down max-store-down-time
    // after PD started.
    test.advance(DOWN_MS);
    test.store_heartbeats(&[1, 2, 4]);
    assert!(test.heartbeat(&region, 1).is_none());
    test.advance(1);
    let added = added_peer(test.heartbeat(&region, 1));
    assert_eq!(added.store_id, 4);
    assert_eq!(test.reason(2), "replica checker: down store 3");
}

#[test]
fn max_replicas_changes_are_followed() {
    let test = TestCluster::new(5);
    let region = region_2(3, &[1, 2, 3]);
    assert!(test.heartbeat(&region, 1).is_none());

    let mut replication = test.cluster.replication();
    replication.max_replicas = 4;
    test.cluster.set_replication(replication.clone()).unwrap();
    let added = added_peer(test.heartbeat(&region, 1));
    assert_eq!(added.store_id, 4);

    replication.max_replicas = 2;
    test.cluster.set_replication(replication).unwrap();
    let region = with_promoted(&test, &region, added);
    // The heartbeat finishes the addition and starts the first of two removals.
    let first = removed_peer(test.heartbeat(&region, 1));
    assert_ne!(first.store_id, 1);
    let region = without_store(&region, first.store_id);
    let second = removed_peer(test.heartbeat(&region, 1));
    assert_ne!(second.store_id, 1);
    let region = without_store(&region, second.store_id);
    assert_eq!(region.peers.len(), 2);
    assert!(test.heartbeat(&region, 1).is_none());
}

#[test]
fn keyspace_split_comes_before_replicas() {
    // The whole-key-space region has one replica and two empty stores to fill, but its
    // keyspace split goes first.
    let test = TestCluster::new(3);
    let resp = test.heartbeat(&whole_region(2, 1), 1).expect("an operator");
    assert!(resp.split_region.is_some());
    assert!(resp.change_peer.is_none());
}

#[test]
fn the_patrol_pushes_new_steps_to_the_leader_and_resends_only_when_due() {
    let test = TestCluster::new(3);
    test.store_heartbeats(&[1, 2, 3]);
    let region = region_2(1, &[1]);
    test.cluster
        .region_heartbeat(RegionInfo {
            region: region.clone(),
            leader: Some(region.peers[0]),
            ..RegionInfo::default()
        })
        .unwrap();
    let pushed = test.ops.patrol(&test.cluster, &[2]);
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].0, 1, "the step goes to the leader's store");
    let peer = added_peer(Some(pushed[0].1.clone()));
    assert_ne!(peer.store_id, 1);
    assert!(
        test.ops.patrol(&test.cluster, &[2]).is_empty(),
        "not pushed again before it is due"
    );
    assert!(
        test.heartbeat(&region, 1).is_some(),
        "a heartbeat gets the step every time"
    );
    test.advance(RESEND_AFTER.as_millis() as u64);
    test.store_heartbeats(&[1, 2, 3]);
    let again = test.ops.patrol(&test.cluster, &[2]);
    assert_eq!(
        added_peer(again.into_iter().next().map(|(_, resp)| resp)),
        peer,
        "the same step again once due"
    );
    assert!(
        test.ops.patrol(&test.cluster, &[99]).is_empty(),
        "a region the tree does not hold gets nothing"
    );

    // The leader's heartbeat shows the learner: the addition is finished. The patrol reads
    // the region from the tree, so it does not add a replica for the old peers again.
    let mut with_learner = region.clone();
    with_learner.region_epoch.as_mut().unwrap().conf_ver += 1;
    with_learner.peers.push(peer);
    test.heartbeat(&with_learner, 1);
    for (_, resp) in test.ops.patrol(&test.cluster, &[2]) {
        let change = resp.change_peer.expect("a conf change");
        assert_ne!(
            change.change_type,
            pdpb::ConfChangeType::AddLearnerNode as i32,
            "a second addition from a stale copy"
        );
    }
}

/// Regions `10..10 + count` over `["a0", "a1")`, `["a1", "a2")`, ..., each with a peer on
/// stores 1, 2 and 3, led from store 1 (as regions split from one region are).
fn led_from_store_1(test: &TestCluster, count: u64, pending: bool) -> Vec<metapb::Region> {
    (0..count)
        .map(|i| {
            let (start, end) = (format!("a{i:02}"), format!("a{:02}", i + 1));
            let region = region_on(10 + i, (start.as_bytes(), end.as_bytes()), 1, &[1, 2, 3]);
            test.cluster
                .region_heartbeat(RegionInfo {
                    region: region.clone(),
                    leader: Some(region.peers[0]),
                    pending_peers: if pending {
                        vec![region.peers[2]]
                    } else {
                        Vec::new()
                    },
                    ..RegionInfo::default()
                })
                .unwrap();
            region
        })
        .collect()
}

/// A cluster whose leader balancer tolerates only `tolerance` regions (twice that between two
/// stores), so that a handful of regions shows its moves.
fn with_leader_tolerance(store_count: u64, tolerance: f64) -> TestCluster {
    let mut test = TestCluster::new(store_count);
    test.ops = OperatorController::new(ScheduleConfig {
        max_store_down_time: ReadableDuration(Duration::from_millis(DOWN_MS)),
        tolerant_size_ratio: tolerance,
        ..ScheduleConfig::default()
    });
    test
}

fn transfer_target(resp: &pdpb::RegionHeartbeatResponse) -> metapb::Peer {
    resp.transfer_leader
        .as_ref()
        .and_then(|t| t.peer)
        .expect("a leader transfer")
}

#[test]
fn leaders_move_to_the_stores_leading_the_fewest_regions() {
    let test = with_leader_tolerance(3, 1.0);
    test.store_heartbeats(&[1, 2, 3]);
    let regions = led_from_store_1(&test, 9, false);
    let mut cursor = Vec::new();
    let (first, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut cursor);
    assert!(unbalanced);
    assert_eq!(first.len(), 4, "leader-schedule-limit transfers at once");
    let targets: Vec<u64> = first
        .iter()
        .map(|(store, resp)| {
            assert_eq!(*store, 1, "the step goes to the leader's store");
            transfer_target(resp).store_id
        })
        .collect();
    assert_eq!(
        targets,
        [2, 3, 2, 3],
        "each to the store leading the fewest"
    );
    assert!(
        test.ops
            .balance_leaders(&test.cluster, &mut cursor)
            .0
            .is_empty(),
        "no more while the limit's transfers run"
    );

    // Each region's new leader heartbeats; the balancer goes on until it is done.
    let mut pending = first;
    for _ in 0..10 {
        for (_, resp) in &pending {
            let region = regions.iter().find(|r| r.id == resp.region_id).unwrap();
            test.heartbeat(region, transfer_target(resp).store_id);
        }
        let (next, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut cursor);
        if !unbalanced {
            assert!(next.is_empty());
            break;
        }
        pending = next;
    }
    // Within twice the tolerance of one region: 9 = 4 + 3 + 2.
    let counts = test.cluster.leader_counts();
    assert_eq!(
        [1, 2, 3].map(|s| counts.get(&s).copied().unwrap_or(0)),
        [4, 3, 2]
    );
    assert!(test.ops.list().is_empty(), "every transfer finished");
}

/// PD's default tolerance is 5 regions: leaderships move only when one store leads more than
/// ten regions more than another, and then only until it does not.
#[test]
fn leaders_within_pds_default_tolerance_stay() {
    let test = TestCluster::new(3);
    test.store_heartbeats(&[1, 2, 3]);
    led_from_store_1(&test, 10, false);
    let (none, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut Vec::new());
    assert!(
        none.is_empty() && !unbalanced,
        "10 regions more is tolerated"
    );

    let test = TestCluster::new(3);
    test.store_heartbeats(&[1, 2, 3]);
    let regions = led_from_store_1(&test, 11, false);
    let mut cursor = Vec::new();
    let (moves, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut cursor);
    assert!(unbalanced);
    assert_eq!(moves.len(), 1, "one move leaves 10 against 1 and 0");
    assert_eq!(transfer_target(&moves[0].1).store_id, 2);
    let region = regions
        .iter()
        .find(|r| r.id == moves[0].1.region_id)
        .unwrap();
    test.heartbeat(region, 2);
    let (none, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut cursor);
    assert!(none.is_empty() && !unbalanced);
}

#[test]
fn regions_with_pending_peers_keep_their_leaders() {
    let test = with_leader_tolerance(3, 1.0);
    test.store_heartbeats(&[1, 2, 3]);
    led_from_store_1(&test, 6, true);
    let (dispatches, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut Vec::new());
    assert!(unbalanced);
    assert!(dispatches.is_empty());
}

#[test]
fn a_leader_schedule_limit_of_zero_turns_the_balancer_off() {
    let mut test = TestCluster::new(3);
    test.ops = OperatorController::new(ScheduleConfig {
        leader_schedule_limit: 0,
        ..ScheduleConfig::default()
    });
    test.store_heartbeats(&[1, 2, 3]);
    led_from_store_1(&test, 6, false);
    let (dispatches, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut Vec::new());
    assert!(!unbalanced && dispatches.is_empty());
}

#[test]
fn a_store_silent_for_20_s_gets_no_leaders() {
    let mut test = TestCluster::new(3);
    test.ops = OperatorController::new(ScheduleConfig {
        max_store_down_time: ReadableDuration::minutes(60),
        tolerant_size_ratio: 1.0,
        ..ScheduleConfig::default()
    });
    test.store_heartbeats(&[1, 2, 3]);
    led_from_store_1(&test, 6, false);
    // Store 3 died a moment ago: not down yet, but silent longer than PD's disconnect time.
    test.advance(21_000);
    test.store_heartbeats(&[1, 2]);
    let (dispatches, unbalanced) = test.ops.balance_leaders(&test.cluster, &mut Vec::new());
    assert!(unbalanced);
    assert!(!dispatches.is_empty());
    for (_, resp) in &dispatches {
        assert_eq!(
            transfer_target(resp).store_id,
            2,
            "a transfer to the silent store"
        );
    }
}
