//! Crash tests of raw KV with the real processes: `kill -9` of the leader's store in the middle
//! of writes, all stores killed and restarted, and a stopped store replaced by a new one.
//! Every acknowledged write must stay readable throughout.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmd::process::LocalCluster;
use tikv_client::RawClient;

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("binaries live in a directory")
}

fn key(i: u32) -> Vec<u8> {
    format!("failover-{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}").into_bytes()
}

async fn check_acked(client: &RawClient, acked: &[u32]) {
    for chunk in acked.chunks(200) {
        let keys: Vec<Vec<u8>> = chunk.iter().map(|i| key(*i)).collect();
        let pairs = client
            .batch_get(keys)
            .await
            .expect("batch get after failure");
        assert_eq!(
            pairs.len(),
            chunk.len(),
            "every acknowledged key is readable"
        );
        for pair in pairs {
            let k: Vec<u8> = pair.key().clone().into();
            let i: u32 = String::from_utf8(k[9..].to_vec()).unwrap().parse().unwrap();
            assert_eq!(pair.value(), &value(i));
        }
    }
}

#[test]
fn acknowledged_writes_survive_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let pd_config = dir.path().join("pd.toml");
    std::fs::write(&pd_config, "[schedule]\nmax-store-down-time = \"3s\"\n").unwrap();
    let tikv_config = dir.path().join("tikv.toml");
    std::fs::write(
        &tikv_config,
        format!(
            "[raftstore]\npd-heartbeat-tick-interval = \"1s\"\npd-store-heartbeat-tick-interval = \"1s\"\n{}",
            cmd::process::FAST_ELECTIONS
        ),
    )
    .unwrap();
    let tikv_args = ["--config", tikv_config.to_str().unwrap()];
    let mut cluster = LocalCluster::start(
        bin_dir(),
        &dir.path().join("cluster"),
        3,
        Some(&pd_config),
        &tikv_args,
    )
    .unwrap_or_else(|e| panic!("start cluster: {e}"));
    cluster
        .wait_for_replicas(3, Duration::from_secs(90))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = runtime
        .block_on(RawClient::new(vec![cluster.pd.addr()]))
        .unwrap();

    // 1. Kill the leader's store while writes are in flight.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let client = client.clone();
        let acked = acked.clone();
        runtime.spawn(async move {
            for i in 0..3000u32 {
                if client.put(key(i), value(i)).await.is_ok() {
                    acked.lock().unwrap().push(i);
                }
            }
        })
    };
    cmd::process::wait_until("some writes", Duration::from_secs(60), || {
        acked.lock().unwrap().len() >= 300
    })
    .unwrap();
    let leader = cluster
        .leader_store_of(&key(0))
        .expect("the region has a leader");
    let victim = cluster
        .store_index(leader)
        .expect("leader store is one of ours");
    cluster.stores[victim].kill();
    runtime.block_on(writer).unwrap();
    let acked_now = acked.lock().unwrap().clone();
    assert!(acked_now.len() > 300, "writes continue on the new leader");
    wait_for_reads(&runtime, &client, acked_now[0]);
    runtime.block_on(check_acked(&client, &acked_now));

    // 2. All stores crash at once, then restart with their data.
    cluster.stores[victim].restart().unwrap();
    for store in &mut cluster.stores {
        store.kill();
    }
    for store in &mut cluster.stores {
        store.restart().unwrap();
    }
    wait_for_reads(&runtime, &client, acked_now[0]);
    runtime.block_on(check_acked(&client, &acked_now));

    // 3. A store stops for good; a fourth store takes over its replicas.
    assert!(cluster.stores[0].stop());
    cluster.add_store().unwrap();
    let stopped_addr = cluster.stores[0].addr();
    cmd::process::wait_until(
        "replicas to move off the stopped store",
        Duration::from_secs(120),
        || {
            let Some(regions) = cluster.regions_json() else {
                return false;
            };
            let Some(stopped_id) = stopped_store_id(&cluster, &stopped_addr) else {
                return false;
            };
            regions["regions"].as_array().is_some_and(|list| {
                list.iter().all(|r| {
                    let peers = r["peers"].as_array().cloned().unwrap_or_default();
                    peers.len() == 3
                        && peers
                            .iter()
                            .all(|p| p["store_id"].as_u64() != Some(stopped_id))
                })
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", cluster.regions_json()));
    runtime.block_on(check_acked(&client, &acked_now));
}

/// Waits until the cluster answers reads again (elections after a crash take a moment).
fn wait_for_reads(runtime: &tokio::runtime::Runtime, client: &RawClient, i: u32) {
    let mut last = None;
    let result = cmd::process::wait_until(
        "the cluster to answer reads",
        Duration::from_secs(60),
        || {
            let got = runtime.block_on(client.get(key(i)));
            let ok = got.as_ref().is_ok_and(|v| *v == Some(value(i)));
            last = Some(format!("{got:?}"));
            ok
        },
    );
    if let Err(e) = result {
        panic!("{e}; last answer: {last:?}");
    }
}

fn stopped_store_id(cluster: &LocalCluster, address: &str) -> Option<u64> {
    let (_, body) = cmd::process::http_get(&cluster.pd.addr(), "/pd/api/v1/stores").ok()?;
    let stores: serde_json::Value = serde_json::from_str(&body).ok()?;
    stores["stores"]
        .as_array()?
        .iter()
        .find(|s| s["store"]["address"].as_str() == Some(address))?["store"]["id"]
        .as_u64()
}
