//! Replicas removed from their region while they could not hear of it (TiKV's stale peers):
//! they learn it from a store that destroyed its own replica of the region, or from PD, and
//! destroy themselves; a replica that is merely cut off is kept.

use std::time::Duration;

use config_types::ReadableDuration;
use kvproto::metapb;
use kvproto::raft_cmdpb::ChangePeerType;
use kvproto::raft_serverpb::{PeerState, RaftMessage};
use raftstore::peer_storage::load_region_state;
use test_raftstore::{Cluster, ClusterConfig, Isolate, Verdict};

const WAIT: Duration = Duration::from_secs(20);

/// Whether `store_id` keeps a tombstone for `region_id` (its replica was destroyed).
fn is_tombstone(cluster: &Cluster, store_id: u64, region_id: u64) -> bool {
    load_region_state(cluster.kv(store_id), region_id)
        .expect("read the region state")
        .is_some_and(|s| s.state == PeerState::Tombstone as i32)
}

fn peer_on(region: &metapb::Region, store_id: u64) -> metapb::Peer {
    *region
        .peers
        .iter()
        .find(|p| p.store_id == store_id)
        .expect("a replica on the store")
}

/// Checks with PD after half a second without a leader, every 100 ms.
fn fast_stale_checks(mut cfg: ClusterConfig) -> ClusterConfig {
    cfg.raftstore.peer_stale_state_check_interval = ReadableDuration::millis(100);
    cfg.raftstore.abnormal_leader_missing_duration = ReadableDuration::millis(200);
    cfg.raftstore.max_leader_missing_duration = ReadableDuration::millis(500);
    cfg
}

/// Starts the cluster and writes `k`, waiting for store 3's copy; returns the region's id.
fn start_with_k_on_store_3(cfg: ClusterConfig) -> (Cluster, u64) {
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    cluster.must_put(b"k", b"v");
    cluster.wait_until(WAIT, "store 3's copy", || {
        cluster.stored_raw(3, b"k") == Some(b"v".to_vec())
    });
    (cluster, region_id)
}

/// Splits `region_id` at `m` and waits until store 1 has applied the split; returns the ids of
/// `k`'s and `m`'s regions.
fn split_at_m(cluster: &Cluster, region_id: u64) -> (u64, u64) {
    cluster.must_split(region_id, b"m");
    let mut ids = None;
    cluster.wait_until(WAIT, "store 1 to apply the split", || {
        let k = cluster.region_on_store(1, b"k");
        let m = cluster.region_on_store(1, b"m");
        ids = k.zip(m).map(|(k, m)| (k.id, m.id)).filter(|(k, m)| k != m);
        ids.is_some()
    });
    ids.expect("the split regions")
}

/// Splits `first` at `m`, moves the leadership of `k`'s region to `leader_store`, waits until
/// both regions sleep on every store, and then drops every message of `k`'s region to or from
/// store 3; the other region's sleep keeps the stores' heartbeats going, so no store wakes
/// its replicas. Returns `k`'s region.
fn sleep_then_cut_k_from_store_3(cluster: &Cluster, first: u64, leader_store: u64) -> u64 {
    let (region_id, other) = split_at_m(cluster, first);
    cluster.must_transfer_leader(region_id, leader_store);
    cluster.wait_until(WAIT, "both regions to sleep on every store", || {
        (1..=3).all(|s| cluster.is_asleep(s, region_id) && cluster.is_asleep(s, other))
    });
    cluster.add_filter(move |from: u64, to: u64, msg: &RaftMessage| {
        if msg.region_id == region_id && (from == 3 || to == 3) {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    region_id
}

/// Removes `store_id`'s replica of `k`'s region through its leader.
fn remove_replica(cluster: &Cluster, region_id: u64, store_id: u64) {
    let region = cluster
        .region_on_store(cluster.wait_leader(region_id).store_id, b"k")
        .expect("the leader's region");
    cluster.must_change_peer(
        region_id,
        ChangePeerType::RemoveNode,
        peer_on(&region, store_id),
    );
}

/// Replaces store 3's replica of `k`'s region by one on store 4, and waits until store 3 has
/// destroyed its replica and deleted its data.
fn replace_store_3_and_wait_for_its_destroy(cluster: &Cluster, region_id: u64) {
    cluster.must_add_peer(region_id, 4);
    remove_replica(cluster, region_id, 3);
    cluster.wait_until(WAIT, "store 3's destroy of its removed replica", || {
        is_tombstone(cluster, 3, region_id)
    });
    assert_eq!(
        cluster.stored_raw(3, b"k"),
        None,
        "the replica's data is deleted"
    );
}

/// The region moves from stores 1-3 to stores 4-5 while store 3 is cut off: nothing tells store
/// 3's replica, whose configuration names only stores 1-3. Once the network heals, its
/// elections reach stores 1 and 2, which destroyed their replicas under a newer configuration
/// without one on store 3, and answer it with a tombstone message. Before, they dropped its
/// messages, and the replica campaigned forever, holding its range on store 3.
#[test]
fn a_replica_removed_while_cut_off_learns_it_from_a_store_that_destroyed_the_region() {
    let (cluster, region_id) = start_with_k_on_store_3(ClusterConfig {
        stores: 5,
        region_stores: Some(3),
        ..ClusterConfig::default()
    });

    let cut = cluster.add_filter(Isolate(3));
    cluster.must_add_peer(region_id, 4);
    cluster.must_add_peer(region_id, 5);
    remove_replica(&cluster, region_id, 3);
    cluster.must_transfer_leader(region_id, 4);
    remove_replica(&cluster, region_id, 1);
    remove_replica(&cluster, region_id, 2);
    cluster.wait_until(WAIT, "stores 1 and 2 to destroy their replicas", || {
        is_tombstone(&cluster, 1, region_id) && is_tombstone(&cluster, 2, region_id)
    });
    assert!(
        cluster.region_on_store(3, b"k").is_some(),
        "store 3 cannot have heard of its removal"
    );

    cluster.remove_filter(cut);
    cluster.wait_until(WAIT, "store 3 to destroy its removed replica", || {
        is_tombstone(&cluster, 3, region_id) && cluster.region_on_store(3, b"k").is_none()
    });
    assert_eq!(
        cluster.stored_raw(3, b"k"),
        None,
        "the replica's data is deleted"
    );
    cluster.must_put(b"k", b"v2");
    assert_eq!(cluster.must_get(b"k"), Some(b"v2".to_vec()));
}

/// Store 3 stays cut off from every store while its replica is replaced by one on store 4, so
/// no store can tell it; after `max-leader-missing-duration` without a leader it asks PD,
/// whose region is newer and lacks it, and destroys itself. The others keep theirs.
#[test]
fn a_replica_removed_while_cut_off_learns_it_from_pd() {
    let (cluster, region_id) =
        start_with_k_on_store_3(fast_stale_checks(ClusterConfig::with_spare_store()));

    let _cut = cluster.add_filter(Isolate(3));
    replace_store_3_and_wait_for_its_destroy(&cluster, region_id);
    for store_id in [1, 2, 4] {
        assert!(
            cluster.region_on_store(store_id, b"k").is_some(),
            "store {store_id} keeps its replica"
        );
    }
    cluster.must_put(b"k", b"v2");
    cluster.wait_until(WAIT, "store 4's copy", || {
        cluster.stored_raw(4, b"k") == Some(b"v2".to_vec())
    });
}

/// A replica cut off from its leader but still a member asks PD, again and again, and is kept
/// every time; once the network heals it catches up.
#[test]
fn a_member_cut_off_from_its_leader_is_kept() {
    let cluster = Cluster::new(fast_stale_checks(ClusterConfig::default()));
    cluster.start();
    let region_id = cluster.first_region_id();
    cluster.must_put(b"k", b"v");

    let cut = cluster.add_filter(Isolate(3));
    cluster.wait_until(WAIT, "store 3 to ask PD twice", || {
        cluster.pd.lookups_of(region_id) >= 2
    });
    assert!(cluster.region_on_store(3, b"k").is_some());
    assert!(!is_tombstone(&cluster, 3, region_id));

    cluster.remove_filter(cut);
    cluster.must_put(b"k", b"v2");
    cluster.wait_until(WAIT, "store 3's copy", || {
        cluster.stored_raw(3, b"k") == Some(b"v2".to_vec())
    });
}

/// A sleeping follower whose region's messages are lost while its store stays in touch (the
/// other region's sleep keeps the stores' heartbeats going, so nothing wakes it) misses its
/// removal. Its leader's heartbeats at each check stop reaching it, so it counts the silence,
/// asks PD and destroys itself. Before, a sleeping replica counted as having a leader and
/// never asked.
#[test]
fn a_sleeping_replica_that_missed_its_removal_learns_it_from_pd() {
    let (cluster, first) =
        start_with_k_on_store_3(fast_stale_checks(ClusterConfig::with_spare_store()));
    // The replica that misses its removal is a follower (the leader being cut off instead is
    // `a_sleeping_region_whose_leader_is_cut_off_elects_another`).
    let region_id = sleep_then_cut_k_from_store_3(&cluster, first, 1);
    replace_store_3_and_wait_for_its_destroy(&cluster, region_id);
    assert!(
        cluster.region_on_store(3, b"m").is_some(),
        "the other region's replica stays"
    );
}

/// A sleeping region whose leader's messages are lost while every store stays in touch (so no
/// store wakes its replicas): its followers count the silence, wake at
/// `abnormal-leader-missing-duration` and elect a new leader. Before, they slept on without one.
#[test]
fn a_sleeping_region_whose_leader_is_cut_off_elects_another() {
    let (cluster, first) = start_with_k_on_store_3(fast_stale_checks(ClusterConfig::default()));
    let region_id = sleep_then_cut_k_from_store_3(&cluster, first, 3);
    cluster.wait_until(WAIT, "a leader on store 1 or 2", || {
        cluster
            .leader_of(region_id)
            .is_some_and(|leader| leader.store_id != 3)
    });
    cluster.must_put(b"k", b"v2");
    assert_eq!(cluster.must_get(b"k"), Some(b"v2".to_vec()));
}
