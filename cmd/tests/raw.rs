//! End-to-end tests of raw KV: the real `pd-server` and three `tikv-server` processes on
//! loopback ports, driven by the official `tikv-client` RawClient, with API V1 and with the
//! default keyspace (API V2). One cluster serves the whole suite.

use std::path::Path;
use std::time::Duration;

use cmd::process::LocalCluster;
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

async fn many_keys(client: &RawClient, prefix: &str, count: usize) {
    let key = |i: usize| format!("{prefix}many-{i:06}").into_bytes();
    let keys: Vec<Vec<u8>> = (0..count).map(key).collect();
    for chunk in keys.chunks(5_000) {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = chunk.iter().map(|k| (k.clone(), k.clone())).collect();
        client.batch_put(pairs).await.unwrap();
    }
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

#[test]
fn raw_kv_suite() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(bin_dir(), dir.path(), 3, None, &[])
        .unwrap_or_else(|e| panic!("start cluster: {e}"));
    cluster
        .wait_for_replicas(3, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}: {:?}", cluster.regions_json()));
    let pd = vec![cluster.pd.addr()];
    runtime().block_on(async {
        let v1 = RawClient::new(pd.clone()).await.unwrap();
        basic_operations(&v1, "v1-").await;
        ttl_cas_batch_scan_and_cfs(&v1, "v1-").await;
        many_keys(&v1, "v1-", 100_000).await;
        let v2 = RawClient::new_with_config(pd.clone(), Config::default().with_default_keyspace())
            .await
            .unwrap();
        basic_operations(&v2, "v2-").await;
        ttl_cas_batch_scan_and_cfs(&v2, "v2-").await;
        many_keys(&v2, "v2-", 100_000).await;
    });
}
