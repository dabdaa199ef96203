//! Closed-loop load for the cluster benchmarks (`cmd/benches`): a number of tasks, each keeping
//! one request in flight, for a fixed time, with per-call latency measured on the client.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::process::LocalCluster;

/// The flags the load benchmarks share; anything else on the command line (cargo passes
/// `--bench` to every bench target) is ignored.
#[derive(Clone, Debug)]
pub struct LoadFlags {
    /// `--seconds N`: how long each run lasts.
    pub seconds: u64,
    /// `--concurrency N[,N...]`: requests in flight; one run per value.
    pub concurrency: Vec<usize>,
    /// `--value-size N`: bytes per written value, where the benchmark writes.
    pub value_size: usize,
}

impl LoadFlags {
    /// Reads the flags from the process arguments over `defaults`.
    ///
    /// # Panics
    ///
    /// On a flag without a number after it: a benchmark is run by hand, so it stops with a
    /// message rather than measuring something else.
    pub fn parse(defaults: LoadFlags) -> LoadFlags {
        Self::parse_from(defaults, std::env::args().skip(1))
    }

    fn parse_from(mut flags: LoadFlags, args: impl IntoIterator<Item = String>) -> LoadFlags {
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .unwrap_or_else(|| panic!("{name} needs a value"))
            };
            let number = |name: &str, v: &str| -> usize {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}"))
            };
            match arg.as_str() {
                "--seconds" => flags.seconds = number(&arg, &value(&arg)) as u64,
                "--value-size" => flags.value_size = number(&arg, &value(&arg)),
                "--concurrency" => {
                    flags.concurrency = value(&arg).split(',').map(|v| number(&arg, v)).collect()
                }
                _ => {}
            }
        }
        flags
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

/// Starts the cluster a load benchmark runs against, PD and three stores under `dir` from the
/// binaries in `bin_dir`, and waits until every region has its three replicas.
///
/// # Panics
///
/// If the cluster does not come up: a benchmark is run by hand and stops with the reason.
pub fn bench_cluster(bin_dir: &std::path::Path, dir: &std::path::Path) -> LocalCluster {
    let cluster = LocalCluster::start(bin_dir, dir, 3, None, &[])
        .unwrap_or_else(|e| panic!("start cluster: {e}"));
    cluster
        .wait_for_replicas(3, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    cluster
}

/// Where a benchmark keeps its clusters: `COMPARE_DIR` if set (kept after the run, with the
/// logs), else a temporary directory, removed when the returned guard drops.
pub fn bench_dir() -> (Option<tempfile::TempDir>, std::path::PathBuf) {
    match std::env::var_os("COMPARE_DIR") {
        Some(dir) => (None, dir.into()),
        None => {
            let temp = tempfile::tempdir().expect("temp dir");
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        }
    }
}

/// Calls and their latencies over one run.
pub struct Latencies {
    pub histogram: Histogram<u64>,
    pub duration: Duration,
}

/// Latencies are recorded in microseconds up to a minute; slower calls count as a minute.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

impl Latencies {
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn per_second(&self) -> f64 {
        self.count() as f64 / self.duration.as_secs_f64()
    }
}

impl fmt::Display for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.histogram;
        write!(
            f,
            "{:>10.0}/s  p50={}us p99={}us p999={}us max={}us",
            self.per_second(),
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
        )
    }
}

/// Runs `concurrency` tasks for `duration`; task `t` awaits `call(t, n)` for its `n`-th call,
/// one call at a time. Must run inside a tokio runtime.
///
/// # Panics
///
/// If a task panics (a failed call in a benchmark).
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Latencies
where
    F: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|task| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = histogram();
                let mut n = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    call(task, n).await;
                    latencies.saturating_record(sent.elapsed().as_micros() as u64);
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut total = histogram();
    for task in tasks {
        let latencies = task.await.unwrap_or_else(|e| panic!("load task: {e}"));
        total.add(latencies).expect("histograms of the same bounds");
    }
    Latencies {
        histogram: total,
        duration: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> LoadFlags {
        LoadFlags {
            seconds: 5,
            concurrency: vec![1],
            value_size: 8,
        }
    }

    #[test]
    fn flags_override_defaults_and_cargo_flags_are_ignored() {
        let args = ["--bench", "--seconds", "3", "--concurrency", "1,16,64"];
        let flags = LoadFlags::parse_from(defaults(), args.map(String::from));
        assert_eq!(flags.seconds, 3);
        assert_eq!(flags.concurrency, vec![1, 16, 64]);
        assert_eq!(flags.value_size, 8);
    }

    #[test]
    fn latencies_above_two_milliseconds_are_kept() {
        let mut h = histogram();
        h.saturating_record(5_000);
        h.saturating_record(120_000_000);
        assert!(h.value_at_quantile(0.0) >= 4_990);
        assert!(h.max() >= 59_000_000);
    }

    #[tokio::test]
    async fn closed_loop_counts_every_call() {
        let latencies = closed_loop(4, Duration::from_millis(50), |_, _| async {
            tokio::time::sleep(Duration::from_millis(1)).await;
        })
        .await;
        assert!(latencies.count() >= 4);
        assert!(latencies.histogram.min() >= 1_000, "{}", latencies);
    }
}
