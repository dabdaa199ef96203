//! The in-process cluster itself: replication, failover, restart on the same data, partitions.

use std::time::Duration;

use config_types::ReadableDuration;
use engine_traits::KvEngine;
use raft::eraftpb::MessageType;
use raftstore::RouterHandle;
use test_raftstore::{Cluster, ClusterConfig, DropType, Isolate, Partition};

fn three_stores() -> Cluster {
    let cluster = Cluster::new(ClusterConfig::default());
    cluster.start();
    cluster
}

fn stored(cluster: &Cluster, store_id: u64, key: &[u8]) -> Option<Vec<u8>> {
    cluster.stored_raw(store_id, key)
}

#[test]
fn writes_reach_every_store_and_survive_a_leader_crash() {
    let cluster = three_stores();
    let region_id = cluster.first_region_id();
    cluster.wait_leader(region_id);
    cluster.must_put(b"k1", b"v1");
    assert_eq!(cluster.must_get(b"k1"), Some(b"v1".to_vec()));
    for store_id in cluster.store_ids() {
        cluster.wait_until(Duration::from_secs(10), "replication", || {
            stored(&cluster, store_id, b"k1") == Some(b"v1".to_vec())
        });
    }

    let old_leader = cluster.wait_leader(region_id);
    cluster.stop_store(old_leader.store_id);
    cluster.must_put(b"k2", b"v2");
    let new_leader = cluster.wait_leader(region_id);
    assert_ne!(new_leader.store_id, old_leader.store_id);
    assert_eq!(cluster.must_get(b"k1"), Some(b"v1".to_vec()));

    cluster.start_store(old_leader.store_id);
    cluster.wait_until(Duration::from_secs(10), "catch-up after restart", || {
        stored(&cluster, old_leader.store_id, b"k2") == Some(b"v2".to_vec())
    });
}

#[test]
fn an_isolated_leader_is_replaced_and_catches_up_after_healing() {
    let cluster = three_stores();
    let region_id = cluster.first_region_id();
    let leader = cluster.wait_leader(region_id);
    cluster.must_put(b"a", b"1");
    let filter = cluster.add_filter(Isolate(leader.store_id));
    cluster.wait_until(
        Duration::from_secs(10),
        "a leader on the majority side",
        || {
            cluster
                .leader_of(region_id)
                .is_some_and(|l| l.store_id != leader.store_id)
        },
    );
    cluster.must_put(b"a", b"2");
    assert_eq!(cluster.must_get(b"a"), Some(b"2".to_vec()));
    cluster.remove_filter(filter);
    cluster.wait_until(
        Duration::from_secs(10),
        "the old leader catching up",
        || stored(&cluster, leader.store_id, b"a") == Some(b"2".to_vec()),
    );
}

#[test]
fn a_minority_partition_cannot_elect() {
    let cluster = three_stores();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    cluster.must_transfer_leader(region_id, ids[0]);
    cluster.must_put(b"p", b"1");
    // The leader with one follower keeps the majority; the third store alone cannot elect.
    cluster.add_filter(Partition::new(&[&[ids[0], ids[1]], &[ids[2]]]));
    cluster.must_put(b"p", b"2");
    assert_eq!(cluster.leader_of(region_id).unwrap().store_id, ids[0]);
    cluster.clear_filters();
    cluster.wait_until(Duration::from_secs(10), "the minority catching up", || {
        stored(&cluster, ids[2], b"p") == Some(b"2".to_vec())
    });
}

#[test]
fn dropped_appends_are_resent() {
    let cluster = three_stores();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    cluster.must_transfer_leader(region_id, ids[0]);
    let filter = cluster.add_filter(DropType {
        msg_type: MessageType::MsgAppend,
        region_id: Some(region_id),
        to_store: Some(ids[2]),
    });
    cluster.must_put(b"d", b"1");
    assert_eq!(stored(&cluster, ids[2], b"d"), None);
    cluster.remove_filter(filter);
    cluster.wait_until(Duration::from_secs(10), "the append resent", || {
        stored(&cluster, ids[2], b"d") == Some(b"1".to_vec())
    });
}

/// A read that needs a read index (a fresh leader holds no lease) is answered as soon as the
/// index is confirmed, not on the next raft tick. With a one-minute tick, a read that waited
/// for a tick would time out here.
#[test]
fn a_read_index_read_does_not_wait_for_a_tick() {
    let mut cfg = ClusterConfig::default();
    cfg.raftstore.raft_base_tick_interval = ReadableDuration::secs(60);
    cfg.raftstore.pd_heartbeat_tick_interval = ReadableDuration::secs(60);
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    let store_id = cluster.store_ids()[0];
    cluster
        .router(store_id)
        .unwrap()
        .send_peer(types::RegionId(region_id), raftstore::PeerMsg::Campaign);
    let leader = cluster.wait_leader(region_id);
    assert_eq!(leader.store_id, store_id);
    let storage = cluster.storage(store_id).unwrap();
    let region = cluster.region_on_store(store_id, b"").unwrap();
    let ctx = kvproto::kvrpcpb::Context {
        region_id,
        region_epoch: region.region_epoch,
        peer: Some(leader),
        ..Default::default()
    };
    let read = cluster.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            storage.raw().raw_get(&ctx, "", b"k".to_vec()),
        )
        .await
    });
    assert!(matches!(read, Ok(Ok(None))), "{read:?}");
}

/// A ready that only moves the commit index is written without a sync (raft-rs's `must_sync`,
/// as TiKV), so a power loss can take a store's commit index back below what its data engine
/// had applied and flushed. The store must restart from there: what it applied was committed.
#[test]
fn a_store_restarts_with_its_commit_index_behind_its_applied_index() {
    let cluster = three_stores();
    let region_id = cluster.first_region_id();
    let leader = cluster.wait_leader(region_id);
    for i in 0..10 {
        cluster.must_put(format!("k{i}").as_bytes(), b"v");
    }
    let follower = cluster
        .store_ids()
        .into_iter()
        .find(|&id| id != leader.store_id)
        .unwrap();
    cluster.wait_until(Duration::from_secs(10), "the follower applying", || {
        stored(&cluster, follower, b"k9").is_some()
    });
    cluster.stop_store(follower);

    let applied = raftstore::peer_storage::load_apply_state(cluster.kv(follower), region_id)
        .unwrap()
        .unwrap()
        .applied_index;
    let log = raft_log_engine::RaftLogStorage::open(
        cluster.raft_log(follower).clone(),
        types::RegionId(region_id),
    )
    .unwrap();
    let mut hard_state = log.hard_state();
    let lost_commit = (applied - 5).max(log.truncated().0);
    assert!(lost_commit < applied);
    hard_state.commit = lost_commit;
    log.set_hard_state(&hard_state).unwrap();
    drop(log);

    cluster.start_store(follower);
    cluster.must_transfer_leader(region_id, follower);
    cluster.must_put(b"after", b"v");
    for i in 0..10 {
        assert_eq!(
            cluster.must_get(format!("k{i}").as_bytes()),
            Some(b"v".to_vec())
        );
    }
    assert_eq!(cluster.must_get(b"after"), Some(b"v".to_vec()));
}

/// PD learns each region's estimated size from its leader's heartbeats, for the regions a split
/// leaves too (the split checker's thread estimates it; the raft threads never wait on it).
#[test]
fn pd_learns_the_size_of_each_region_after_a_split() {
    let mut cfg = ClusterConfig::default();
    // No heartbeat tick within the test: only the heartbeats a split and a new leader send
    // can bring PD the sizes.
    cfg.raftstore.pd_heartbeat_tick_interval = ReadableDuration::secs(600);
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    cluster.wait_leader(region_id);
    let value = vec![b'v'; 1024];
    for i in 0..200 {
        cluster.must_put(format!("k{i:03}").as_bytes(), &value);
    }
    for store_id in cluster.store_ids() {
        cluster.wait_until(Duration::from_secs(10), "replication", || {
            stored(&cluster, store_id, b"k199").is_some()
        });
        // RocksDB estimates from its files: what is in the memtables shows once flushed.
        cluster.kv(store_id).flush().unwrap();
    }
    let regions = cluster.must_split(region_id, b"k100");
    assert_eq!(regions.len(), 2);
    // About 100 values of 1 KiB on each side.
    let about_half = |size: u64| (50 << 10..200 << 10).contains(&size);
    for region in &regions {
        cluster.wait_until(Duration::from_secs(10), "PD has the region's size", || {
            cluster
                .pd
                .region_by_id(region.id)
                .is_some_and(|info| about_half(info.approximate_size))
        });
    }
}

/// `UnsafeDestroyRange` deletes each store's data directly, but a replica may apply writes
/// committed before it later (a follower learns of a commit from the leader's next message, or
/// catches up after a partition). The regions a store leads also take the delete through raft,
/// after those writes in the log, so what was destroyed does not come back on such a replica
/// when it leads.
#[test]
fn a_write_applied_late_on_a_follower_stays_destroyed() {
    let cluster = three_stores();
    let region_id = cluster.first_region_id();
    let leader = cluster.wait_leader(region_id);
    cluster.must_put(b"k0", b"v");
    let follower = cluster
        .store_ids()
        .into_iter()
        .find(|&id| id != leader.store_id)
        .expect("a follower");
    cluster.wait_until(Duration::from_secs(10), "replication", || {
        stored(&cluster, follower, b"k0").is_some()
    });

    let filter = cluster.add_filter(Isolate(follower));
    cluster.must_put(b"k1", b"v");
    for store_id in cluster.store_ids() {
        let storage = cluster.storage(store_id).unwrap();
        cluster
            .block_on(storage.txn().unsafe_destroy_range(
                &kvproto::kvrpcpb::Context::default(),
                vec![],
                vec![],
            ))
            .expect("destroy the whole key space");
        assert_eq!(stored(&cluster, store_id, b"k0"), None);
    }
    cluster.remove_filter(filter);

    cluster.must_put(b"k2", b"v");
    cluster.wait_until(Duration::from_secs(10), "the follower catching up", || {
        stored(&cluster, follower, b"k2").is_some()
    });
    assert_eq!(stored(&cluster, follower, b"k1"), None);
    cluster.must_transfer_leader(region_id, follower);
    assert_eq!(cluster.must_get(b"k1"), None);
    assert_eq!(cluster.must_get(b"k2"), Some(b"v".to_vec()));
}
