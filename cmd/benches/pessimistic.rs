//! Pessimistic transactions on one hot key, and reads of a key with many versions before and
//! after GC, through the official `tikv-client` against a real cluster (PD + 3 stores on
//! loopback, release build).
//!
//! ```text
//! cargo bench -p cmd --bench pessimistic [-- --seconds 10 --concurrency 64 --overwrites 100000]
//! ```
//!
//! * `hot-counter`: `concurrency` clients increment one counter in pessimistic transactions
//!   (`get_for_update`, `put`, `commit`), each retrying its transaction until it commits.
//!   Run once on a cluster that waits for locks (TiKV's default `wait-for-lock-timeout = 1s`)
//!   and once on a cluster that barely waits (`1ms`: the request answers the lock and the client
//!   resolves, backs off and retries). Latency is per increment, first attempt to commit.
//! * `wake-up`: how soon a parked lock request gets the lock after the holder commits.
//! * `versions`: one key overwritten `overwrites` times, then 1,000 reads of it at a fresh
//!   timestamp, before and after the GC workers collected it at a safe point past the writes.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmd::load::{closed_loop, LoadFlags};
use cmd::process::{wait_until, LocalCluster};
use hdrhistogram::Histogram;
use tikv_client::{Transaction, TransactionClient, TransactionOptions};

const COUNTER: &[u8] = b"bench-hot-counter";
const VERSIONED: &[u8] = b"bench-versioned";
const READS: usize = 1000;
const WAKE_KEY: &[u8] = b"bench-wake-up";
const WAKE_UPS: usize = 50;

fn start_cluster(dir: &Path, tikv_config: &str) -> LocalCluster {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("bin dir");
    LocalCluster::start_configured(bin_dir, dir, 3, None, tikv_config, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("start cluster: {e}"))
}

async fn increment(txn: &mut Transaction) -> tikv_client::Result<()> {
    let value = txn.get_for_update(COUNTER.to_vec()).await?;
    let n: u64 = value.map_or(0, |v| String::from_utf8_lossy(&v).parse().unwrap_or(0));
    txn.put(COUNTER.to_vec(), (n + 1).to_string().into_bytes())
        .await?;
    txn.commit().await?;
    Ok(())
}

/// One increment, retried until it commits; returns the failed attempts.
async fn increment_until_committed(client: &TransactionClient) -> u64 {
    let mut failed = 0;
    loop {
        let mut txn = client.begin_pessimistic().await.expect("begin");
        match increment(&mut txn).await {
            Ok(()) => return failed,
            Err(_) => {
                let _ = txn.rollback().await;
                failed += 1;
            }
        }
    }
}

async fn read_counter(client: &TransactionClient) -> u64 {
    let ts = client.current_timestamp().await.expect("ts");
    let mut snapshot = client.snapshot(ts, TransactionOptions::new_optimistic());
    let value = snapshot.get(COUNTER.to_vec()).await.expect("read");
    value.map_or(0, |v| String::from_utf8_lossy(&v).parse().unwrap_or(0))
}

fn hot_counter(flags: &LoadFlags, name: &str, tikv_config: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = start_cluster(dir.path(), tikv_config);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = Arc::new(
            TransactionClient::new(vec![cluster.pd.addr()])
                .await
                .expect("connect"),
        );
        let wake_ups = wake_up_latencies(&client).await;
        println!(
            "pessimistic wake-up     {name:<11} p50={}us p99={}us max={}us  ({WAKE_UPS} waits, from the holder's commit answer to the waiter's lock answer)",
            wake_ups.value_at_quantile(0.5),
            wake_ups.value_at_quantile(0.99),
            wake_ups.max()
        );
        for &concurrency in &flags.concurrency {
            let before = read_counter(&client).await;
            let retries = Arc::new(AtomicU64::new(0));
            let (c, r) = (client.clone(), retries.clone());
            let increments = closed_loop(concurrency, flags.duration(), move |_, _| {
                let (client, retries) = (c.clone(), r.clone());
                async move {
                    let failed = increment_until_committed(&client).await;
                    retries.fetch_add(failed, Ordering::Relaxed);
                }
            })
            .await;
            let counted = read_counter(&client).await - before;
            assert_eq!(counted, increments.count(), "every increment counted once");
            println!(
                "pessimistic hot-counter {name:<11} {increments}  retried={}  ({concurrency} clients, {} s)",
                retries.load(Ordering::Relaxed),
                flags.seconds
            );
        }
    });
}

/// How long after a lock's release its waiter gets the lock: a transaction locks `WAKE_KEY`,
/// another asks for it and is parked (given 100 ms to get there), the first commits, and the
/// time from the commit's answer to the waiter's answer is recorded.
async fn wake_up_latencies(client: &Arc<TransactionClient>) -> Histogram<u64> {
    let mut latencies = Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for _ in 0..WAKE_UPS {
        let mut holder = client.begin_pessimistic().await.expect("begin");
        holder
            .get_for_update(WAKE_KEY.to_vec())
            .await
            .expect("lock");
        let waiter_client = client.clone();
        let waiter = tokio::spawn(async move {
            let mut waiter = waiter_client.begin_pessimistic().await.expect("begin");
            waiter
                .get_for_update(WAKE_KEY.to_vec())
                .await
                .expect("lock after the wait");
            let got_it = Instant::now();
            waiter.rollback().await.expect("rollback");
            got_it
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        holder
            .put(WAKE_KEY.to_vec(), b"v".to_vec())
            .await
            .expect("put");
        holder.commit().await.expect("commit");
        let released = Instant::now();
        let got_it = waiter.await.expect("waiter");
        latencies.saturating_record(got_it.saturating_duration_since(released).as_micros() as u64);
    }
    latencies
}

/// Latencies of `READS` reads of `VERSIONED` at fresh timestamps.
async fn read_latencies(client: &TransactionClient) -> Histogram<u64> {
    let mut latencies = Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for _ in 0..READS {
        let started = Instant::now();
        let ts = client.current_timestamp().await.expect("ts");
        let mut snapshot = client.snapshot(ts, TransactionOptions::new_optimistic());
        snapshot.get(VERSIONED.to_vec()).await.expect("read");
        latencies.saturating_record(started.elapsed().as_micros() as u64);
    }
    latencies
}

fn print_reads(when: &str, overwrites: u64, h: &Histogram<u64>) {
    println!(
        "pessimistic versions    read {when:<10} p50={}us p99={}us max={}us  ({overwrites} overwrites, {READS} reads)",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
}

fn versions(overwrites: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = start_cluster(dir.path(), "");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = TransactionClient::new(vec![cluster.pd.addr()])
            .await
            .expect("connect");
        let started = Instant::now();
        for i in 0..overwrites {
            let mut txn = client
                .begin_with_options(TransactionOptions::new_optimistic().try_one_pc())
                .await
                .expect("begin");
            txn.put(VERSIONED.to_vec(), i.to_string().into_bytes())
                .await
                .expect("put");
            txn.commit().await.expect("commit");
            if (i + 1) % 10_000 == 0 {
                eprintln!(
                    "{} overwrites in {:.0} s",
                    i + 1,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        print_reads("before GC", overwrites, &read_latencies(&client).await);
        let safe_point = client.current_timestamp().await.expect("ts");
        assert!(client.gc(safe_point).await.expect("gc"), "safe point moved");
        let gc_started = Instant::now();
        wait_until("the GC workers", Duration::from_secs(600), || {
            cluster.metric_total("tikv_gcworker_gc_keys", "tag=\"deleted\"")
                >= (overwrites - 1) as f64
        })
        .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "GC collected the key within {:.1} s of the safe point moving (polled every 10 s)",
            gc_started.elapsed().as_secs_f64()
        );
        print_reads("after GC", overwrites, &read_latencies(&client).await);
    });
}

fn main() {
    let flags = LoadFlags::parse(LoadFlags {
        seconds: 10,
        concurrency: vec![64],
        value_size: 0,
    });
    let overwrites = std::env::args()
        .skip_while(|arg| arg != "--overwrites")
        .nth(1)
        .map_or(100_000, |v| v.parse().expect("--overwrites takes a number"));
    hot_counter(&flags, "waiting", "");
    hot_counter(
        &flags,
        "no-waiting",
        "[pessimistic-txn]\nwait-for-lock-timeout = \"1ms\"\n",
    );
    versions(overwrites);
}
