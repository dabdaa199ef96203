//! Learners: replicas that receive the log without counting toward the quorum.

use std::time::Duration;

use kvproto::metapb::PeerRole;
use test_raftstore::{Cluster, ClusterConfig};

/// Issue 9, bug 10. A new replica joins as a learner: it gets the data, but a write still
/// needs a majority of the voters, so an empty newcomer can never be part of the quorum. Once
/// promoted, it counts.
#[test]
fn a_learner_catches_up_without_counting_toward_the_quorum() {
    let cluster = Cluster::new(ClusterConfig::with_spare_store());
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    cluster.must_transfer_leader(region_id, ids[0]);
    cluster.must_put(b"k", b"v1");
    let learner = cluster.must_add_learner(region_id, ids[3]);
    cluster.wait_until(Duration::from_secs(10), "the learner's data", || {
        cluster.stored_raw(ids[3], b"k") == Some(b"v1".to_vec())
    });

    // Two of three voters down: the leader and the learner are no majority.
    cluster.stop_store(ids[1]);
    cluster.stop_store(ids[2]);
    let storage = cluster.storage(ids[0]).unwrap();
    let region = cluster.region_on_store(ids[0], b"k").unwrap();
    let ctx = kvproto::kvrpcpb::Context {
        region_id,
        region_epoch: region.region_epoch,
        peer: cluster.leader_of(region_id),
        ..Default::default()
    };
    let write = cluster.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(2),
            storage
                .raw()
                .raw_put(&ctx, "", b"k".to_vec(), b"v2".to_vec(), 0, false),
        )
        .await
    });
    assert!(
        !matches!(write, Ok(Ok(()))),
        "committed without a majority of voters"
    );
    cluster.start_store(ids[1]);
    cluster.start_store(ids[2]);

    cluster.must_promote(region_id, learner);
    // Now three of four voters (the promoted replica among them) make a majority. The leader
    // stays up: a write proposed to a leader that is stopped, or that steps down in the
    // election after, has an undetermined outcome, which `must_put` does not retry.
    cluster.must_transfer_leader(region_id, ids[0]);
    cluster.stop_store(ids[2]);
    cluster.must_put(b"k", b"v3");
    assert_eq!(cluster.must_get(b"k"), Some(b"v3".to_vec()));
    cluster.wait_until(
        Duration::from_secs(10),
        "the promoted replica's data",
        || cluster.stored_raw(ids[3], b"k") == Some(b"v3".to_vec()),
    );
}

/// A promoted replica is a voter in what it says about itself: leading, it reports itself to PD
/// as a voter, and the peers it talks to record it as one. It used to keep the learner role it
/// was created with, so PD (and the clients PD answers) saw a learner lead the region.
#[test]
fn a_promoted_replica_leads_as_a_voter() {
    let cluster = Cluster::new(ClusterConfig::with_spare_store());
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    cluster.must_put(b"k", b"v1");
    let learner = cluster.must_add_learner(region_id, ids[3]);
    cluster.wait_until(Duration::from_secs(10), "the learner's data", || {
        cluster.stored_raw(ids[3], b"k") == Some(b"v1".to_vec())
    });
    let voter = cluster.must_promote(region_id, learner);
    cluster.must_transfer_leader(region_id, ids[3]);
    cluster.must_put(b"k", b"v2");
    let pd_leader = || cluster.pd.region_by_id(region_id).and_then(|r| r.leader);
    cluster.wait_until(
        Duration::from_secs(10),
        "PD to hear from the new leader",
        || pd_leader().is_some_and(|l| l.id == voter.id),
    );
    assert_eq!(pd_leader().map(|l| l.role), Some(PeerRole::Voter as i32));
}
