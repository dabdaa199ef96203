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

/// The number after `name` on the command line (a benchmark's own flag), or `default`.
///
/// # Panics
///
/// If what follows `name` is not a number.
pub fn number_flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}"))
        })
}

/// Starts the cluster a load benchmark runs against, PD and three stores under `dir` from the
/// binaries in `bin_dir`, and waits until every region has its three replicas.
///
/// # Panics
///
/// If the cluster does not come up: a benchmark is run by hand and stops with the reason.
///
/// `BENCH_TIKV_CONFIG=file` starts the stores with that config file, to compare settings.
pub fn bench_cluster(bin_dir: &std::path::Path, dir: &std::path::Path) -> LocalCluster {
    let config = std::env::var("BENCH_TIKV_CONFIG").ok();
    let args: Vec<&str> = config
        .iter()
        .flat_map(|c| ["--config", c.as_str()])
        .collect();
    let pd_config = std::env::var_os("BENCH_PD_CONFIG").map(std::path::PathBuf::from);
    let cluster = LocalCluster::start(bin_dir, dir, 3, pd_config.as_deref(), &args)
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
    /// The calls sent in each second of the run, in order: to tell a tail spread over the run
    /// from one that comes in bursts (a flush, a compaction, an election).
    pub timeline: Vec<Second>,
}

/// The calls sent in one second of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Second {
    pub calls: u64,
    /// Calls that took [`SLOW`] or longer.
    pub slow: u64,
    pub max_micros: u64,
}

/// A call at least this slow counts as slow in its [`Second`] (the put p99 bound).
pub const SLOW: Duration = Duration::from_millis(10);

impl Second {
    fn record(&mut self, micros: u64) {
        self.calls += 1;
        self.slow += u64::from(micros >= SLOW.as_micros() as u64);
        self.max_micros = self.max_micros.max(micros);
    }

    fn add(&mut self, other: &Second) {
        self.calls += other.calls;
        self.slow += other.slow;
        self.max_micros = self.max_micros.max(other.max_micros);
    }
}

/// Adds `from`'s seconds into `into`'s, second by second.
fn add_timeline(into: &mut Vec<Second>, from: &[Second]) {
    if into.len() < from.len() {
        into.resize(from.len(), Second::default());
    }
    for (total, second) in into.iter_mut().zip(from) {
        total.add(second);
    }
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

    /// One line per second of the run: calls sent, how many took [`SLOW`] or longer, the
    /// slowest.
    pub fn timeline_lines(&self) -> Vec<String> {
        self.timeline
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{i:>4} s {:>8} calls {:>6} >= {} ms  max {:.1} ms",
                    s.calls,
                    s.slow,
                    SLOW.as_millis(),
                    s.max_micros as f64 / 1000.0
                )
            })
            .collect()
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
    let deadline = Instant::now() + duration;
    let mut n = 0;
    run_tasks(concurrency, move |task| {
        let next = (Instant::now() < deadline).then(|| call(task, n));
        n += 1;
        next
    })
    .await
}

/// Makes the calls `call(0)` to `call(calls - 1)`, at most `concurrency` at a time. Must run
/// inside a tokio runtime.
///
/// # Panics
///
/// If a task panics (a failed call in a benchmark).
pub async fn closed_loop_over<F, Fut>(concurrency: usize, calls: u64, call: F) -> Latencies
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    run_tasks(concurrency, move |_| {
        let n = taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (n < calls).then(|| call(n))
    })
    .await
}

/// Runs `concurrency` tasks, each with its own clone of `next_call`: task `t` awaits
/// `next_call(t)`'s calls one at a time until it returns `None`, recording each call's latency.
async fn run_tasks<N, Fut>(concurrency: usize, next_call: N) -> Latencies
where
    N: FnMut(u64) -> Option<Fut> + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|task| {
            let mut next_call = next_call.clone();
            tokio::spawn(async move {
                let mut latencies = histogram();
                let mut timeline: Vec<Second> = Vec::new();
                loop {
                    let sent = Instant::now();
                    let Some(call) = next_call(task) else { break };
                    call.await;
                    let micros = sent.elapsed().as_micros() as u64;
                    latencies.saturating_record(micros);
                    let second = sent.duration_since(started).as_secs() as usize;
                    if timeline.len() <= second {
                        timeline.resize(second + 1, Second::default());
                    }
                    timeline[second].record(micros);
                }
                (latencies, timeline)
            })
        })
        .collect();
    let mut total = histogram();
    let mut timeline = Vec::new();
    for task in tasks {
        let (latencies, seconds) = task.await.unwrap_or_else(|e| panic!("load task: {e}"));
        total.add(latencies).expect("histograms of the same bounds");
        add_timeline(&mut timeline, &seconds);
    }
    Latencies {
        histogram: total,
        duration: started.elapsed(),
        timeline,
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
    async fn closed_loop_over_makes_each_call_once() {
        let made = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let m = made.clone();
        let latencies = closed_loop_over(3, 10, move |n| {
            let made = m.clone();
            async move { made.lock().unwrap().push(n) }
        })
        .await;
        assert_eq!(latencies.count(), 10);
        let mut made = made.lock().unwrap().clone();
        made.sort_unstable();
        assert_eq!(made, (0..10).collect::<Vec<_>>());
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

    #[tokio::test]
    async fn the_timeline_counts_each_call_in_the_second_it_was_sent() {
        let latencies = closed_loop_over(2, 6, |n| async move {
            if n == 0 {
                tokio::time::sleep(SLOW).await;
            }
        })
        .await;
        let calls: u64 = latencies.timeline.iter().map(|s| s.calls).sum();
        assert_eq!(calls, 6);
        let slow: u64 = latencies.timeline.iter().map(|s| s.slow).sum();
        assert_eq!(slow, 1, "{:?}", latencies.timeline);
        let max = latencies.timeline.iter().map(|s| s.max_micros).max();
        assert!(
            max >= Some(SLOW.as_micros() as u64),
            "{:?}",
            latencies.timeline
        );
    }
}
