//! Transactional load test: optimistic transactions through the official `tikv-client` against
//! a real cluster (PD + 3 stores on loopback, release build), in three commit modes.
//!
//! ```text
//! cargo bench -p cmd --bench txn [-- --seconds 10 --concurrency 64 --value-size 1024]
//! ```
//!
//! Two workloads, each with classic two-phase commit, async commit and 1PC:
//! * `rmw`: read one key, write it back (a read-modify-write), commit;
//! * `transfer`: read two keys, write both, commit.
//!
//! Keys are drawn from 100,000 (loaded first), so conflicts are rare; a transaction that fails
//! (a conflict) is counted as aborted and its latency still recorded. Latency is per
//! transaction, begin to commit, measured on the client.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cmd::load::{bench_cluster, closed_loop, LoadFlags};
use tikv_client::{TransactionClient, TransactionOptions};

const KEYS: u64 = 100_000;

fn key(n: u64) -> Vec<u8> {
    format!("txn-bench-{:08}", n % KEYS).into_bytes()
}

/// A cheap per-call pseudo-random key index.
fn pick(task: u64, n: u64, salt: u64) -> u64 {
    let mut x = task
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(n.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(salt);
    x ^= x >> 31;
    x.wrapping_mul(0x94D0_49BB_1331_11EB) % KEYS
}

#[derive(Clone, Copy)]
enum Mode {
    TwoPc,
    AsyncCommit,
    OnePc,
}

impl Mode {
    fn options(self) -> TransactionOptions {
        let options = TransactionOptions::new_optimistic();
        match self {
            Mode::TwoPc => options,
            Mode::AsyncCommit => options.use_async_commit(),
            Mode::OnePc => options.try_one_pc(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::TwoPc => "2pc",
            Mode::AsyncCommit => "async-commit",
            Mode::OnePc => "1pc",
        }
    }
}

/// One transaction writing `keys` (after reading them); `false` when it aborted.
async fn run_txn(client: &TransactionClient, mode: Mode, keys: Vec<Vec<u8>>, value: &[u8]) -> bool {
    let Ok(mut txn) = client.begin_with_options(mode.options()).await else {
        return false;
    };
    let result: tikv_client::Result<()> = async {
        for key in &keys {
            txn.get(key.clone()).await?;
        }
        for key in keys {
            txn.put(key, value.to_vec()).await?;
        }
        txn.commit().await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = txn.rollback().await;
    }
    result.is_ok()
}

async fn load(client: &TransactionClient, value: &[u8]) {
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut txn = client.begin_optimistic().await.expect("begin");
        for &i in chunk {
            txn.put(key(i), value.to_vec()).await.expect("put");
        }
        txn.commit().await.expect("load");
    }
}

fn main() {
    let flags = LoadFlags::parse(LoadFlags {
        seconds: 10,
        concurrency: vec![64],
        value_size: 1024,
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("bin dir");
    let cluster = bench_cluster(bin_dir, dir.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = Arc::new(
            TransactionClient::new(vec![cluster.pd.addr()])
                .await
                .expect("connect"),
        );
        let value = vec![b'v'; flags.value_size];
        load(&client, &value).await;
        for &concurrency in &flags.concurrency {
            for (workload, width) in [("rmw", 1), ("transfer", 2)] {
                for mode in [Mode::TwoPc, Mode::AsyncCommit, Mode::OnePc] {
                    let aborted = Arc::new(AtomicU64::new(0));
                    let (c, v, a) = (client.clone(), value.clone(), aborted.clone());
                    let txns = closed_loop(concurrency, flags.duration(), move |task, n| {
                        let (client, value, aborted) = (c.clone(), v.clone(), a.clone());
                        async move {
                            let keys = (0..width).map(|salt| key(pick(task, n, salt))).collect();
                            if !run_txn(&client, mode, keys, &value).await {
                                aborted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                    .await;
                    println!(
                        "txn {workload:<8} {:<12} {txns}  aborted={}  ({concurrency} clients, {} B values, {} s)",
                        mode.name(),
                        aborted.load(Ordering::Relaxed),
                        flags.value_size,
                        flags.seconds
                    );
                }
            }
        }
    });
}
