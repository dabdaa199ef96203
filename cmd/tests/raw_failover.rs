//! Crash tests of raw KV with the real processes: `kill -9` of the leader's store in the middle
//! of writes, all stores killed and restarted, a stopped store replaced by a new one, and a
//! kill -9 after raft log GC dropped the entries of writes RocksDB holds in memtables only, and
//! a store restarted on a raft log that is not its own.
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

/// A cluster of three stores started with `raftstore` (lines of the `[raftstore]` table) and,
/// when given, PD's config file text; with a runtime and a raw client on it.
fn start(
    dir: &Path,
    raftstore: &str,
    pd_config: Option<&str>,
) -> (LocalCluster, tokio::runtime::Runtime, RawClient) {
    let pd_config = pd_config.map(|text| {
        let path = dir.join("pd.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let tikv_config = dir.join("tikv.toml");
    let text = format!("[raftstore]\n{raftstore}{}", cmd::process::FAST_ELECTIONS);
    std::fs::write(&tikv_config, text).unwrap();
    let tikv_args = ["--config", tikv_config.to_str().unwrap()];
    let cluster = LocalCluster::start(
        bin_dir(),
        &dir.join("cluster"),
        3,
        pd_config.as_deref(),
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
    (cluster, runtime, client)
}

#[test]
fn acknowledged_writes_survive_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, runtime, client) = start(
        dir.path(),
        "pd-heartbeat-tick-interval = \"1s\"\npd-store-heartbeat-tick-interval = \"1s\"\n",
        Some("[schedule]\nmax-store-down-time = \"3s\"\n"),
    );

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
    kill_and_restart_every_store(&mut cluster);
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
    wait_for_reads_of(runtime, client, key(i), value(i));
}

/// Waits until a read of `key` answers `value`.
fn wait_for_reads_of(
    runtime: &tokio::runtime::Runtime,
    client: &RawClient,
    key: Vec<u8>,
    value: Vec<u8>,
) {
    let mut last = None;
    let result = cmd::process::wait_until(
        "the cluster to answer reads",
        Duration::from_secs(60),
        || {
            let got = runtime.block_on(client.get(key.clone()));
            let ok = got.as_ref().is_ok_and(|v| v.as_ref() == Some(&value));
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

/// Kills every store at once, as a power cut of the cluster would, then restarts each on its data.
fn kill_and_restart_every_store(cluster: &mut LocalCluster) {
    for store in &mut cluster.stores {
        store.kill();
    }
    for store in &mut cluster.stores {
        store.restart().unwrap();
    }
}

/// The entries a store's raft log GC has dropped, from its `/metrics`.
fn compacted_entries(store: &cmd::process::TikvProcess) -> f64 {
    let Ok((_, body)) = cmd::process::http_get(&store.status_addr(), "/metrics") else {
        return 0.0;
    };
    body.lines()
        .find_map(|line| line.strip_prefix("tikv_raftstore_raft_log_gc_deleted_keys_sum "))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Without the data engine's WAL (the default), applied writes live in RocksDB's memtables until
/// a flush, and raft log GC must keep their entries until one has covered them. Every store
/// compacts its log past the writes, then all are killed: the writes come back from the
/// flushed files and the rest of the log.
#[test]
fn writes_whose_raft_log_was_compacted_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, runtime, client) = start(
        dir.path(),
        "raft-log-gc-tick-interval = \"200ms\"\nraft-log-gc-threshold = 10\n",
        None,
    );
    let written: Vec<u32> = (0..400).collect();
    for &i in &written {
        runtime
            .block_on(client.put(key(i), value(i)))
            .expect("put on a healthy cluster");
    }
    for store in &cluster.stores {
        cmd::process::wait_until(
            "every store to compact its raft log past the writes",
            Duration::from_secs(60),
            || compacted_entries(store) >= 350.0,
        )
        .unwrap_or_else(|e| panic!("{e}: {} entries", compacted_entries(store)));
    }
    kill_and_restart_every_store(&mut cluster);
    wait_for_reads(&runtime, &client, written[0]);
    runtime.block_on(check_acked(&client, &written));
}

/// Splits whose apply was in memtables only: every store is killed after two splits and writes
/// to the new regions, so each restarts with the parent unsplit. The parent applies the splits
/// again from its raft log, the new regions keep the raft state raft-engine holds for them
/// (their votes and entries), and every write is read back.
#[test]
fn splits_lost_with_the_memtables_are_applied_again() {
    let dir = tempfile::tempdir().unwrap();
    // No sync (flush) of the data engine while the test runs.
    let (mut cluster, runtime, client) =
        start(dir.path(), "raft-log-gc-tick-interval = \"1h\"\n", None);
    let keys: Vec<u32> = (0..300).collect();
    let put_all = |tag: &str| {
        for &i in &keys {
            let value = format!("{tag}-{i}").into_bytes();
            runtime
                .block_on(client.put(key(i), value))
                .expect("put on a healthy cluster");
        }
    };
    put_all("before");
    // A replica added by a snapshot flushes its store's memtables: let every replica of the
    // start-up regions be a voter (its snapshot applied) before the splits.
    cmd::process::wait_until(
        "every replica to be a voter",
        Duration::from_secs(60),
        || {
            cluster.regions_json().is_some_and(|r| {
                r["regions"].as_array().unwrap().iter().all(|r| {
                    let peers = r["peers"].as_array().cloned().unwrap_or_default();
                    peers.len() == 3 && peers.iter().all(|p| p["role_name"] == "Voter")
                })
            })
        },
    )
    .unwrap();
    let pd = cluster.pd.addr();
    let regions_before = cluster.regions_json().unwrap()["count"].as_u64().unwrap();
    let region = cmd::process::pd_region_of(&pd, &key(0)).unwrap();
    let split_keys = [cmd::ctl::hex(&key(100)), cmd::ctl::hex(&key(200))];
    let body = serde_json::json!({
        "name": "split-region",
        "region_id": region["id"].as_u64().unwrap(),
        "keys": split_keys,
    });
    let (status, reply) =
        cmd::process::http_request(&pd, "POST", "/pd/api/v1/operators", &body.to_string()).unwrap();
    assert_eq!(status, 200, "{reply}");
    cluster
        .wait_for_regions(regions_before + 2, Duration::from_secs(60))
        .unwrap();
    put_all("after");
    kill_and_restart_every_store(&mut cluster);
    wait_for_reads_of(&runtime, &client, key(150), b"after-150".to_vec());
    // The premise: every store came back without the splits' regions (it had the start-up
    // regions from its bootstrap or from snapshots, whose apply flushes).
    for store in &cluster.stores {
        let log = std::fs::read_to_string(store.log_path()).unwrap();
        let start = log
            .lines()
            .rfind(|line| line.contains("raftstore starting"))
            .expect("the store logged its start");
        let regions: u64 = start
            .split_once("regions=")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no region count in {start:?}"));
        assert!(regions <= regions_before, "{start}");
    }
    for &i in &keys {
        let got = runtime
            .block_on(client.get(key(i)))
            .expect("get after restart");
        assert_eq!(got, Some(format!("after-{i}").into_bytes()), "key {i}");
    }
}

/// A store restarted on a raft log that is not its own (its raft log directory emptied, or
/// `raft-engine.dir` pointed at a fresh one) refuses to start and says what to fix, instead of
/// rebuilding every region's log at its applied index and forgetting the terms and votes it had
/// given and the entries it had acknowledged. Started on its own log again, it serves as before.
#[test]
fn a_store_refuses_to_start_on_a_raft_log_that_is_not_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, runtime, client) = start(dir.path(), "", None);
    let written: Vec<u32> = (0..20).collect();
    for &i in &written {
        runtime
            .block_on(client.put(key(i), value(i)))
            .expect("put on a healthy cluster");
    }
    let store = &mut cluster.stores[0];
    store.stop();
    let raft_dir = store.data_dir().join("raft");
    let moved = store.data_dir().join("raft.moved");
    std::fs::rename(&raft_dir, &moved).unwrap();

    let refusal = store
        .restart()
        .expect_err("a store whose raft log is empty must not start");
    assert!(refusal.contains("raft-engine.dir"), "{refusal}");

    std::fs::remove_dir_all(&raft_dir).unwrap();
    std::fs::rename(&moved, &raft_dir).unwrap();
    store.restart().unwrap();
    wait_for_reads(&runtime, &client, written[0]);
    runtime.block_on(check_acked(&client, &written));
}
