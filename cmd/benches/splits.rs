//! How fast a bulk load splits: a fresh cluster (PD + 3 stores, release build) with the
//! official Rust client's small-region settings (a region of more than 10 keys splits into
//! regions of 7, at most 100 split keys per check, a check every second) takes `--keys`
//! transactional keys in ascending order, 100-key transactions with 16 in flight (keys are
//! commit records, as TiKV counts them: raw data splits by size only); then the benchmark
//! follows PD's region count until it has not changed for five seconds and prints how long the
//! regions took to settle after the load ended.
//!
//! ```text
//! cargo bench -p cmd --bench splits [-- --keys 20000]
//! COMPARE_DIR=dir      keep the cluster's data directories and logs in `dir`
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmd::load::{bench_dir, closed_loop_over, number_flag};
use cmd::process::{pd_regions, LocalCluster};
use tikv_client::TransactionClient;

/// The `[coprocessor]` and split-check settings of client-rust's `config/tikv.toml`.
const SMALL_REGIONS: &str = "[coprocessor]\nregion-max-keys = 10\nregion-split-keys = 7\n\
    batch-split-limit = 100\n[raftstore]\nregion-split-check-diff = \"1B\"\n\
    split-region-check-tick-interval = \"1s\"\n";

const BATCH: u64 = 100;

fn region_count(pd: &str) -> u64 {
    pd_regions(pd)
        .and_then(|r| r["count"].as_u64())
        .unwrap_or(0)
}

fn main() {
    let keys = number_flag("--keys", 20_000);
    let (_temp, dir) = bench_dir();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("bin dir");
    let cluster = LocalCluster::start_configured(
        bin_dir,
        &dir,
        3,
        None,
        SMALL_REGIONS,
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("start cluster: {e}"));
    let pd = cluster.pd.addr();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let load = runtime.block_on(async {
        let client = Arc::new(
            TransactionClient::new(vec![pd.clone()])
                .await
                .expect("connect"),
        );
        closed_loop_over(16, keys.div_ceil(BATCH), move |batch| {
            let client = client.clone();
            async move {
                let mut txn = client.begin_optimistic().await.expect("begin");
                for i in batch * BATCH..((batch + 1) * BATCH).min(keys) {
                    let key = format!("bulk-{i:08}").into_bytes();
                    txn.put(key, vec![b'v'; 100]).await.expect("put");
                }
                txn.commit().await.expect("commit");
            }
        })
        .await
    });
    let loaded = Instant::now();
    let at_load_end = region_count(&pd);
    println!(
        "loaded {keys} keys in {:.1} s ({BATCH}-key batches: {load}); {at_load_end} regions at the end of the load",
        load.duration.as_secs_f64(),
    );
    let (mut count, mut changed) = (at_load_end, Instant::now());
    while changed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(250));
        let now = region_count(&pd);
        if now != count {
            (count, changed) = (now, Instant::now());
            eprintln!(
                "  {count} regions ({:.1} s)",
                loaded.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{count} regions settled {:.1} s after the load ended ({:.0} new regions a second)",
        (changed - loaded).as_secs_f64(),
        count.saturating_sub(at_load_end) as f64 / (changed - loaded).as_secs_f64().max(0.001)
    );
}
