//! The raft pollers with a store writer thread (`store-io-pool-size = 1`, issue 12): raft logs
//! are written and synced off the pollers, and everything the in-poller writes guarantee holds.

use std::time::Duration;

use test_raftstore::{Cluster, ClusterConfig, Isolate};

fn with_store_writer() -> Cluster {
    let mut cfg = ClusterConfig::default();
    cfg.raftstore.store_io_pool_size = 1;
    let cluster = Cluster::new(cfg);
    cluster.start();
    cluster
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// Writes replicate to every store, survive the leader's crash and restart, and keep going
/// across a split and a partition healed later.
#[test]
fn writes_replicate_and_survive_crashes_splits_and_partitions() {
    let cluster = with_store_writer();
    let region_id = cluster.first_region_id();
    for i in 0..100 {
        cluster.must_put(&key(i), b"v1");
    }
    for store_id in cluster.store_ids() {
        cluster.wait_until(Duration::from_secs(10), "replication", || {
            cluster.stored_raw(store_id, &key(99)) == Some(b"v1".to_vec())
        });
    }

    let old_leader = cluster.wait_leader(region_id);
    cluster.stop_store(old_leader.store_id);
    cluster.must_put(&key(100), b"v2");
    cluster.start_store(old_leader.store_id);
    cluster.wait_until(Duration::from_secs(10), "catch-up after restart", || {
        cluster.stored_raw(old_leader.store_id, &key(100)) == Some(b"v2".to_vec())
    });

    let regions = cluster.must_split(region_id, &key(50));
    assert_eq!(regions.len(), 2);
    let leader = cluster.wait_leader(regions[1].id);
    cluster.add_filter(Isolate(leader.store_id));
    cluster.wait_until(
        Duration::from_secs(10),
        "a leader on the majority side",
        || {
            cluster
                .leader_of(regions[1].id)
                .is_some_and(|l| l.store_id != leader.store_id)
        },
    );
    cluster.must_put(&key(60), b"v3");
    cluster.clear_filters();
    cluster.wait_until(
        Duration::from_secs(10),
        "the isolated store catches up",
        || cluster.stored_raw(leader.store_id, &key(60)) == Some(b"v3".to_vec()),
    );
    for i in [0, 49, 50, 99] {
        assert_eq!(cluster.must_get(&key(i)), Some(b"v1".to_vec()));
    }
    assert_eq!(cluster.must_get(&key(100)), Some(b"v2".to_vec()));
}

/// The writer's answers are not activity: an idle region still falls asleep everywhere (they
/// used to wake it again each time), and wakes for a write.
#[test]
fn an_idle_region_sleeps_with_a_store_writer() {
    let cluster = with_store_writer();
    let region_id = cluster.first_region_id();
    cluster.must_put(b"k", b"v1");
    let all_asleep = || {
        cluster
            .store_ids()
            .iter()
            .all(|store| cluster.is_asleep(*store, region_id))
    };
    cluster.wait_until(
        Duration::from_secs(10),
        "the region asleep everywhere",
        all_asleep,
    );
    cluster.must_put(b"k", b"v2");
    assert_eq!(cluster.must_get(b"k"), Some(b"v2".to_vec()));
    cluster.wait_until(
        Duration::from_secs(10),
        "the region asleep again",
        all_asleep,
    );
}
