//! ycsb: the YCSB core workloads against the cluster through the official client, as go-ycsb
//! runs them against TiKV.
//!
//! ```text
//! ycsb load --db raw --records 100000                  # insert the records
//! ycsb run  --db raw --records 100000 --workload a --duration 30 --threads 64
//! ycsb run  --db txn --records 100000 --workload f --operations 100000
//! ```
//!
//! As go-ycsb's `recordcount`, `--records` must be the same in both phases: the run phase reads
//! records 0..records.
//!
//! Prints a progress line every second and, at the end, throughput and latency percentiles
//! per operation. `--db raw` uses the raw API, `--db txn` optimistic transactions (one
//! transaction per operation; a read-modify-write reads and writes in one transaction).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use cmd::ycsb::{self, Distribution, InsertCounter, KeyChooser, Op, Stats, Workload};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tikv_client::{Config, RawClient, TransactionClient};

#[derive(Parser, Debug)]
#[command(
    name = "ycsb",
    version,
    about = "YCSB workloads A-F over the raw and transactional APIs"
)]
struct Flags {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand, Debug)]
enum Phase {
    /// Inserts records 0..records.
    Load(Options),
    /// Runs the workload's operation mix over the loaded records.
    Run(Options),
}

#[derive(clap::Args, Debug, Clone)]
struct Options {
    /// PD's client address.
    #[arg(long, default_value = "127.0.0.1:2379")]
    pd: String,
    /// Which API: raw, or (optimistic) transactions.
    #[arg(long, value_enum, default_value = "raw")]
    db: Db,
    /// Core workload a, b, c, d, e or f.
    #[arg(long, default_value = "a")]
    workload: char,
    /// Records loaded, and the records the run phase reads: give the load phase's count.
    #[arg(long, default_value_t = 10_000)]
    records: u64,
    /// Operations of the run phase (the load phase inserts `records`) [default: 10000, or
    /// unlimited with --duration].
    #[arg(long)]
    operations: Option<u64>,
    /// Stop after this many seconds even if operations remain.
    #[arg(long)]
    duration: Option<u64>,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    threads: usize,
    /// Bytes per record (YCSB's 10 fields of 100 bytes).
    #[arg(long, default_value_t = 1000)]
    value_size: usize,
    /// Request distribution; the workload's own by default (zipfian, latest for d).
    #[arg(long, value_enum)]
    distribution: Option<Distribution>,
    /// A keyspace to work in (API V2 clusters); without it, API V1.
    #[arg(long)]
    keyspace: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Db {
    Raw,
    Txn,
}

enum Client {
    Raw(RawClient),
    Txn(TransactionClient),
}

impl Client {
    async fn connect(options: &Options) -> Result<Client, String> {
        let config = match &options.keyspace {
            Some(name) => Config::default().with_keyspace(name),
            None => Config::default(),
        };
        let pd = vec![options.pd.clone()];
        let failed = |e: tikv_client::Error| {
            format!(
                "cannot connect to the cluster through PD at {} ({e}); is it running? Give \
                 its address with --pd",
                options.pd
            )
        };
        Ok(match options.db {
            Db::Raw => Client::Raw(
                RawClient::new_with_config(pd, config)
                    .await
                    .map_err(failed)?,
            ),
            Db::Txn => Client::Txn(
                TransactionClient::new_with_config(pd, config)
                    .await
                    .map_err(failed)?,
            ),
        })
    }

    async fn execute(
        &self,
        op: Op,
        key: Vec<u8>,
        value: Vec<u8>,
        scan_length: u32,
    ) -> Result<(), tikv_client::Error> {
        match self {
            Client::Raw(raw) => match op {
                Op::Read => raw.get(key).await.map(drop),
                Op::Update | Op::Insert => raw.put(key, value).await,
                Op::Scan => raw.scan(key.., scan_length).await.map(drop),
                Op::ReadModifyWrite => {
                    raw.get(key.clone()).await?;
                    raw.put(key, value).await
                }
            },
            Client::Txn(client) => {
                let mut txn = client.begin_optimistic().await?;
                let result = match op {
                    Op::Read => txn.get(key).await.map(drop),
                    Op::Update | Op::Insert => txn.put(key, value).await,
                    Op::Scan => txn.scan(key.., scan_length).await.map(drop),
                    Op::ReadModifyWrite => match txn.get(key.clone()).await {
                        Ok(_) => txn.put(key, value).await,
                        Err(e) => Err(e),
                    },
                };
                match result {
                    Ok(()) => txn.commit().await.map(drop),
                    Err(e) => {
                        let _ = txn.rollback().await;
                        Err(e)
                    }
                }
            }
        }
    }
}

/// What the clients share: the next operation number, the records inserted, the statistics.
struct Shared {
    issued: AtomicU64,
    inserts: InsertCounter,
    stats: Mutex<Stats>,
    errors_shown: AtomicU64,
}

const ERRORS_SHOWN: u64 = 5;

/// Run-phase operations without --operations or --duration.
const DEFAULT_OPERATIONS: u64 = 10_000;

/// What every client task runs with.
struct Job {
    client: Client,
    shared: Shared,
    workload: Workload,
    chooser: KeyChooser,
    options: Options,
    load: bool,
    deadline: Option<Instant>,
}

async fn client_loop(job: Arc<Job>, seed: u64) {
    let Job {
        client,
        shared,
        workload,
        chooser,
        options,
        load,
        deadline,
    } = &*job;
    let (load, deadline) = (*load, *deadline);
    let mut rng = StdRng::seed_from_u64(seed);
    let total = match (load, options.operations, options.duration) {
        (true, _, _) => options.records,
        (false, Some(operations), _) => operations,
        (false, None, Some(_)) => u64::MAX,
        (false, None, None) => DEFAULT_OPERATIONS,
    };
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        let n = shared.issued.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return;
        }
        let op = if load {
            Op::Insert
        } else {
            workload.next_op(&mut rng)
        };
        let record = match op {
            Op::Insert => shared.inserts.next_insert(),
            _ => chooser.next(&mut rng, shared.inserts.existing()),
        };
        let mut value = vec![0u8; options.value_size];
        rng.fill(value.as_mut_slice());
        let scan_length = rng.gen_range(1..=workload.max_scan_length) as u32;
        let started = Instant::now();
        let result = client
            .execute(op, ycsb::record_key(record), value, scan_length)
            .await;
        let latency = started.elapsed();
        if op == Op::Insert && result.is_ok() {
            shared.inserts.acknowledge(record);
        }
        if let Err(e) = &result {
            if shared.errors_shown.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
                eprintln!("{} failed: {e}", op.name());
            }
        }
        shared
            .stats
            .lock()
            .expect("stats lock")
            .record(op, latency, result.is_ok());
    }
}

async fn run(load: bool, options: Options) -> Result<Stats, String> {
    let workload = Workload::core(options.workload)?;
    let distribution = options.distribution.unwrap_or(workload.distribution);
    let chooser = KeyChooser::new(distribution, options.records);
    let client = Client::connect(&options).await?;
    let operations = match (load, options.operations, options.duration) {
        (true, _, _) | (false, None, Some(_)) => String::new(),
        (false, Some(n), _) => format!(", {n} operations"),
        (false, None, None) => format!(", {DEFAULT_OPERATIONS} operations"),
    };
    let duration = options
        .duration
        .map_or(String::new(), |s| format!(" for at most {s} s"));
    let distribution_name = format!("{distribution:?}").to_lowercase();
    println!(
        "{} workload {} over {:?} with {} threads{duration}: {} records{operations}, \
         {distribution_name} distribution, {}-byte values",
        if load { "load" } else { "run" },
        workload.name,
        options.db,
        options.threads,
        options.records,
        options.value_size
    );
    let started = Instant::now();
    let threads = options.threads.max(1);
    let job = Arc::new(Job {
        client,
        shared: Shared {
            issued: AtomicU64::new(0),
            inserts: InsertCounter::new(if load { 0 } else { options.records }),
            stats: Mutex::new(Stats::default()),
            errors_shown: AtomicU64::new(0),
        },
        workload,
        chooser,
        deadline: options.duration.map(|s| started + Duration::from_secs(s)),
        options,
        load,
    });
    let tasks: Vec<_> = (0..threads)
        .map(|i| tokio::spawn(client_loop(job.clone(), i as u64 + 1)))
        .collect();
    let progress = {
        let job = job.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let stats = job.shared.stats.lock().expect("stats lock").clone();
                println!("{}", ycsb::progress_line(started.elapsed(), &stats));
            }
        })
    };
    for task in tasks {
        task.await
            .map_err(|e| format!("a client task failed: {e}"))?;
    }
    progress.abort();
    // Finished, so that no progress line comes after the summary.
    let _ = progress.await;
    let elapsed = started.elapsed();
    let stats = job.shared.stats.lock().expect("stats lock").clone();
    println!("Run finished, takes {:.1}s", elapsed.as_secs_f64());
    print!("{}", ycsb::summary_table(elapsed, &stats));
    Ok(stats)
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let (load, options) = match flags.phase {
        Phase::Load(options) => (true, options),
        Phase::Run(options) => (false, options),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ycsb: start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(load, options)) {
        Ok(stats) if stats.total() > stats.errors() => ExitCode::SUCCESS,
        Ok(stats) if stats.total() == 0 => {
            eprintln!("ycsb: no operation ran");
            ExitCode::FAILURE
        }
        Ok(_) => {
            eprintln!("ycsb: every operation failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ycsb: {e}");
            ExitCode::FAILURE
        }
    }
}
