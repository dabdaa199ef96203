//! End-to-end tests of pessimistic lock waiting, deadlock detection across stores and the GC
//! worker: the real `pd-server` and three `tikv-server` processes, driven by the official
//! `tikv-client`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cmd::process::{
    http_request, pd_region_of, wait_until, LocalCluster, PD_WITHOUT_LEADER_BALANCE,
};
use tikv_client::{Timestamp, TimestampExt, Transaction, TransactionClient, TransactionOptions};

/// TiKV's defaults, written out.
const TIKV_CONFIG: &str =
    "[pessimistic-txn]\nwait-for-lock-timeout = \"1s\"\n[gc]\nbatch-keys = 512\n";

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("binaries live in a directory")
}

fn start_cluster(dir: &Path) -> LocalCluster {
    // The test keeps a region's leader off the deadlock detector's store; PD's leader
    // balancer must not move it back.
    LocalCluster::start_configured(
        bin_dir(),
        dir,
        3,
        Some(PD_WITHOUT_LEADER_BALANCE),
        TIKV_CONFIG,
        Duration::from_secs(90),
    )
    .unwrap_or_else(|e| panic!("start cluster: {e}"))
}

/// A transactional key as PD and the regions see it (API V1: memcomparable).
fn region_key(key: &[u8]) -> String {
    pd_server::cluster::hex_upper(&codec::memcomparable::encode(key))
}

/// The id and start key (hex) of the region holding transactional `key`.
fn region_of(cluster: &LocalCluster, key: &[u8]) -> Option<(u64, String)> {
    let region = pd_region_of(&cluster.pd.addr(), &codec::memcomparable::encode(key))?;
    let start = region["start_key"].as_str().unwrap_or_default().to_string();
    Some((region["id"].as_u64().unwrap_or(0), start))
}

/// Adds an operator, waiting while the region has another one (PD promoting a new replica).
fn add_operator(cluster: &LocalCluster, body: serde_json::Value) {
    let mut last = String::new();
    wait_until("PD to take the operator", Duration::from_secs(30), || {
        let (status, reply) = http_request(
            &cluster.pd.addr(),
            "POST",
            "/pd/api/v1/operators",
            &body.to_string(),
        )
        .unwrap();
        last = reply;
        status == 200
    })
    .unwrap_or_else(|e| panic!("{e}: {last}"));
}

/// Splits so that keys from `prefix` on have their own region, led by another store than the
/// region holding the empty key, whose leader keeps the deadlock detector's graph: waits on
/// those keys then reach the detector over gRPC.
fn move_keys_away_from_the_detector(cluster: &LocalCluster, prefix: &[u8]) {
    let (region_id, _) = region_of(cluster, prefix).unwrap();
    add_operator(
        cluster,
        serde_json::json!({"name": "split-region", "region_id": region_id, "keys": [region_key(prefix)]}),
    );
    wait_until("the split", Duration::from_secs(30), || {
        region_of(cluster, prefix).is_some_and(|(_, start)| start == region_key(prefix))
    })
    .unwrap();
    cluster.wait_until_serving(Duration::from_secs(30)).unwrap();
    let detector = cluster.leader_store_of(&[0]).unwrap();
    let (region_id, _) = region_of(cluster, prefix).unwrap();
    let leader = cluster.leader_store_of(&codec::memcomparable::encode(prefix));
    if leader == Some(detector) {
        let regions = cluster.regions_json().unwrap();
        let region = regions["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"].as_u64() == Some(region_id))
            .unwrap();
        let target = region["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["store_id"].as_u64())
            .find(|&store| store != detector)
            .unwrap();
        add_operator(
            cluster,
            serde_json::json!({"name": "transfer-leader", "region_id": region_id, "to_store_id": target}),
        );
        wait_until("the leader transfer", Duration::from_secs(30), || {
            cluster.leader_store_of(&codec::memcomparable::encode(prefix)) == Some(target)
        })
        .unwrap();
    }
}

fn is_deadlock(error: &tikv_client::Error) -> bool {
    format!("{error:?}").contains("deadlock: Some(")
}

/// Locks `second` in `txn`, which already holds a lock; commits on success, rolls back on a
/// deadlock. Returns whether it was the deadlocked one.
async fn lock_second(mut txn: Transaction, second: &'static [u8]) -> bool {
    match txn.get_for_update(second.to_vec()).await {
        Ok(_) => {
            txn.put(second.to_vec(), b"won".to_vec()).await.unwrap();
            txn.commit().await.unwrap();
            false
        }
        Err(e) => {
            assert!(is_deadlock(&e), "expected a deadlock, got {e:?}");
            txn.rollback().await.unwrap();
            true
        }
    }
}

/// Two transactions lock A then B and B then A: exactly one hears Deadlock, and the other
/// commits once it gave up.
async fn opposite_lock_orders_deadlock_once(client: &TransactionClient) {
    let mut first = client.begin_pessimistic().await.unwrap();
    let mut second = client.begin_pessimistic().await.unwrap();
    first.get_for_update(b"dl-a".to_vec()).await.unwrap();
    second.get_for_update(b"dl-b".to_vec()).await.unwrap();
    let first = tokio::spawn(lock_second(first, b"dl-b"));
    let second = tokio::spawn(lock_second(second, b"dl-a"));
    let deadlocked = [first.await.unwrap(), second.await.unwrap()];
    assert_eq!(
        deadlocked.iter().filter(|&&d| d).count(),
        1,
        "{deadlocked:?}"
    );
}

async fn increment(txn: &mut Transaction, counter: Vec<u8>) -> tikv_client::Result<()> {
    let value = txn.get_for_update(counter.clone()).await?;
    let n: u64 = value.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
    txn.put(counter, (n + 1).to_string().into_bytes()).await?;
    txn.commit().await?;
    Ok(())
}

/// `clients` pessimistic transactions increment one counter at once; every one commits (no
/// retry by the caller) and none is lost.
async fn concurrent_increments_all_commit(client: &Arc<TransactionClient>, clients: u64) {
    let counter = b"dl-counter".to_vec();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut txn = client.begin_pessimistic().await?;
                match increment(&mut txn, counter).await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        txn.rollback().await?;
                        Err(e)
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let ts = client.current_timestamp().await.unwrap();
    let mut snapshot = client.snapshot(ts, TransactionOptions::new_optimistic());
    let value = snapshot.get(counter).await.unwrap().unwrap();
    assert_eq!(value, clients.to_string().into_bytes());
}

/// The versions the GC worker of every store removed so far.
fn gc_deleted_versions(cluster: &LocalCluster) -> u64 {
    cluster.metric_total("tikv_gcworker_gc_keys", "tag=\"deleted\"") as u64
}

/// Overwrites one key, moves PD's safe point past the overwrites and waits for the GC workers:
/// the old versions go, and a snapshot just above the safe point still reads its value.
async fn gc_follows_the_safe_point(cluster: &LocalCluster, client: &TransactionClient) {
    let key = b"gc-key".to_vec();
    let overwrites = 200u64;
    for i in 0..overwrites {
        let mut txn = client.begin_optimistic().await.unwrap();
        txn.put(key.clone(), i.to_string().into_bytes())
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    let snapshot_ts = client.current_timestamp().await.unwrap();
    let safe_point = Timestamp::from_version(snapshot_ts.version() - 1);
    let mut txn = client.begin_optimistic().await.unwrap();
    txn.put(key.clone(), b"after".to_vec()).await.unwrap();
    txn.commit().await.unwrap();
    assert!(client.gc(safe_point).await.unwrap(), "the safe point moved");
    let before = gc_deleted_versions(cluster);
    let mut snapshot = client.snapshot(snapshot_ts, TransactionOptions::new_optimistic());
    wait_until("GC of the overwrites", Duration::from_secs(60), || {
        gc_deleted_versions(cluster) >= overwrites - 1
    })
    .unwrap_or_else(|e| panic!("{e}: deleted {before} before"));
    let last = (overwrites - 1).to_string().into_bytes();
    assert_eq!(snapshot.get(key.clone()).await.unwrap(), Some(last));
    let ts = client.current_timestamp().await.unwrap();
    let mut snapshot = client.snapshot(ts, TransactionOptions::new_optimistic());
    assert_eq!(snapshot.get(key).await.unwrap(), Some(b"after".to_vec()));
}

#[test]
fn lock_waits_deadlocks_and_gc_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster(dir.path());
    move_keys_away_from_the_detector(&cluster, b"dl-");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Arc::new(
            TransactionClient::new(vec![cluster.pd.addr()])
                .await
                .unwrap(),
        );
        opposite_lock_orders_deadlock_once(&client).await;
        // The waits went to the detector over gRPC, from the store leading the keys.
        let reported_remotely = cluster.stores.iter().any(|store| {
            std::fs::read_to_string(store.log_path())
                .is_ok_and(|log| log.contains("reporting lock waits to the deadlock detector"))
        });
        assert!(reported_remotely, "no store reported to a remote detector");
        concurrent_increments_all_commit(&client, 100).await;
        gc_follows_the_safe_point(&cluster, &client).await;
    });
}
