//! Our cluster against etcd under one closed-loop load generator, on this machine, in one run:
//! put, linearizable get and a 16-key batch put, each at every `--concurrency`, with client
//! latencies, server CPU time per request (from `/proc`), how busy the whole machine was, and the
//! ratio of the two systems.
//!
//! ```text
//! cargo bench -p cmd --bench compare [-- --seconds 10 --concurrency 1,64 --value-size 1024]
//!     [--rounds 2]     runs of each system, alternated: ours, etcd, etcd, ours, ...
//!     [--ours-only]    our cluster alone (no etcd, no db_bench)
//!     [--timeline]     after each run, its calls second by second (count, slow ones, max)
//! COMPARE_DIR=dir      keep the data directories and logs in `dir`
//! BENCH_TIKV_CONFIG=f  start our stores with the config file `f`
//! ```
//!
//! Ours is PD and three stores on loopback (release build), through the official `tikv-client`;
//! etcd is three members of the `etcd` on the `PATH` (Debian `etcd-server`), through its gRPC
//! KV service (puts, ranges that are linearizable by default, and a transaction of 16 puts as
//! the batch). A `db_bench --sync=1` line (Debian `rocksdb-tools`) gives the bound of one synced
//! RocksDB at 64 writer threads. Whatever is not installed is skipped. Keys are random over
//! 100,000; the get phase reads what the put phase wrote.
//!
//! One machine's speed drifts from minute to minute (a VM's most of all), so each system runs
//! `--rounds` times on a fresh cluster, in the order ours, etcd, etcd, ours, ...: a drift then
//! weighs on both alike. The ratio is of the means, with each round's own ratio beside it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmd::baseline::{
    context_switches, cpu_seconds, db_bench_synced_writes, installed, EtcdCluster, MachineTicks,
};
use cmd::load::{bench_cluster, bench_dir, closed_loop, number_flag, Latencies, LoadFlags};
use cmd::process::http_get;
use tikv_client::RawClient;
use tonic::transport::Channel;

mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

use etcdserverpb::kv_client::KvClient;
use etcdserverpb::{request_op, PutRequest, RangeRequest, RequestOp, TxnRequest};

const KEYS: u64 = 100_000;
const BATCH: usize = 16;

/// A key spread at random (a fixed mix of the task and call numbers) over [`KEYS`].
fn key(task: u64, n: u64) -> Vec<u8> {
    key_at(random_index(task, n))
}

/// A batch of [`BATCH`] distinct keys from a random start (etcd refuses a transaction that
/// names a key twice).
fn batch_keys(task: u64, n: u64) -> impl Iterator<Item = Vec<u8>> {
    let start = random_index(task, n);
    (0..BATCH as u64).map(move |i| key_at((start + i) % KEYS))
}

fn random_index(task: u64, n: u64) -> u64 {
    let mut x = (task << 40) ^ n ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x % KEYS
}

fn key_at(index: u64) -> Vec<u8> {
    format!("bench-{index:08}").into_bytes()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Put,
    Get,
    BatchPut,
}

impl Load {
    const ALL: [Load; 3] = [Load::Put, Load::Get, Load::BatchPut];

    fn keys_per_call(self) -> u64 {
        match self {
            Load::BatchPut => BATCH as u64,
            _ => 1,
        }
    }
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Load::Put => "put",
            Load::Get => "get",
            Load::BatchPut => "batch put (16 keys)",
        })
    }
}

/// A system under test, as the load generator calls it.
#[derive(Clone)]
enum Target {
    Ours(Arc<RawClient>),
    /// One channel per member; task `t` talks to member `t % members`.
    Etcd(Vec<KvClient<Channel>>),
}

impl Target {
    async fn call(&self, load: Load, task: u64, n: u64, value: &[u8]) {
        match (self, load) {
            (Target::Ours(client), Load::Put) => {
                client.put(key(task, n), value.to_vec()).await.expect("put")
            }
            (Target::Ours(client), Load::Get) => {
                client.get(key(task, n)).await.expect("get");
            }
            (Target::Ours(client), Load::BatchPut) => {
                let pairs: Vec<_> = batch_keys(task, n)
                    .map(|key| (key, value.to_vec()))
                    .collect();
                client.batch_put(pairs).await.expect("batch put")
            }
            (Target::Etcd(members), load) => {
                let mut client = members[task as usize % members.len()].clone();
                match load {
                    Load::Put => {
                        client
                            .put(PutRequest {
                                key: key(task, n),
                                value: value.to_vec(),
                                ..Default::default()
                            })
                            .await
                            .expect("etcd put");
                    }
                    Load::Get => {
                        client
                            .range(RangeRequest {
                                key: key(task, n),
                                ..Default::default()
                            })
                            .await
                            .expect("etcd range");
                    }
                    Load::BatchPut => {
                        let success = batch_keys(task, n)
                            .map(|key| RequestOp {
                                request: Some(request_op::Request::RequestPut(PutRequest {
                                    key,
                                    value: value.to_vec(),
                                    ..Default::default()
                                })),
                            })
                            .collect();
                        client
                            .txn(TxnRequest {
                                success,
                                failure: Vec::new(),
                            })
                            .await
                            .expect("etcd txn");
                    }
                }
            }
        }
    }
}

/// One load at one concurrency against one system.
struct Run {
    latencies: Latencies,
    cpu_seconds: f64,
    /// CPU of this process (the load generator and the client it drives) over the run.
    client_cpu_seconds: f64,
    context_switches: u64,
    keys_per_call: u64,
    /// The share of the whole machine's CPU that was busy over the run (all processes).
    machine_busy: Option<f64>,
}

impl Run {
    fn keys_per_second(&self) -> f64 {
        self.latencies.per_second() * self.keys_per_call as f64
    }

    /// `total` over the calls of the run.
    fn per_call(&self, total: f64) -> f64 {
        total / self.latencies.count().max(1) as f64
    }

    fn cpu_us_per_call(&self) -> f64 {
        self.per_call(self.cpu_seconds * 1e6)
    }

    fn client_cpu_us_per_call(&self) -> f64 {
        self.per_call(self.client_cpu_seconds * 1e6)
    }

    fn switches_per_call(&self) -> f64 {
        self.per_call(self.context_switches as f64)
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.latencies.histogram;
        let ms = |v: u64| v as f64 / 1000.0;
        write!(
            f,
            "{:>8.0} keys/s  p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.1} ms  {:.0} µs CPU/call  {:.1} cs/call  {:.0} µs client CPU/call",
            self.keys_per_second(),
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
            self.cpu_us_per_call(),
            self.switches_per_call(),
            self.client_cpu_us_per_call(),
        )?;
        match self.machine_busy {
            Some(busy) => write!(f, "  machine {:.0}% busy", busy * 100.0),
            None => Ok(()),
        }
    }
}

/// Runs every load at every concurrency against `target`, whose server processes are `pids`.
async fn run_all(
    target: &Target,
    pids: &[u32],
    flags: &LoadFlags,
    after_run: impl Fn(&str),
) -> Vec<(Load, usize, Run)> {
    let value: Arc<[u8]> = vec![b'v'; flags.value_size].into();
    let timeline = std::env::args().any(|arg| arg == "--timeline");
    let mut runs = Vec::new();
    for &concurrency in &flags.concurrency {
        for load in Load::ALL {
            let (t, v) = (target.clone(), value.clone());
            let cpu_before = cpu_seconds(pids);
            let client_cpu_before = cpu_seconds(&[std::process::id()]);
            let switches_before = context_switches(pids);
            let machine_before = MachineTicks::now();
            let latencies = closed_loop(concurrency, flags.duration(), move |task, n| {
                let (target, value) = (t.clone(), v.clone());
                async move { target.call(load, task, n, &value).await }
            })
            .await;
            let run = Run {
                latencies,
                cpu_seconds: cpu_seconds(pids) - cpu_before,
                client_cpu_seconds: cpu_seconds(&[std::process::id()]) - client_cpu_before,
                context_switches: context_switches(pids) - switches_before,
                keys_per_call: load.keys_per_call(),
                machine_busy: MachineTicks::now().busy_since(&machine_before),
            };
            eprintln!("  {load}, {concurrency} in flight: {run}");
            if timeline {
                for line in run.latencies.timeline_lines() {
                    eprintln!("    {line}");
                }
            }
            after_run(&format!("{load:?}-{concurrency}"));
            runs.push((load, concurrency, run));
        }
    }
    runs
}

/// Every load's run in one round of one system.
type Round = Vec<(Load, usize, Run)>;

async fn run_ours(bin_dir: &Path, dir: &Path, flags: &LoadFlags) -> Round {
    let cluster = bench_cluster(bin_dir, dir);
    let pids = cluster.pids();
    let client = RawClient::new(vec![cluster.pd.addr()])
        .await
        .expect("connect to our cluster");
    eprintln!("ours (PD + 3 stores):");
    // With `COMPARE_DIR`, each store's /metrics after each run goes there too.
    let keep_metrics = |run: &str| {
        if std::env::var_os("COMPARE_DIR").is_none() {
            return;
        }
        for (i, store) in cluster.stores.iter().enumerate() {
            if let Ok((_, body)) = http_get(&store.status_addr(), "/metrics") {
                let _ = std::fs::write(dir.join(format!("metrics-{run}-store{}.txt", i + 1)), body);
            }
        }
    };
    run_all(&Target::Ours(Arc::new(client)), &pids, flags, keep_metrics).await
}

async fn run_etcd(dir: &Path, flags: &LoadFlags) -> Round {
    std::fs::create_dir_all(dir).expect("create the etcd directory");
    let etcd = EtcdCluster::start(dir, 3).unwrap_or_else(|e| panic!("{e}"));
    let mut members = Vec::new();
    for url in etcd.client_urls() {
        let channel = Channel::from_shared(url.clone())
            .expect("etcd url")
            .connect_lazy();
        members.push(KvClient::new(channel));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for member in &members {
        loop {
            let probe = PutRequest {
                key: b"ready".to_vec(),
                value: b"1".to_vec(),
                ..Default::default()
            };
            match member.clone().put(probe).await {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => panic!("etcd did not come up: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    eprintln!("etcd (3 members):");
    run_all(&Target::Etcd(members), &etcd.pids(), flags, |_| {}).await
}

/// The runs of `load` at `concurrency`, one per round.
fn runs_of(rounds: &[Round], load: Load, concurrency: usize) -> Vec<&Run> {
    rounds
        .iter()
        .filter_map(|round| {
            round
                .iter()
                .find(|(l, c, _)| *l == load && *c == concurrency)
                .map(|(_, _, run)| run)
        })
        .collect()
}

fn mean(runs: &[&Run], value: impl Fn(&Run) -> f64) -> f64 {
    runs.iter().map(|run| value(run)).sum::<f64>() / runs.len().max(1) as f64
}

fn main() {
    let flags = LoadFlags::parse(LoadFlags {
        seconds: 10,
        concurrency: vec![1, 64],
        value_size: 1024,
    });
    let rounds = number_flag("--rounds", 2).max(1) as usize;
    let (_temp, dir) = bench_dir();
    let dir = dir.as_path();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("bin dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let skip_etcd = std::env::args().any(|arg| arg == "--ours-only");
    let with_etcd = !skip_etcd && installed("etcd");
    if !skip_etcd && !with_etcd {
        eprintln!("etcd is not installed (Debian: etcd-server); its column is skipped");
    }
    let (mut ours, mut etcd) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Ours, etcd, etcd, ours, ...
        let etcd_first = round % 2 == 1;
        let etcd_dir = dir.join(format!("etcd-{round}"));
        if with_etcd && etcd_first {
            etcd.push(runtime.block_on(run_etcd(&etcd_dir, &flags)));
        }
        ours.push(runtime.block_on(run_ours(
            bin_dir,
            &dir.join(format!("ours-{round}")),
            &flags,
        )));
        if with_etcd && !etcd_first {
            etcd.push(runtime.block_on(run_etcd(&etcd_dir, &flags)));
        }
    }
    let bound = if skip_etcd {
        None
    } else if installed("db_bench") {
        match db_bench_synced_writes(dir, 64, flags.value_size, flags.seconds) {
            Ok(writes) => Some(writes),
            Err(e) => {
                eprintln!("db_bench failed: {e}");
                None
            }
        }
    } else {
        eprintln!("db_bench is not installed (Debian: rocksdb-tools); the bound is skipped");
        None
    };
    let shape = format!(
        "{} B values, {} s per run, {rounds} round(s), keys random over {KEYS}",
        flags.value_size, flags.seconds
    );
    println!("\n# ours vs etcd ({shape})");
    for &concurrency in &flags.concurrency {
        for load in Load::ALL {
            println!("{load}, {concurrency} in flight");
            let ours = runs_of(&ours, load, concurrency);
            let etcd = runs_of(&etcd, load, concurrency);
            for run in &ours {
                println!("  ours  {run}");
            }
            for run in &etcd {
                println!("  etcd  {run}");
            }
            if etcd.is_empty() {
                continue;
            }
            let per_round: Vec<String> = ours
                .iter()
                .zip(&etcd)
                .map(|(o, e)| format!("{:.2}x", o.keys_per_second() / e.keys_per_second()))
                .collect();
            println!(
                "  ratio {:.2}x keys/s (by round: {}), {:.2}x CPU per call, {:.2}x client CPU per call",
                mean(&ours, Run::keys_per_second) / mean(&etcd, Run::keys_per_second),
                per_round.join(", "),
                mean(&ours, Run::cpu_us_per_call) / mean(&etcd, Run::cpu_us_per_call),
                mean(&ours, Run::client_cpu_us_per_call) / mean(&etcd, Run::client_cpu_us_per_call),
            );
        }
    }
    if let Some(writes) = bound {
        println!(
            "db_bench fillrandom --sync=1, 64 threads: {writes:.0} writes/s (the single-engine bound)"
        );
        let puts = runs_of(&ours, Load::Put, 64);
        if !puts.is_empty() {
            println!(
                "  our put at 64 in flight is {:.0}% of it",
                100.0 * mean(&puts, Run::keys_per_second) / writes
            );
        }
    }
}
