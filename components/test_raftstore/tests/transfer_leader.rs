//! Leadership transfers a leader refuses: while a transfer runs, raft drops every proposal until
//! the target takes over or an election timeout passes, so a transfer to a replica that cannot
//! take over would stop the region's writes for that long (TiKV's `ready_to_transfer_leader`).

use std::time::{Duration, Instant};

use config_types::ReadableDuration;
use test_raftstore::{Cluster, ClusterConfig};

/// A transfer to a follower whose store died is refused: writes go on at once, instead of
/// waiting out a 5 s election timeout. PD's leader balancer asked just that of a store killed
/// moments before.
#[test]
fn a_transfer_to_a_dead_follower_is_refused() {
    let mut cfg = ClusterConfig::default();
    // 20 ms ticks: heartbeats every 40 ms, elections after 5 s; down after 100 ms of silence.
    cfg.raftstore.raft_election_timeout_ticks = 250;
    cfg.raftstore.max_peer_down_duration = ReadableDuration::millis(100);
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    cluster.must_put(b"k", b"v1");
    let leader = cluster.wait_leader(region_id);
    let dead = *cluster
        .store_ids()
        .iter()
        .find(|&&s| s != leader.store_id)
        .expect("a follower's store");
    cluster.stop_store(dead);
    cluster.wait_until(
        Duration::from_secs(10),
        "the leader to report the dead follower down",
        || {
            cluster.pd.region_by_id(region_id).is_some_and(|r| {
                r.down_peers
                    .iter()
                    .any(|d| d.peer.is_some_and(|p| p.store_id == dead))
            })
        },
    );

    assert!(cluster.ask_transfer_leader(region_id, dead));
    let start = Instant::now();
    cluster.must_put(b"k", b"v2");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the write waited {:?} for a transfer to a dead store",
        start.elapsed()
    );
    assert_eq!(cluster.leader_of(region_id).map(|l| l.id), Some(leader.id));
    assert_eq!(cluster.must_get(b"k"), Some(b"v2".to_vec()));
}
