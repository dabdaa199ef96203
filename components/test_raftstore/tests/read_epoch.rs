//! A read is answered for the region it was checked against, or not at all.

use std::time::Duration;

use kvproto::kvrpcpb;
use raft::eraftpb::MessageType;
use raftstore::{PeerMsg, RouterHandle};
use storage::raw::ScanOptions;
use test_raftstore::{Cluster, ClusterConfig, DropType};

/// Issue 9, bug 8. A scan waits for its read index while the region splits; when the index is
/// confirmed, the region is only the left part. Answering with a snapshot of that part would
/// silently drop the right half of the scan; the read must fail with EpochNotMatch instead (the
/// client then reloads the regions and scans both).
#[test]
fn a_read_index_read_fails_if_the_region_split_meanwhile() {
    let mut cfg = ClusterConfig::default();
    // A 1 s election timeout: the read waits up to 2 s for its index, the lease is 0.9 s.
    cfg.raftstore.raft_election_timeout_ticks = 50;
    let cluster = Cluster::new(cfg);
    cluster.start();
    let region_id = cluster.first_region_id();
    let a = cluster.store_ids()[0];
    cluster.must_transfer_leader(region_id, a);
    for key in [b"a", b"z"] {
        cluster.must_put(key, b"v");
    }
    let region = cluster.region_on_store(a, b"a").unwrap();
    let leader = cluster.leader_of(region_id).unwrap();

    // Heartbeat answers (which confirm read indexes) are lost; appends still commit.
    let filter = cluster.add_filter(DropType {
        msg_type: MessageType::MsgHeartbeatResponse,
        region_id: Some(region_id),
        to_store: Some(a),
    });
    // The scan must need a read index.
    cluster.wait_lease_expired(region_id);
    let storage = cluster.storage(a).unwrap();
    let ctx = kvrpcpb::Context {
        region_id,
        region_epoch: region.region_epoch,
        peer: Some(leader),
        ..Default::default()
    };
    let opts = ScanOptions {
        limit: 100,
        key_only: false,
        reverse: false,
    };
    let scan =
        cluster.spawn(async move { storage.raw().raw_scan(&ctx, "", vec![], vec![], opts).await });

    let (sender, split_done) = crossbeam::channel::bounded(1);
    cluster.router(a).unwrap().send_peer(
        types::RegionId(region_id),
        PeerMsg::SplitRegion {
            region_epoch: region.region_epoch.unwrap(),
            split_keys: vec![b"m".to_vec()],
            callback: Box::new(move |result| {
                let _ = sender.send(result);
            }),
        },
    );
    let split = split_done
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert!(split.header.unwrap().error.is_none());
    cluster.remove_filter(filter);

    let result = cluster.block_on(scan).unwrap();
    match result {
        Err(storage::Error::Region(e)) => assert!(e.epoch_not_match.is_some(), "{e:?}"),
        Ok(pairs) => assert_eq!(pairs.len(), 2, "a scan across a split lost keys: {pairs:?}"),
        Err(other) => panic!("{other:?}"),
    }
}
