//! End-to-end tests of raw KV: the real `pd-server` and three `tikv-server` processes on
//! loopback ports, driven by the official `tikv-client` RawClient, with API V1 and with the
//! default keyspace (API V2). One cluster serves the whole suite.

use std::path::Path;
use std::time::Duration;

use cmd::process::LocalCluster;
use tikv_client::{Config, RawClient};

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
        let v2 = RawClient::new_with_config(pd.clone(), Config::default().with_default_keyspace())
            .await
            .unwrap();
        basic_operations(&v2, "v2-").await;
    });
}
