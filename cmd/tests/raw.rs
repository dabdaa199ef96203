//! End-to-end tests of raw KV: the real `pd-server` and three `tikv-server` processes on
//! loopback ports, driven by the official `tikv-client` RawClient, with API V1 and with the
//! default keyspace (API V2). One cluster serves the whole suite.

use std::path::Path;
use std::time::Duration;

use cmd::process::{wait_until, LocalCluster, PdProcess, TikvProcess};
use kvproto::{kvrpcpb, metapb, tikvpb::tikv_client::TikvClient};
use tikv_client::{ColumnFamily, Config, RawClient};

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("binaries live in a directory")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn basic_operations(client: &RawClient, prefix: &str) {
    let key = |k: &str| format!("{prefix}{k}").into_bytes();
    client.put(key("a"), b"1".to_vec()).await.unwrap();
    assert_eq!(client.get(key("a")).await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(client.get(key("missing")).await.unwrap(), None);
    client
        .batch_put(vec![
            (key("b"), b"2".to_vec()),
            (key("c"), b"3".to_vec()),
            (key("d"), b"4".to_vec()),
        ])
        .await
        .unwrap();
    let got = client
        .batch_get(vec![key("a"), key("c"), key("zz")])
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let scanned = client.scan(key("a")..key("d"), 10).await.unwrap();
    let keys: Vec<Vec<u8>> = scanned.iter().map(|p| p.key().clone().into()).collect();
    assert_eq!(keys, vec![key("a"), key("b"), key("c")]);
    let reversed = client.scan_reverse(key("a")..=key("d"), 10).await.unwrap();
    let keys: Vec<Vec<u8>> = reversed.iter().map(|p| p.key().clone().into()).collect();
    assert_eq!(keys, vec![key("d"), key("c"), key("b"), key("a")]);
    client.delete(key("a")).await.unwrap();
    assert_eq!(client.get(key("a")).await.unwrap(), None);
    client.batch_delete(vec![key("b"), key("c")]).await.unwrap();
    client.delete_range(key("")..key("zzzz")).await.unwrap();
    assert!(client
        .scan(key("")..key("zzzz"), 10)
        .await
        .unwrap()
        .is_empty());
    // No end: with V1 the client sends the last region an empty end key.
    client.put(key("e"), b"5".to_vec()).await.unwrap();
    client.delete_range(key("")..).await.unwrap();
    assert!(client.scan(key("").., 10).await.unwrap().is_empty());
}

async fn ttl_cas_batch_scan_and_cfs(client: &RawClient, prefix: &str) {
    let key = |k: &str| format!("{prefix}{k}").into_bytes();
    client
        .put_with_ttl(key("ttl"), b"v".to_vec(), 10)
        .await
        .unwrap();
    let ttl = client
        .get_key_ttl_secs(key("ttl"))
        .await
        .unwrap()
        .expect("key exists");
    assert!(ttl > 5 && ttl <= 10, "ttl {ttl}");
    client.put(key("forever"), b"v".to_vec()).await.unwrap();
    assert_eq!(
        client.get_key_ttl_secs(key("forever")).await.unwrap(),
        Some(0)
    );
    assert_eq!(client.get_key_ttl_secs(key("absent")).await.unwrap(), None);
    client
        .put_with_ttl(key("short"), b"v".to_vec(), 1)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.get(key("short")).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "a 1 s TTL expires");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (1..=5)
        .map(|i| (key(&format!("k{i}")), vec![b'0' + i]))
        .collect();
    client.batch_put(pairs).await.unwrap();
    let ranges = vec![key("k1")..=key("k3"), key("k2")..=key("k5")];
    assert_eq!(
        client.batch_scan(ranges, 4).await.unwrap().len(),
        7,
        "overlapping ranges each count"
    );

    let atomic = client.with_atomic_for_cas();
    assert_eq!(
        atomic
            .compare_and_swap(key("cas"), None, b"1".to_vec())
            .await
            .unwrap(),
        (None, true)
    );
    assert_eq!(
        atomic
            .compare_and_swap(key("cas"), Some(b"2".to_vec()), b"3".to_vec())
            .await
            .unwrap(),
        (Some(b"1".to_vec()), false)
    );
    assert_eq!(
        atomic
            .compare_and_swap(key("cas"), Some(b"1".to_vec()), b"2".to_vec())
            .await
            .unwrap(),
        (Some(b"1".to_vec()), true)
    );
    assert_eq!(atomic.get(key("cas")).await.unwrap(), Some(b"2".to_vec()));

    let write_cf = client.with_cf(ColumnFamily::Write);
    write_cf.put(key("cf"), b"w".to_vec()).await.unwrap();
    assert_eq!(write_cf.get(key("cf")).await.unwrap(), Some(b"w".to_vec()));
    assert_eq!(
        client.get(key("cf")).await.unwrap(),
        None,
        "column families are separate"
    );
}

/// Puts `count` keys (each its own value) in batches, calls `after_puts`, then reads them back
/// and deletes them in batches.
async fn many_keys(client: &RawClient, prefix: &str, count: usize, after_puts: impl FnOnce()) {
    let key = |i: usize| format!("{prefix}many-{i:06}").into_bytes();
    let keys: Vec<Vec<u8>> = (0..count).map(key).collect();
    for chunk in keys.chunks(5_000) {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = chunk.iter().map(|k| (k.clone(), k.clone())).collect();
        client.batch_put(pairs).await.unwrap();
    }
    tokio::task::block_in_place(after_puts);
    for chunk in keys.chunks(5_000) {
        let got = client.batch_get(chunk.to_vec()).await.unwrap();
        assert_eq!(got.len(), chunk.len());
        assert!(got
            .iter()
            .all(|p| Vec::<u8>::from(p.key().clone()) == *p.value()));
    }
    for chunk in keys.chunks(5_000) {
        client.batch_delete(chunk.to_vec()).await.unwrap();
    }
    let left = client.scan(key(0)..=key(count), 100).await.unwrap();
    assert!(left.is_empty(), "every key deleted");
}

/// Bad input gets TiKV's errors, writes nothing, and leaves the region serving.
async fn bad_input(client: &RawClient, prefix: &str) {
    let long_key = [prefix.as_bytes(), &[b'k'; 8 * 1024]].concat();
    let err = client
        .put(long_key.clone(), b"v".to_vec())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key is too large"), "{err:?}");
    assert_eq!(client.get(long_key).await.unwrap(), None);

    // One 9 MiB value makes a raft entry over the 8 MiB limit.
    let key = format!("{prefix}huge").into_bytes();
    let err = client
        .put(key.clone(), vec![b'v'; 9 << 20])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, tikv_client::Error::RegionError(e) if e.raft_entry_too_large.is_some()),
        "{err:?}"
    );
    assert_eq!(client.get(key.clone()).await.unwrap(), None);
    client.put(key.clone(), b"small".to_vec()).await.unwrap();
    assert_eq!(client.get(key).await.unwrap(), Some(b"small".to_vec()));
}

fn region_count(cluster: &LocalCluster) -> u64 {
    cluster
        .regions_json()
        .and_then(|r| r["count"].as_u64())
        .expect("PD counts regions")
}

/// The region holding the start of the key space and its leader, as PD's HTTP API shows them.
fn first_region(cluster: &LocalCluster) -> (metapb::Region, metapb::Peer) {
    let regions = cluster.regions_json().expect("PD lists regions");
    let region = regions["regions"]
        .as_array()
        .and_then(|list| list.iter().find(|r| r["start_key"] == ""))
        .expect("a region starting at the empty key");
    let number = |v: &serde_json::Value| v.as_u64().expect("a number");
    let leader = metapb::Peer {
        id: number(&region["leader"]["id"]),
        store_id: number(&region["leader"]["store_id"]),
        ..Default::default()
    };
    let region = metapb::Region {
        id: number(&region["id"]),
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: number(&region["epoch"]["conf_ver"]),
            version: number(&region["epoch"]["version"]),
        }),
        peers: region["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .map(|p| metapb::Peer {
                id: number(&p["id"]),
                store_id: number(&p["store_id"]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    (region, leader)
}

/// A request that names another store than the one it reaches gets StoreNotMatch, on the
/// read and the write path. It goes to the leader just after a write, so that the read meets
/// the leader's lease (the local reader) rather than only the raft thread.
async fn store_not_match(cluster: &LocalCluster, v1: &RawClient) {
    let (region, peer) = first_region(cluster);
    v1.put(b"lease".to_vec(), b"renewed".to_vec())
        .await
        .unwrap();
    let context = Some(kvrpcpb::Context {
        region_id: region.id,
        region_epoch: region.region_epoch,
        peer: Some(metapb::Peer {
            store_id: peer.store_id + 1000,
            ..peer
        }),
        ..Default::default()
    });
    let store = cluster
        .store_index(peer.store_id)
        .expect("the peer's store is ours");
    let mut kv = TikvClient::connect(format!("http://{}", cluster.stores[store].addr()))
        .await
        .unwrap();
    let get = kv
        .raw_get(kvrpcpb::RawGetRequest {
            context: context.clone(),
            key: b"k".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let put = kv
        .raw_put(kvrpcpb::RawPutRequest {
            context,
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for region_error in [get.region_error, put.region_error] {
        let error = region_error.expect("a region error");
        let mismatch = error.store_not_match.expect("StoreNotMatch");
        assert_eq!(mismatch.request_store_id, peer.store_id + 1000);
        assert_eq!(mismatch.actual_store_id, peer.store_id);
    }
}

/// A store's data belongs to its cluster: against another PD, tikv-server refuses to start.
fn cluster_id_mismatch(cluster: &mut LocalCluster, dir: &Path) {
    assert!(cluster.stores[0].stop(), "clean stop");
    let data_dir = cluster.stores[0].data_dir().to_path_buf();
    let other = PdProcess::start(&bin_dir().join("pd-server"), &dir.join("other-pd")).unwrap();
    let err = TikvProcess::start(
        &bin_dir().join("tikv-server"),
        &data_dir,
        &other.addr(),
        &[],
    )
    .err()
    .expect("a store of another cluster must not start");
    assert!(err.contains("belongs to cluster"), "{err}");
}

#[test]
fn raw_kv_suite() {
    let dir = tempfile::tempdir().unwrap();
    // Small regions, so that the 100,000-key runs split regions.
    let config = dir.path().join("tikv.toml");
    std::fs::write(
        &config,
        "[raftstore]\nsplit-region-check-tick-interval = \"1s\"\nregion-split-check-diff = \"64KiB\"\n\
         [coprocessor]\nregion-max-size = \"768KiB\"\nregion-split-size = \"512KiB\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let mut cluster = LocalCluster::start(bin_dir(), dir.path(), 3, None, &["--config", config])
        .unwrap_or_else(|e| panic!("start cluster: {e}"));
    cluster
        .wait_for_replicas(3, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}: {:?}", cluster.regions_json()));
    let pd = vec![cluster.pd.addr()];
    runtime().block_on(async {
        let v1 = RawClient::new(pd.clone()).await.unwrap();
        basic_operations(&v1, "v1-").await;
        ttl_cas_batch_scan_and_cfs(&v1, "v1-").await;
        let regions_before = region_count(&cluster);
        many_keys(&v1, "v1-", 100_000, || {
            wait_until("size-based splits", Duration::from_secs(30), || {
                region_count(&cluster) > regions_before
            })
            .unwrap()
        })
        .await;
        let v2 = RawClient::new_with_config(pd.clone(), Config::default().with_default_keyspace())
            .await
            .unwrap();
        basic_operations(&v2, "v2-").await;
        ttl_cas_batch_scan_and_cfs(&v2, "v2-").await;
        many_keys(&v2, "v2-", 100_000, || {}).await;
        bad_input(&v1, "v1-").await;
        bad_input(&v2, "v2-").await;
        store_not_match(&cluster, &v1).await;
    });
    cluster_id_mismatch(&mut cluster, dir.path());
}
