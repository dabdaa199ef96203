//! TSO load test: timestamps per second and latency through the official `tikv-client`
//! against a real `pd-server` process.
//!
//! ```text
//! cargo bench -p cmd --bench tso [-- --seconds 5 --concurrency 1,16,256]
//! ```
//!
//! Each of `concurrency` tasks calls `current_timestamp()` in a loop on one shared client, so
//! the client batches concurrent calls into one TsoRequest (up to 64), as applications do.
//! Latency is per call, measured on the client.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmd::process::PdProcess;
use hdrhistogram::Histogram;
use tikv_client::TransactionClient;

struct Args {
    seconds: u64,
    concurrency: Vec<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 5,
        concurrency: vec![1, 16, 256],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                args.seconds = it.next().and_then(|v| v.parse().ok()).expect("--seconds N")
            }
            "--concurrency" => {
                args.concurrency = it
                    .next()
                    .expect("--concurrency N[,N...]")
                    .split(',')
                    .map(|v| v.parse().expect("a number"))
                    .collect();
            }
            // Flags cargo passes to every bench target.
            _ => {}
        }
    }
    args
}

async fn run(
    client: Arc<TransactionClient>,
    concurrency: usize,
    duration: Duration,
) -> (u64, Histogram<u64>) {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                while Instant::now() < deadline {
                    let started = Instant::now();
                    client.current_timestamp().await.expect("timestamp");
                    histogram.saturating_record(started.elapsed().as_micros() as u64);
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
    let pd = PdProcess::start(
        Path::new(env!("CARGO_BIN_EXE_pd-server")),
        &dir.path().join("pd"),
    )
    .unwrap_or_else(|e| panic!("start pd-server: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = Arc::new(TransactionClient::new(vec![pd.addr()]).await.expect("connect"));
        // Warm up the stream and the connection.
        run(client.clone(), 4, Duration::from_millis(500)).await;
        let duration = Duration::from_secs(args.seconds);
        for &concurrency in &args.concurrency {
            let (count, h) = run(client.clone(), concurrency, duration).await;
            println!(
                "tso concurrency={concurrency:<4} {:>10.0} ts/s  p50={}us p99={}us p999={}us max={}us",
                count as f64 / duration.as_secs_f64(),
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            );
        }
    });
}
