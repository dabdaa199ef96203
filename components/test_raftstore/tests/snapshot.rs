//! Snapshots replace a region's data on a store; they must never touch another region's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kvproto::raft_serverpb::RaftMessage;
use raft::eraftpb::MessageType;
use test_raftstore::filter::message_type;
use test_raftstore::{Cluster, ClusterConfig, Verdict};

/// Issue 9, bug 7. A store joins a region and its snapshot, cut before the region split, is
/// held up in the network. Meanwhile the split-off region's own snapshot reaches the store.
/// When the stale snapshot finally arrives, its range covers the split-off region: applying it
/// would delete that region's data there. It must be dropped (the leader then sends a fresh
/// one), and the store must end with both halves' data.
#[test]
fn a_stale_snapshot_does_not_overwrite_a_split_off_region() {
    let cluster = Cluster::new(ClusterConfig::with_spare_store());
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    let (leader, joiner) = (ids[0], ids[3]);
    cluster.must_transfer_leader(region_id, leader);
    cluster.must_put(b"a", b"left");
    cluster.must_put(b"z", b"right");

    let held_up = Arc::new(AtomicBool::new(false));
    let seen = held_up.clone();
    cluster.add_filter(move |_: u64, to: u64, msg: &RaftMessage| {
        if msg.region_id == region_id
            && to == joiner
            && message_type(msg) == Some(MessageType::MsgSnapshot)
        {
            seen.store(true, Ordering::SeqCst);
            Verdict::Delay(Duration::from_secs(3))
        } else {
            Verdict::Deliver
        }
    });
    cluster.must_add_peer(region_id, joiner);
    // The snapshot is cut (before the split) and on its way.
    cluster.wait_until(Duration::from_secs(10), "the snapshot sent", || {
        held_up.load(Ordering::SeqCst)
    });
    let regions = cluster.must_split(region_id, b"m");
    let right = regions.iter().find(|r| r.id != region_id).unwrap().id;
    cluster.wait_until(
        Duration::from_secs(10),
        "the split-off region's snapshot",
        || cluster.stored_raw(joiner, b"z") == Some(b"right".to_vec()),
    );
    // A write the stale snapshot does not have.
    cluster.must_put(b"z", b"newer");
    cluster.wait_until(
        Duration::from_secs(10),
        "the write on the new store",
        || cluster.stored_raw(joiner, b"z") == Some(b"newer".to_vec()),
    );
    assert!(
        cluster.stored_raw(joiner, b"a").is_none(),
        "the stale snapshot came too early for this test"
    );
    cluster.wait_until(
        Duration::from_secs(20),
        "the left half on the new store",
        || cluster.stored_raw(joiner, b"a") == Some(b"left".to_vec()),
    );
    assert_eq!(
        cluster.stored_raw(joiner, b"z"),
        Some(b"newer".to_vec()),
        "a stale snapshot overwrote region {right}'s data"
    );
}
