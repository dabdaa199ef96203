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
use std::time::Duration;

use cmd::load::{closed_loop, LoadFlags};
use cmd::process::PdProcess;
use tikv_client::TransactionClient;

fn main() {
    let flags = LoadFlags::parse(LoadFlags {
        seconds: 5,
        concurrency: vec![1, 16, 256],
        value_size: 0,
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let pd = PdProcess::start(
        Path::new(env!("CARGO_BIN_EXE_pd-server")),
        &dir.path().join("pd"),
    )
    .unwrap_or_else(|e| panic!("start pd-server: {e}"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = Arc::new(
            TransactionClient::new(vec![pd.addr()])
                .await
                .expect("connect"),
        );
        let timestamps = |client: Arc<TransactionClient>| {
            move |_, _| {
                let client = client.clone();
                async move {
                    client.current_timestamp().await.expect("timestamp");
                }
            }
        };
        // Warm up the stream and the connection.
        closed_loop(4, Duration::from_millis(500), timestamps(client.clone())).await;
        for &concurrency in &flags.concurrency {
            let latencies =
                closed_loop(concurrency, flags.duration(), timestamps(client.clone())).await;
            println!("tso concurrency={concurrency:<4} {latencies}");
        }
    });
}
