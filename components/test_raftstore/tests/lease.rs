//! Reads served from a leader's lease must never miss a write a newer leader acknowledged.

use std::time::{Duration, Instant};

use kvproto::kvrpcpb;
use test_raftstore::{Cluster, ClusterConfig, Verdict};

/// Reads `key` at `store_id` as if that store led `region_id`, waiting at most five seconds.
fn read_at(cluster: &Cluster, store_id: u64, region_id: u64, key: &[u8]) -> Option<Vec<u8>> {
    let storage = cluster.storage(store_id).unwrap();
    let region = cluster.region_on_store(store_id, key).unwrap();
    let peer = region
        .peers
        .iter()
        .find(|p| p.store_id == store_id)
        .copied();
    let ctx = kvrpcpb::Context {
        region_id,
        region_epoch: region.region_epoch,
        peer,
        ..Default::default()
    };
    let read = cluster.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(5),
            storage.raw().raw_get(&ctx, "", key.to_vec()),
        )
        .await
    });
    match read {
        Ok(Ok(value)) => value,
        _ => None,
    }
}

/// Issue 9, bug 3. A leader that hands leadership over must stop serving reads from its lease
/// at once: the target campaigns without waiting for the lease to run out, and takes writes
/// the old leader would not see. Here the old leader hears nothing after the transfer starts,
/// and its lease (0.9 s) outlasts the transfer and the next write.
#[test]
fn a_leader_handing_over_stops_serving_lease_reads() {
    let mut cfg = ClusterConfig::default();
    cfg.raftstore.raft_election_timeout_ticks = 50;
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    let (a, b) = (cluster.store_ids()[0], cluster.store_ids()[1]);
    cluster.must_transfer_leader(region_id, a);
    cluster.must_put(b"k", b"v1");

    cluster.add_filter(move |_: u64, to: u64, _: &_| {
        if to == a {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    cluster.must_transfer_leader(region_id, b);
    cluster.must_put(b"k", b"v2");
    let read = read_at(&cluster, a, region_id, b"k");
    assert_ne!(
        read,
        Some(b"v1".to_vec()),
        "the old leader served a stale read"
    );
}

/// A leader whose lease ran out renews it with the read index of its next read; the renewal
/// must reach the store's local readers too. It did not: only an applied write republished the
/// lease, so on a region that was only read every later read went through the raft thread.
#[test]
fn a_read_index_renews_the_lease_of_local_reads() {
    let mut cfg = ClusterConfig::default();
    cfg.raftstore.raft_election_timeout_ticks = 50;
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    let leader = cluster.wait_leader(region_id);
    cluster.must_put(b"k", b"v");
    // The put's commit gave the leader a lease; once it is published, let it run out.
    cluster.wait_until(Duration::from_secs(5), "the put's lease published", || {
        cluster.published_lease(region_id).is_some()
    });
    cluster.wait_lease_expired(region_id);

    let asked = Instant::now();
    assert_eq!(
        read_at(&cluster, leader.store_id, region_id, b"k"),
        Some(b"v".to_vec())
    );
    let lease = cluster.published_lease(region_id);
    assert!(
        lease.is_some_and(|expire| expire > asked),
        "the lease renewed by the read index was not published to local readers: {lease:?}"
    );
}
