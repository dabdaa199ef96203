//! Hibernate regions (issue 12): an idle region's replicas stop ticking, wake for requests, and
//! elect a new leader when the leader's store goes silent while they sleep.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use config_types::ReadableDuration;
use kvproto::raft_serverpb::RaftMessage;
use raft::eraftpb::MessageType;
use test_raftstore::filter::message_type;
use test_raftstore::{Cluster, ClusterConfig, Isolate, Verdict};

fn all_asleep(cluster: &Cluster, region_id: u64) -> bool {
    cluster
        .store_ids()
        .iter()
        .all(|store| cluster.is_asleep(*store, region_id))
}

/// A cluster whose first region took a write (`k` = `v1`) and then fell asleep everywhere.
fn written_and_asleep() -> (Cluster, u64) {
    let cluster = Cluster::new(ClusterConfig::default());
    cluster.start();
    let region_id = cluster.first_region_id();
    cluster.must_put(b"k", b"v1");
    cluster.wait_until(
        Duration::from_secs(10),
        "the region asleep everywhere",
        || all_asleep(&cluster, region_id),
    );
    (cluster, region_id)
}

/// An idle region falls asleep on every store, a write wakes it and is served, a read too,
/// and then it falls asleep again.
#[test]
fn an_idle_region_sleeps_and_wakes_for_requests() {
    let (cluster, region_id) = written_and_asleep();
    let leader = cluster.leader_of(region_id).expect("a leader while asleep");

    cluster.must_put(b"k", b"v2");
    assert!(
        !cluster.is_asleep(leader.store_id, region_id),
        "a write wakes the leader"
    );
    assert_eq!(cluster.must_get(b"k"), Some(b"v2".to_vec()));
    assert_eq!(
        cluster.leader_of(region_id).map(|p| p.id),
        Some(leader.id),
        "waking is no election"
    );
    cluster.wait_until(Duration::from_secs(10), "the region asleep again", || {
        all_asleep(&cluster, region_id)
    });
    assert_eq!(cluster.must_get(b"k"), Some(b"v2".to_vec()));
}

/// The leader's store is cut off while the region sleeps: the followers hear nothing from the
/// region, but their stores notice the silent store, wake them, and they elect a leader that
/// takes writes.
#[test]
fn sleeping_followers_elect_when_the_leader_store_goes_silent() {
    let (cluster, region_id) = written_and_asleep();
    let old = cluster.leader_of(region_id).expect("a leader").store_id;

    cluster.add_filter(Isolate(old));
    cluster.wait_until(Duration::from_secs(20), "a leader on another store", || {
        cluster
            .leader_of(region_id)
            .is_some_and(|leader| leader.store_id != old)
    });
    cluster.must_put(b"k", b"v2");
    cluster.clear_filters();
    assert_eq!(cluster.must_get(b"k"), Some(b"v2".to_vec()));
}

/// With `hibernate-regions = false` an idle leader goes on heartbeating: far more heartbeats
/// than the election timeout that hibernation waits for would allow.
#[test]
fn hibernation_can_be_turned_off() {
    let mut cfg = ClusterConfig::default();
    cfg.raftstore.hibernate_regions = false;
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    cluster.must_put(b"k", b"v1");
    let heartbeats = Arc::new(AtomicUsize::new(0));
    let counted = heartbeats.clone();
    cluster.add_filter(move |_: u64, _: u64, msg: &RaftMessage| {
        if message_type(msg) == Some(MessageType::MsgHeartbeat) {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Deliver
    });
    // A heartbeat every 2 ticks of 20 ms to each of 2 followers: 100 take a second, five
    // election timeouts.
    cluster.wait_until(Duration::from_secs(10), "100 heartbeats", || {
        heartbeats.load(Ordering::Relaxed) >= 100
    });
    assert!(cluster
        .store_ids()
        .iter()
        .all(|store| !cluster.is_asleep(*store, region_id)));
}

/// A leader's PD heartbeat tick while it sleeps asks for a size estimate of what was written
/// before it fell asleep; the estimate does not wake the region.
#[test]
fn a_size_estimate_does_not_wake_a_sleeping_region() {
    let mut cfg = ClusterConfig::default();
    // Far longer than the region takes to fall asleep after a write.
    cfg.raftstore.pd_heartbeat_tick_interval = ReadableDuration::secs(3);
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    cluster.wait_leader(region_id);
    // A write the region falls asleep after with no heartbeat in between: the next heartbeat
    // (a tick, as the region sleeps) has it to report.
    let unreported_write_then_asleep = || {
        let before = cluster.pd.heartbeats_of(region_id);
        cluster.must_put(b"k", b"v1");
        cluster.wait_until(Duration::from_secs(10), "the region asleep", || {
            all_asleep(&cluster, region_id)
        });
        cluster.pd.heartbeats_of(region_id) == before
    };
    assert!(
        (0..10).any(|_| unreported_write_then_asleep()),
        "a heartbeat came between each write and the region's sleep"
    );
    let heartbeat = |after: u64| {
        cluster.wait_until(Duration::from_secs(10), "a PD heartbeat tick", || {
            cluster.pd.heartbeats_of(region_id) > after
        });
        cluster.pd.heartbeats_of(region_id)
    };
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    cluster.add_filter(move |_: u64, _: u64, msg: &RaftMessage| {
        if msg.region_id == region_id {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Deliver
    });
    // The tick that asks for the estimate, then the next one, by which it was long answered.
    let asked = heartbeat(cluster.pd.heartbeats_of(region_id));
    heartbeat(asked);
    assert!(all_asleep(&cluster, region_id));
    assert_eq!(sent.load(Ordering::Relaxed), 0, "the region woke");
}
