//! A write whose outcome the store cannot know must reach the client as an error it does not
//! retry, or a retried write applies twice (issue 9, bug 6).

use std::sync::Arc;
use std::time::Duration;

use raft_log_engine::RaftLogEngine;
use test_raftstore::{Cluster, ClusterConfig, Isolate, RawError, Verdict};

/// The leader takes a put, sends its entry to the followers, and then hears nothing back. The
/// followers elect a new leader, which commits the put; a compare-and-swap replaces its value.
/// The old leader steps down without learning the put's fate: it must answer "undetermined",
/// not an error that makes the client send the put again (which would undo the swap).
#[test]
fn a_write_lost_track_of_is_undetermined_and_applied_once() {
    let cluster = Arc::new(Cluster::new(ClusterConfig::default()));
    cluster.start();
    let region_id = cluster.first_region_id();
    let old_leader = cluster.store_ids()[0];
    cluster.must_transfer_leader(region_id, old_leader);
    cluster.must_put(b"k", b"v0");

    // Everything to the old leader is lost; what it sends still arrives.
    cluster.add_filter(move |_: u64, to: u64, _: &_| {
        if to == old_leader {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    let writer = {
        let cluster = cluster.clone();
        std::thread::spawn(move || cluster.raw_put(b"k", b"v1"))
    };
    cluster.wait_until(Duration::from_secs(10), "a new leader", || {
        cluster
            .leader_of(region_id)
            .is_some_and(|l| l.store_id != old_leader)
    });
    cluster.wait_until(Duration::from_secs(10), "the put committed", || {
        cluster.must_get(b"k") == Some(b"v1".to_vec())
    });
    assert_eq!(
        cluster.raw_cas(b"k", Some(b"v1"), b"v2"),
        Ok((true, Some(b"v1".to_vec())))
    );

    // The old leader stays cut off until the put is answered.
    let put = writer.join().unwrap();
    cluster.clear_filters();
    assert_eq!(
        cluster.must_get(b"k"),
        Some(b"v2".to_vec()),
        "the put applied twice"
    );
    match &put {
        Err(RawError::Failed(message)) => assert!(message.contains("undetermined"), "{message}"),
        other => panic!("the put should be undetermined, got {other:?}"),
    }
}

fn last_log_index(cluster: &Cluster, store_id: u64, region_id: u64) -> u64 {
    cluster
        .raft_log(store_id)
        .entry_span(types::RegionId(region_id))
        .unwrap()
        .map_or(0, |(_, last)| last)
}

/// Proposals a leader made before it lost leadership must not be confused with the ones it
/// makes after it regains it (issue 9, bug 5). Five compare-and-swaps stay uncommitted when
/// the leader is cut off; after it leads again, the old proposals were matched by index alone:
/// a swap retried at the new term (after its first attempt was rightly answered as stale)
/// commits, but sits in the queue behind old proposals of higher indexes and is then answered
/// StaleCommand too, so the client retries it again and is told the swap failed, finding its
/// own value. Every swap must be answered as done, or as undetermined, never as failed.
#[test]
fn proposals_of_a_lost_leadership_do_not_misanswer_later_ones() {
    let cluster = Arc::new(Cluster::new(ClusterConfig::default()));
    cluster.start();
    let region_id = cluster.first_region_id();
    let a = cluster.store_ids()[0];
    cluster.must_transfer_leader(region_id, a);
    cluster.must_put(b"k", b"v0");

    let isolate = cluster.add_filter(Isolate(a));
    let before = last_log_index(&cluster, a, region_id);
    // One at a time, so that each is its own proposal (writes that reach a leader in the same
    // round share one entry).
    let mut writers = Vec::new();
    for i in 0..5 {
        let writer = cluster.clone();
        writers.push(std::thread::spawn(move || {
            writer.raw_cas(format!("x{i}").as_bytes(), None, b"w")
        }));
        cluster.wait_until(
            Duration::from_secs(10),
            "the swap's uncommitted proposal",
            || last_log_index(&cluster, a, region_id) > before + i,
        );
    }
    cluster.wait_until(Duration::from_secs(10), "a leader elsewhere", || {
        cluster
            .leader_of(region_id)
            .is_some_and(|l| l.store_id != a)
    });
    cluster.remove_filter(isolate);
    cluster.must_transfer_leader(region_id, a);

    assert_eq!(
        cluster.raw_cas(b"k", Some(b"v0"), b"v4"),
        Ok((true, Some(b"v0".to_vec()))),
        "the swap was misanswered"
    );
    for writer in writers {
        match writer.join().unwrap() {
            Ok((true, None)) => {}
            Err(RawError::Failed(message)) => assert!(message.contains("undetermined")),
            other => panic!("a swap was misanswered: {other:?}"),
        }
    }
}
