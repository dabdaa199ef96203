//! When followers hear of a commit (issue 12): a plain write's commit rides on the leader's
//! next append or heartbeat, with no message of its own, which halves the messages of a
//! region that takes one small write at a time; what followers must apply soon (a split, a
//! membership change, a new leader's first entries) is told to them at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kvproto::raft_serverpb::RaftMessage;
use protobuf::Message as _;
use raft::eraftpb::{self, MessageType};
use test_raftstore::{Cluster, ClusterConfig, Verdict};

fn key(i: u32) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// A running cluster whose first region has applied `key(0)` on every store, so that nothing
/// of the leader's election is still in flight.
fn settled_cluster() -> Cluster {
    let cluster = Cluster::new(ClusterConfig::default());
    cluster.start();
    cluster.must_put(&key(0), b"v");
    wait_replicated(&cluster, &key(0));
    cluster
}

fn wait_replicated(cluster: &Cluster, key: &[u8]) {
    for store_id in cluster.store_ids() {
        cluster.wait_until(Duration::from_secs(10), "replication", || {
            cluster.stored_raw(store_id, key) == Some(b"v".to_vec())
        });
    }
}

/// What the leader (`store_id`) sends for `region_id` from now on: appends without entries (a
/// commit told on its own) and heartbeats.
#[derive(Default)]
struct Sent {
    commit_only: AtomicUsize,
    heartbeats: AtomicUsize,
}

fn count_commit_messages(cluster: &Cluster, region_id: u64, store_id: u64) -> Arc<Sent> {
    let sent = Arc::new(Sent::default());
    let counter = sent.clone();
    cluster.add_filter(move |from: u64, _to: u64, msg: &RaftMessage| {
        if from != store_id
            || msg.region_id != region_id
            || msg.is_tombstone
            || msg.extra_msg.is_some()
        {
            return Verdict::Deliver;
        }
        match eraftpb::Message::parse_from_bytes(&msg.message) {
            Ok(m) if m.get_msg_type() == MessageType::MsgAppend && m.entries.is_empty() => {
                counter.commit_only.fetch_add(1, Ordering::SeqCst);
            }
            Ok(m) if m.get_msg_type() == MessageType::MsgHeartbeat => {
                counter.heartbeats.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        Verdict::Deliver
    });
    sent
}

/// Writes cost the leader no commit-only messages, and the followers still apply them, having
/// learnt the commit from the next append or heartbeat.
#[test]
fn a_writes_commit_rides_on_the_next_message() {
    let cluster = settled_cluster();
    let region_id = cluster.first_region_id();
    let leader = cluster.wait_leader(region_id);
    let commit_messages = count_commit_messages(&cluster, region_id, leader.store_id);
    for i in 1..=20 {
        cluster.must_put(&key(i), b"v");
    }
    wait_replicated(&cluster, &key(20));
    assert_eq!(
        cluster.leader_of(region_id).map(|l| l.id),
        Some(leader.id),
        "the leader changed during the test"
    );
    // Broadcasting each commit sent 40 (one per write per follower). raft-rs still sends an
    // empty append when a heartbeat's answer shows a follower behind an append in flight, so
    // at most one per heartbeat remains.
    let commit_only = commit_messages.commit_only.load(Ordering::SeqCst);
    let heartbeats = commit_messages.heartbeats.load(Ordering::SeqCst);
    assert!(
        commit_only <= heartbeats && commit_only < 20,
        "{commit_only} commit-only appends for 20 writes, {heartbeats} heartbeats"
    );
}

/// A split's commit goes to every follower at once, so their stores create the new region
/// without waiting for a heartbeat.
#[test]
fn a_splits_commit_is_told_at_once() {
    let cluster = settled_cluster();
    let region_id = cluster.first_region_id();
    let leader = cluster.wait_leader(region_id);
    let commit_messages = count_commit_messages(&cluster, region_id, leader.store_id);
    let regions = cluster.must_split(region_id, &key(5));
    let followers = cluster.store_ids().len() - 1;
    cluster.wait_until(
        Duration::from_secs(10),
        "the split's commit sent to each follower",
        || commit_messages.commit_only.load(Ordering::SeqCst) >= followers,
    );
    for region in regions {
        for store_id in cluster.store_ids() {
            cluster.wait_until(Duration::from_secs(10), "the split applied", || {
                cluster
                    .region_on_store(store_id, &region.start_key)
                    .is_some_and(|r| r.id == region.id)
            });
        }
    }
}
