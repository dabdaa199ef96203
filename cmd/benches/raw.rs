//! Raw KV load test: put and get throughput and latency through the official `tikv-client`
//! against a real cluster (PD + 3 stores on loopback, release build).
//!
//! ```text
//! cargo bench -p cmd --bench raw [-- --seconds 10 --concurrency 64 --value-size 1024]
//! ```
//!
//! `concurrency` tasks share one client and keep one request each in flight; keys are spread
//! over 100,000 per phase (the get phase reads what the put phase wrote). Latency is per call,
//! measured on the client.

use std::path::Path;
use std::sync::Arc;

use cmd::load::{bench_cluster, closed_loop, LoadFlags};
use tikv_client::RawClient;

const KEYS: u64 = 100_000;

fn key(task: u64, n: u64, concurrency: u64) -> Vec<u8> {
    format!("bench-{:08}", (n * concurrency + task) % KEYS).into_bytes()
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
            RawClient::new(vec![cluster.pd.addr()])
                .await
                .expect("connect"),
        );
        let value = vec![b'v'; flags.value_size];
        for &concurrency in &flags.concurrency {
            let width = concurrency as u64;
            let (c, v) = (client.clone(), value.clone());
            let puts = closed_loop(concurrency, flags.duration(), move |task, n| {
                let (client, value) = (c.clone(), v.clone());
                async move {
                    let key = key(task, n, width);
                    client.put(key, value).await.expect("put");
                }
            })
            .await;
            let c = client.clone();
            let gets = closed_loop(concurrency, flags.duration(), move |task, n| {
                let client = c.clone();
                async move {
                    client.get(key(task, n, width)).await.expect("get");
                }
            })
            .await;
            let shape = format!(
                "({concurrency} in flight, {} B values, {} s)",
                flags.value_size, flags.seconds
            );
            println!("raw put {puts}  {shape}");
            println!("raw get {gets}  {shape}");
        }
    });
}
