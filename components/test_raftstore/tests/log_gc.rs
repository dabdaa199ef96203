//! Raft log compaction and followers that fall behind.

use std::time::Duration;

use config_types::{ReadableDuration, ReadableSize};
use test_raftstore::{Cluster, ClusterConfig};

const WAIT: Duration = Duration::from_secs(20);

/// A leader keeps what a stopped follower still needs only while its log is small: once the
/// entries written since hold more than `raft-log-gc-size-limit` bytes (here 64 KiB, fewer than
/// `raft-log-gc-count-limit` entries), it compacts past the follower, which catches up from a
/// snapshot when it comes back. Before, only the entry count bounded the log, so a follower
/// that was down under large writes made the leader keep up to 10,000 entries of them.
#[test]
fn a_leader_compacts_past_a_stopped_follower_once_its_log_outgrows_the_size_limit() {
    let mut cfg = ClusterConfig::default();
    cfg.raftstore.raft_log_gc_size_limit = Some(ReadableSize::kib(64));
    cfg.raftstore.raft_log_gc_tick_interval = ReadableDuration::millis(50);
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    let (leader, stopped) = (ids[0], ids[2]);
    cluster.must_transfer_leader(region_id, leader);
    cluster.must_put(b"before", b"v");
    cluster.wait_until(WAIT, "the follower's copy", || {
        cluster.stored_raw(stopped, b"before") == Some(b"v".to_vec())
    });
    cluster.stop_store(stopped);
    let span = |store_id| {
        cluster
            .log_span(store_id, region_id)
            .expect("the region's log")
    };
    let (_, follower_last) = span(stopped);

    // 40 entries of about 4 KiB: 160 KiB, far below the count limit.
    let value = vec![b'x'; 4096];
    for i in 0..40 {
        cluster.must_put(format!("k{i:02}").as_bytes(), &value);
    }
    cluster.wait_until(WAIT, "the leader to compact past the follower", || {
        span(leader).0 > follower_last + 1
    });

    cluster.start_store(stopped);
    cluster.wait_until(WAIT, "the follower to catch up from a snapshot", || {
        cluster.stored_raw(stopped, b"k39") == Some(value.clone())
    });
}
