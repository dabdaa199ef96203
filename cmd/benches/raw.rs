//! Raw KV load test: put and get throughput and latency through the official `tikv-client`
//! against a real cluster (PD + 3 stores on loopback, release build).
//!
//! ```text
//! cargo bench -p cmd --bench raw [-- --seconds 10 --concurrency 64 --value-size 1024]
//! ```
//!
//! `concurrency` tasks share one client and keep one request each in flight; keys are spread
//! over 100,000 per phase. Latency is per call, measured on the client.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmd::process::LocalCluster;
use hdrhistogram::Histogram;
use tikv_client::RawClient;

struct Args {
    seconds: u64,
    concurrency: usize,
    value_size: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 10,
        concurrency: 64,
        value_size: 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || it.next().and_then(|v| v.parse().ok()).expect("a number");
        match arg.as_str() {
            "--seconds" => args.seconds = number() as u64,
            "--concurrency" => args.concurrency = number(),
            "--value-size" => args.value_size = number(),
            // Flags cargo passes to every bench target.
            _ => {}
        }
    }
    args
}

const KEYS: u64 = 100_000;

fn key(i: u64) -> Vec<u8> {
    format!("bench-{:08}", i % KEYS).into_bytes()
}

#[derive(Clone, Copy)]
enum Op {
    Put,
    Get,
}

async fn run(client: Arc<RawClient>, op: Op, args: &Args) -> (u64, Histogram<u64>) {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let value = vec![b'v'; args.value_size];
    let tasks: Vec<_> = (0..args.concurrency as u64)
        .map(|task| {
            let client = client.clone();
            let value = value.clone();
            let stride = args.concurrency as u64;
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                let mut i = task;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    match op {
                        Op::Put => client.put(key(i), value.clone()).await.expect("put"),
                        Op::Get => {
                            client.get(key(i)).await.expect("get");
                        }
                    }
                    histogram.saturating_record(started.elapsed().as_micros() as u64);
                    i += stride;
                }
                histogram
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new(3).expect("histogram");
    for task in tasks {
        total
            .add(task.await.expect("task"))
            .expect("same precision");
    }
    (total.len(), total)
}

fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().expect("temp dir");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("bin dir");
    let cluster = LocalCluster::start(bin_dir, dir.path(), 3, None, &[])
        .unwrap_or_else(|e| panic!("start cluster: {e}"));
    cluster
        .wait_for_replicas(3, Duration::from_secs(60))
        .expect("3 replicas");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = Arc::new(RawClient::new(vec![cluster.pd.addr()]).await.expect("connect"));
        for (name, op) in [("put", Op::Put), ("get", Op::Get)] {
            let (count, h) = run(client.clone(), op, &args).await;
            println!(
                "raw {name}: {:>8.0} ops/s  p50={}us p99={}us p999={}us max={}us  ({} in flight, {} B values, {} s)",
                count as f64 / args.seconds as f64,
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
                args.concurrency,
                args.value_size,
                args.seconds,
            );
        }
    });
}
