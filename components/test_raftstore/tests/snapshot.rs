//! Snapshots replace a region's data on a store; they must never touch another region's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kvproto::raft_cmdpb::ChangePeerType;
use kvproto::raft_serverpb::RaftMessage;
use raft::eraftpb::MessageType;
use test_raftstore::filter::message_type;
use test_raftstore::{Cluster, ClusterConfig, Verdict};

const WAIT: Duration = Duration::from_secs(20);

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

/// A replica that missed a split catches up from a snapshot of its narrowed region. What it
/// held of the split-off range belongs to no region of its store any more (its peer of the
/// split-off region was removed meanwhile), so it must go with the snapshot's write, as TiKV's
/// `clear_extra_data` deletes it; before, it stayed on the store for good.
#[test]
fn a_replica_that_missed_a_split_drops_the_split_off_range_with_its_snapshot() {
    let cluster = Cluster::new(ClusterConfig::with_short_raft_logs());
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    let (leader, behind) = (ids[0], ids[2]);
    cluster.must_transfer_leader(region_id, leader);
    cluster.must_put(b"z", b"right");
    cluster.wait_until(WAIT, "the follower's copy", || {
        cluster.stored_raw(behind, b"z") == Some(b"right".to_vec())
    });
    cluster.stop_store(behind);

    let regions = cluster.must_split(region_id, b"m");
    let right = regions.iter().find(|r| r.id != region_id).unwrap();
    let removed = *right.peers.iter().find(|p| p.store_id == behind).unwrap();
    cluster.must_change_peer(right.id, ChangePeerType::RemoveNode, removed);
    // The left region's leader compacts its log past the stopped store, which then needs a
    // snapshot.
    cluster.write_until_compacted_past(region_id, leader, behind);

    cluster.start_store(behind);
    // The data shows once written, the narrowed region once the snapshot is recorded.
    cluster.wait_until(WAIT, "the left region's snapshot on the store", || {
        cluster.stored_raw(behind, b"k29") == Some(b"v".to_vec())
            && cluster
                .region_on_store(behind, b"a")
                .is_some_and(|r| r.end_key == b"m")
    });
    assert_eq!(
        cluster.region_on_store(behind, b"m").map(|r| r.id),
        None,
        "no region of store {behind} covers the split-off range"
    );
    assert_eq!(
        cluster.stored_raw(behind, b"z"),
        None,
        "the split-off range's data stayed on store {behind}"
    );
}
