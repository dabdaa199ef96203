use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kvproto::{metapb, pdpb};

use super::*;
use crate::storage;

fn open(store: &Arc<dyn MetaStore>) -> Cluster {
    let time = Arc::new(AtomicU64::new(1_700_000_000_000));
    Cluster::open(
        store.clone(),
        42,
        ReplicationConfig::default(),
        Arc::new(move || time.load(Ordering::SeqCst)),
    )
    .unwrap()
}

fn new_store(id: u64, address: &str) -> metapb::Store {
    metapb::Store {
        id,
        address: address.into(),
        ..Default::default()
    }
}

fn first_region() -> metapb::Region {
    metapb::Region {
        id: 2,
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: 1,
        }),
        peers: vec![metapb::Peer {
            id: 3,
            store_id: 1,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn bootstrapped() -> (Arc<dyn MetaStore>, Cluster) {
    let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
    let cluster = open(&store);
    cluster
        .bootstrap(new_store(1, "127.0.0.1:20160"), first_region())
        .unwrap();
    (store, cluster)
}

#[test]
fn requests_before_bootstrap_are_refused() {
    let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
    let cluster = open(&store);
    assert!(!cluster.is_bootstrapped());
    assert!(matches!(
        cluster.region_by_key(b"a"),
        Err(PdError::NotBootstrapped)
    ));
    assert!(matches!(
        cluster.get_store(1),
        Err(PdError::NotBootstrapped)
    ));
    assert!(matches!(
        cluster.update_gc_safe_point(5),
        Err(PdError::NotBootstrapped)
    ));
    // IDs are needed to bootstrap, so they work before it.
    assert_eq!(cluster.alloc_id().unwrap(), 1);
}

#[test]
fn bootstrap_happens_once_and_is_durable() {
    let (store, cluster) = bootstrapped();
    let err = cluster
        .bootstrap(new_store(1, "127.0.0.1:20160"), first_region())
        .unwrap_err();
    assert_eq!(err.error_type(), pdpb::ErrorType::AlreadyBootstrapped);
    drop(cluster);
    let cluster = open(&store);
    assert!(cluster.is_bootstrapped());
    assert_eq!(cluster.region_by_key(b"anything").unwrap().id(), 2);
    assert_eq!(
        cluster.get_store(1).unwrap().store.address,
        "127.0.0.1:20160"
    );
    assert_eq!(cluster.cluster_meta().unwrap().max_peer_count, 3);
}

#[test]
fn malformed_bootstrap_is_invalid() {
    let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
    let cluster = open(&store);
    let mut partial = first_region();
    partial.end_key = b"m".to_vec();
    let mut wrong_store = first_region();
    wrong_store.peers[0].store_id = 9;
    for region in [partial, wrong_store] {
        let err = cluster
            .bootstrap(new_store(1, "127.0.0.1:20160"), region)
            .unwrap_err();
        assert_eq!(err.error_type(), pdpb::ErrorType::InvalidValue, "{err}");
    }
    assert!(!cluster.is_bootstrapped());
}

#[test]
fn stores_register_and_heartbeat() {
    let (store, cluster) = bootstrapped();
    cluster.put_store(new_store(4, "127.0.0.1:20161")).unwrap();
    let dup = cluster
        .put_store(new_store(5, "127.0.0.1:20161"))
        .unwrap_err();
    assert_eq!(dup.error_type(), pdpb::ErrorType::DuplicatedEntry);
    assert!(matches!(
        cluster.get_store(99),
        Err(PdError::StoreNotFound { store_id: 99 })
    ));
    cluster
        .store_heartbeat(pdpb::StoreStats {
            store_id: 4,
            capacity: 100,
            available: 60,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(cluster.get_store(4).unwrap().stats.unwrap().available, 60);
    assert!(cluster
        .store_heartbeat(pdpb::StoreStats {
            store_id: 77,
            ..Default::default()
        })
        .is_err());
    drop(cluster);
    let cluster = open(&store);
    let ids: Vec<u64> = cluster
        .stores(true)
        .unwrap()
        .iter()
        .map(StoreInfo::id)
        .collect();
    assert_eq!(ids, [1, 4]);
}

#[test]
fn region_heartbeats_update_and_persist_the_tree() {
    let (store, cluster) = bootstrapped();
    let leader = first_region().peers[0];
    let mut left = first_region();
    left.end_key = b"m".to_vec();
    left.region_epoch = Some(metapb::RegionEpoch {
        conf_ver: 1,
        version: 2,
    });
    let mut right = left.clone();
    right.id = 10;
    right.start_key = b"m".to_vec();
    right.end_key = Vec::new();
    right.peers[0].id = 11;
    for region in [right.clone(), left.clone()] {
        let leader = region.peers[0];
        cluster
            .region_heartbeat(RegionInfo {
                region,
                leader: Some(leader),
                ..RegionInfo::default()
            })
            .unwrap();
    }
    // The pre-split epoch is stale now.
    let stale = cluster.region_heartbeat(RegionInfo {
        region: first_region(),
        leader: Some(leader),
        ..RegionInfo::default()
    });
    assert!(matches!(stale, Err(PdError::StaleRegion { .. })));
    // A heartbeat without a leader is malformed.
    let err = cluster
        .region_heartbeat(RegionInfo::new(left.clone()))
        .unwrap_err();
    assert_eq!(err.error_type(), pdpb::ErrorType::InvalidValue);

    assert_eq!(cluster.region_by_key(b"z").unwrap().id(), 10);
    assert_eq!(cluster.prev_region_by_key(b"z").unwrap().id(), 2);
    assert_eq!(cluster.region_by_key(b"a").unwrap().leader, Some(leader));
    assert!(matches!(
        cluster.region_by_id(77),
        Err(PdError::RegionNotFound { region_id: 77 })
    ));
    drop(cluster);
    let cluster = open(&store);
    let layout: Vec<u64> = cluster
        .scan_regions(b"", b"", 0)
        .unwrap()
        .iter()
        .map(RegionInfo::id)
        .collect();
    assert_eq!(layout, [2, 10]);
}

#[test]
fn gc_safe_point_only_moves_forward() {
    let (store, cluster) = bootstrapped();
    assert_eq!(cluster.update_gc_safe_point(100).unwrap(), 100);
    assert_eq!(cluster.update_gc_safe_point(50).unwrap(), 100);
    drop(cluster);
    let cluster = open(&store);
    assert_eq!(cluster.gc_safe_point().unwrap(), 100);
}

#[test]
fn batch_split_allocates_region_and_peer_ids() {
    let (_, cluster) = bootstrapped();
    let ids = cluster.ask_batch_split(&first_region(), 2).unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| id.new_peer_ids.len() == 1));
    let mut all: Vec<u64> = ids
        .iter()
        .flat_map(|id| std::iter::once(id.new_region_id).chain(id.new_peer_ids.clone()))
        .collect();
    all.dedup();
    assert_eq!(all.len(), 4);
    let mut unknown = first_region();
    unknown.id = 555;
    assert!(matches!(
        cluster.ask_batch_split(&unknown, 1),
        Err(PdError::RegionNotFound { .. })
    ));
    assert!(cluster.ask_batch_split(&first_region(), 0).is_err());
    // Issue 9, bug 11: the count was unbounded (u32::MAX would allocate ids without end).
    assert!(matches!(
        cluster.ask_batch_split(&first_region(), u32::MAX),
        Err(PdError::InvalidValue { .. })
    ));
    assert_eq!(
        cluster
            .ask_batch_split(&first_region(), super::MAX_SPLIT_COUNT)
            .unwrap()
            .len(),
        super::MAX_SPLIT_COUNT as usize
    );
}

#[test]
fn replication_config_is_saved() {
    let (store, cluster) = bootstrapped();
    cluster
        .put_cluster_meta(metapb::Cluster {
            id: 42,
            max_peer_count: 5,
        })
        .unwrap();
    let err = cluster
        .put_cluster_meta(metapb::Cluster {
            id: 43,
            max_peer_count: 5,
        })
        .unwrap_err();
    assert!(matches!(err, PdError::ClusterIdMismatch { .. }));
    drop(cluster);
    let cluster = open(&store);
    assert_eq!(cluster.replication().max_replicas, 5);
    assert_eq!(cluster.cluster_meta().unwrap().max_peer_count, 5);
}

#[test]
fn store_health_counts_silence_from_the_later_of_heartbeat_and_pd_start() {
    use std::time::Duration;

    let max_down = Duration::from_secs(2);
    let store = |state: metapb::StoreState, last_heartbeat_ms: u64| StoreInfo {
        store: metapb::Store {
            id: 1,
            state: state as i32,
            ..Default::default()
        },
        stats: None,
        last_heartbeat_ms,
    };
    let up = metapb::StoreState::Up;
    let offline = metapb::StoreState::Offline;
    let tombstone = metapb::StoreState::Tombstone;
    // (store, now, PD start, expected)
    let cases = [
        (store(up, 10_000), 12_000, 0, StoreHealth::Up),
        (store(up, 10_000), 12_001, 0, StoreHealth::Down),
        (store(up, 0), 12_001, 10_000, StoreHealth::Down),
        (store(up, 0), 11_000, 10_000, StoreHealth::Up),
        (store(offline, 10_000), 11_000, 0, StoreHealth::Offline),
        (store(offline, 10_000), 20_000, 0, StoreHealth::Down),
        (store(tombstone, 10_000), 10_000, 0, StoreHealth::Tombstone),
    ];
    for (info, now, pd_start, expected) in cases {
        assert_eq!(
            info.health(now, pd_start, max_down),
            expected,
            "state {} last heartbeat {} now {now} pd start {pd_start}",
            info.store.state,
            info.last_heartbeat_ms
        );
    }
}

/// The region at `[start, end)` after one split of the first region (version 2).
fn split_part(id: u64, peer_id: u64, start: &[u8], end: &[u8]) -> metapb::Region {
    metapb::Region {
        id,
        start_key: start.to_vec(),
        end_key: end.to_vec(),
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: 2,
        }),
        peers: vec![metapb::Peer {
            id: peer_id,
            store_id: 1,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn a_split_report_leaves_no_hole_in_the_layout() {
    let (store, cluster) = bootstrapped();
    let leader = first_region().peers[0];
    cluster
        .region_heartbeat(RegionInfo {
            region: first_region(),
            leader: Some(leader),
            ..RegionInfo::default()
        })
        .unwrap();
    let left = split_part(2, 3, b"", b"m");
    let right = split_part(10, 11, b"m", b"");
    // The old region's heartbeat at its new range comes first: until the report, the right
    // half has no region.
    cluster
        .region_heartbeat(RegionInfo {
            region: left.clone(),
            leader: Some(leader),
            ..RegionInfo::default()
        })
        .unwrap();
    assert!(cluster.region_by_key(b"z").is_err());
    cluster
        .report_batch_split(&[left.clone(), right.clone()])
        .unwrap();
    let found = cluster.region_by_key(b"z").unwrap();
    assert_eq!(found.region, right);
    assert_eq!(found.leader, Some(right.peers[0]), "the old leader's store");
    assert_eq!(cluster.region_by_key(b"a").unwrap().leader, Some(leader));

    // A report older than what heartbeats brought changes nothing.
    let newer_leader = metapb::Peer {
        id: 99,
        store_id: 1,
        ..Default::default()
    };
    let mut newer = right.clone();
    newer.peers.push(newer_leader);
    newer.region_epoch = Some(metapb::RegionEpoch {
        conf_ver: 2,
        version: 2,
    });
    cluster
        .region_heartbeat(RegionInfo {
            region: newer.clone(),
            leader: Some(newer_leader),
            ..RegionInfo::default()
        })
        .unwrap();
    cluster.report_batch_split(&[left, right]).unwrap();
    assert_eq!(
        cluster.region_by_key(b"z").unwrap().leader,
        Some(newer_leader)
    );

    drop(cluster);
    let cluster = open(&store);
    assert_eq!(cluster.region_by_key(b"z").unwrap().region, newer);
}
