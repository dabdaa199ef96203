//! chaos: PD and 3–5 stores, each in its own network namespace, under a seeded nemesis (kill -9
//! and restart of stores and PD, SIGSTOP, partitions, leader transfers, splits, clock jumps)
//! while the workloads run through the official client; then every history is checked.
//!
//! ```text
//! cargo build --locked -p cmd --bins
//! sudo target/debug/chaos --time-limit 600 --seed 42
//! ```
//!
//! Needs root (network namespaces and nftables), `ip` (iproute2), `nft` (nftables) and, for
//! clock jumps, libfaketime (Debian's `faketime`). Exits 0 when every checker passes and the
//! nemesis did at least what `--min-kills` and `--min-partitions` ask; on a violation it writes
//! the histories, the nemesis's schedule, the seed and the servers' logs to
//! `<report-dir>/seed-<seed>/` and prints the shortest window showing each anomaly.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chaos::checker;
use chaos::history::{Op, Outcome};
use chaos::report::{self, Event};
use chaos::workload::{self, Clock, Options};
use clap::Parser;
use cmd::chaos::{pd_outages, run_nemesis, ChaosCluster, NemesisOptions, FAULT_KINDS, LIBFAKETIME};

const WORKLOADS: [&str; 5] = ["register", "set", "bank", "list-append", "tso"];

/// Runs the workloads against a real cluster under a seeded nemesis and checks the histories.
#[derive(Parser, Debug)]
#[command(name = "chaos", version)]
struct Flags {
    /// How long the workloads run, in seconds (faults stop with them).
    #[arg(long = "time-limit", default_value_t = 600)]
    time_limit: u64,
    /// Seeds the nemesis's schedule and the workloads' choices [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// Number of stores, 3 to 5.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
    stores: u64,
    /// Workloads to run at once, comma-separated: register, set, bank, list-append, tso.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "register,set,bank,list-append,tso"
    )]
    workloads: Vec<String>,
    /// Longest a fault lasts, in milliseconds.
    #[arg(long = "hold-ms", default_value_t = 5000)]
    hold_ms: u64,
    /// Longest quiet time between faults, in milliseconds.
    #[arg(long = "quiet-ms", default_value_t = 2000)]
    quiet_ms: u64,
    /// Fail unless the nemesis killed a process at least this many times.
    #[arg(long = "min-kills", default_value_t = 0)]
    min_kills: usize,
    /// Fail unless the nemesis made at least this many partitions.
    #[arg(long = "min-partitions", default_value_t = 0)]
    min_partitions: usize,
    /// Do not jump clocks (otherwise done when libfaketime is installed).
    #[arg(long = "no-clock-jumps")]
    no_clock_jumps: bool,
    /// Where the servers keep data and logs [default: a temporary directory, removed after a
    /// clean run].
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    /// Where a failed run's evidence goes.
    #[arg(long = "report-dir", default_value = "chaos-report")]
    report_dir: PathBuf,
    /// Where pd-server and tikv-server are [default: beside this binary].
    #[arg(long = "bin-dir")]
    bin_dir: Option<PathBuf>,
}

/// Every workload's history, as recorded.
#[derive(Default)]
struct Histories {
    register: Vec<checker::register::RegisterOp>,
    set: workload::set::SetHistory,
    /// The final reads of the raw and the transactional set, or why they failed.
    set_final: Option<Result<workload::set::FinalReads, String>>,
    bank: workload::bank::BankHistory,
    list_append: Vec<checker::list_append::TxnOp>,
    tso: Vec<checker::tso::TsoOp>,
}

/// One anomaly, ready to print: which workload, what, and the window showing it.
struct Finding {
    workload: &'static str,
    what: String,
    window: String,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    // The official client logs every reconnection and failed request: expected under faults, and
    // the histories record them.
    if let Err(e) = cmd::init_logging("info,tikv_client=off", None) {
        eprintln!("chaos: {e}");
        return ExitCode::from(2);
    }
    match run(flags) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(flags: Flags) -> Result<bool, String> {
    for w in &flags.workloads {
        if !WORKLOADS.contains(&w.as_str()) {
            return Err(format!("unknown workload {w:?}; choose from {WORKLOADS:?}"));
        }
    }
    let seed = flags.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let bin_dir = match &flags.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate its own binary: {e}"))?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    let temp;
    let data_dir = match &flags.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile_dir(seed)?;
            temp.clone()
        }
    };
    let clock_jumps = !flags.no_clock_jumps && Path::new(LIBFAKETIME).exists();
    if !flags.no_clock_jumps && !clock_jumps {
        eprintln!("chaos: {LIBFAKETIME} not found (apt-get install faketime): no clock jumps");
    }
    eprintln!(
        "chaos: seed {seed}, {} s, {} stores, workloads {}, data in {}",
        flags.time_limit,
        flags.stores,
        flags.workloads.join(","),
        data_dir.display()
    );
    let mut cluster = ChaosCluster::start(&bin_dir, &data_dir, flags.stores as usize, clock_jumps)?;
    let pd = vec![cluster.pd_addr()];
    eprintln!("chaos: cluster up, PD at {}", pd[0]);

    let clock = Clock::start();
    let duration = Duration::from_secs(flags.time_limit);
    let options = |clients, keys| Options {
        clients,
        keys,
        duration,
        seed,
        timeout: Duration::from_secs(2),
    };
    let enabled = |w: &str| flags.workloads.iter().any(|x| x == w);
    let stop = AtomicBool::new(false);
    let (hot_keys, split_keys) = hot_and_split_keys();
    let nemesis_options = NemesisOptions {
        seed,
        hot_keys,
        split_keys,
        hold: Duration::from_millis(flags.hold_ms),
        quiet: Duration::from_millis(flags.quiet_ms),
        clock_jumps,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;

    let started = Instant::now();
    // The nemesis runs on this thread: the servers it restarts die with the thread that
    // started them (PR_SET_PDEATHSIG), so it must be the one that outlives them.
    let (histories, nemesis) = std::thread::scope(|scope| {
        let workloads = scope.spawn(|| {
            // Stops the nemesis however the workloads end, a panic included.
            let _stop = StopOnDrop(&stop);
            runtime.block_on(run_workloads(&pd, &options, &enabled, clock))
        });
        scope.spawn(|| {
            let mut next = Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if started.elapsed() >= next {
                    eprintln!("chaos: {} s of {} s", next.as_secs(), duration.as_secs());
                    next += Duration::from_secs(60);
                }
            }
        });
        let nemesis = run_nemesis(&mut cluster, clock, &nemesis_options, &stop);
        let histories = workloads.join().expect("a workload panicked");
        (histories, nemesis)
    });
    let (events, counts) = (&nemesis.events, &nemesis.counts);
    let mut histories = histories?;
    if enabled("set") {
        let final_reads =
            workload::set::final_reads(pd.clone(), options(1, 0), Duration::from_secs(120));
        histories.set_final = Some(runtime.block_on(final_reads));
    }

    print_faults(counts);
    let mut findings = check(&histories, events);
    for crash in &nemesis.crashes {
        findings.push(Finding {
            workload: "servers",
            what: crash.lines().next().unwrap_or_default().to_string(),
            window: crash.lines().skip(1).collect::<Vec<_>>().join("\n"),
        });
    }
    let kills =
        counts.get("kill").copied().unwrap_or(0) + counts.get("kill-pd").copied().unwrap_or(0);
    let partitions = counts.get("partition").copied().unwrap_or(0);
    let mut ok = findings.is_empty();
    if kills < flags.min_kills || partitions < flags.min_partitions {
        eprintln!(
            "chaos: the nemesis did too little: {kills} kills (want {}), {partitions} partitions (want {})",
            flags.min_kills, flags.min_partitions
        );
        ok = false;
    }
    if !findings.is_empty() {
        let dir = flags.report_dir.join(format!("seed-{seed}"));
        write_evidence(
            &dir,
            seed,
            &histories,
            events,
            &findings,
            &cluster.log_paths(),
        )
        .map_err(|e| format!("write the report to {}: {e}", dir.display()))?;
        for finding in &findings {
            eprintln!(
                "\n{}: {}\n{}",
                finding.workload, finding.what, finding.window
            );
        }
        eprintln!(
            "chaos: {} anomalies with seed {seed}; evidence in {} (rerun: chaos --seed {seed} --time-limit {})",
            findings.len(),
            dir.display(),
            flags.time_limit
        );
    }
    drop(cluster);
    if ok && flags.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    eprintln!("chaos: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

/// Runs the enabled workloads at once, each with its clients and keys.
async fn run_workloads(
    pd: &[String],
    options: &dyn Fn(u64, u64) -> Options,
    enabled: &dyn Fn(&str) -> bool,
    clock: Clock,
) -> Result<Histories, String> {
    let pd = pd.to_vec();
    let register = async {
        if !enabled("register") {
            return Ok(vec![]);
        }
        workload::register::run(pd.clone(), options(5, 3), clock).await
    };
    let set = async {
        if !enabled("set") {
            return Ok(Default::default());
        }
        workload::set::run(pd.clone(), options(3, 0), clock).await
    };
    let bank = async {
        if !enabled("bank") {
            return Ok(Default::default());
        }
        workload::bank::run(pd.clone(), options(3, 5), clock).await
    };
    let list_append = async {
        if !enabled("list-append") {
            return Ok(vec![]);
        }
        workload::list_append::run(pd.clone(), options(4, 5), clock).await
    };
    let tso = async {
        if !enabled("tso") {
            return Ok(vec![]);
        }
        workload::tso::run(pd.clone(), options(2, 0), clock).await
    };
    let (register, set, bank, list_append, tso) =
        tokio::join!(register, set, bank, list_append, tso);
    Ok(Histories {
        register: register?,
        set: set?,
        set_final: None,
        bank: bank?,
        list_append: list_append?,
        tso: tso?,
    })
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn tempfile_dir(seed: u64) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("tikv-chaos-{seed}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The workloads' keys in PD's key space (raw keys as they are, transactional keys
/// memcomparable-encoded), for the nemesis to aim at; and where it may split: at the
/// memcomparable encoding of any of them, as TiKV's split keys are in API V1 (the
/// transactional client decodes every region boundary it meets; the raw client takes any).
fn hot_and_split_keys() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let raw: Vec<Vec<u8>> = (0..3)
        .map(workload::register::key)
        .chain([b"chaos-set-raw-00000000004294967296".to_vec()])
        .collect();
    let txn = [
        "chaos-bank-0002",
        "chaos-list-000002",
        "chaos-set-txn-00000000004294967296",
    ];
    let encoded = |key: &[u8]| codec::memcomparable::encode(key);
    let hot = raw
        .iter()
        .cloned()
        .chain(txn.iter().map(|k| encoded(k.as_bytes())))
        .collect();
    let split = raw
        .iter()
        .map(|k| encoded(k))
        .chain(txn.iter().map(|k| encoded(k.as_bytes())))
        .collect();
    (hot, split)
}

fn print_faults(counts: &BTreeMap<&'static str, usize>) {
    let line: Vec<String> = FAULT_KINDS
        .iter()
        .map(|kind| format!("{kind} {}", counts.get(kind).copied().unwrap_or(0)))
        .collect();
    eprintln!("chaos: faults injected: {}", line.join(", "));
}

fn tally<F, R>(history: &[Op<F, R>]) -> String {
    let ok = history
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Ok(_)))
        .count();
    let unknown = history
        .iter()
        .filter(|op| matches!(op.outcome, Outcome::Unknown))
        .count();
    format!(
        "{} operations: {ok} ok, {} failed, {unknown} unknown",
        history.len(),
        history.len() - ok - unknown
    )
}

/// Runs `check` on its own thread for at most [`CHECK_LIMIT`] and returns what it found; a
/// checker that runs out of time is a finding too (nothing was shown).
fn checked<T: Send + 'static>(
    findings: &mut Vec<Finding>,
    workload: &'static str,
    check: impl FnOnce() -> Vec<T> + Send + 'static,
) -> Vec<T> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(check()));
    receiver.recv_timeout(CHECK_LIMIT).unwrap_or_else(|_| {
        findings.push(Finding {
            workload,
            what: format!("the checker did not finish within {CHECK_LIMIT:?}"),
            window: String::new(),
        });
        vec![]
    })
}

const CHECK_LIMIT: Duration = Duration::from_secs(300);
const WINDOW_OPS: usize = 40;

fn check(h: &Histories, events: &[Event]) -> Vec<Finding> {
    let mut findings = vec![];

    if !h.register.is_empty() {
        eprintln!("chaos: register: {}", tally(&h.register));
        let history = h.register.clone();
        for v in checked(&mut findings, "register", move || {
            checker::register::check(&history)
        }) {
            let mut involved: Vec<usize> = v.linearized.iter().rev().take(5).copied().collect();
            involved.push(v.stuck_on);
            findings.push(Finding {
                workload: "register",
                what: format!(
                    "key {} is not linearizable: stuck on #{}",
                    v.key, v.stuck_on
                ),
                window: report::window(
                    &h.register,
                    &involved,
                    |op| op.f.0 == v.key,
                    events,
                    WINDOW_OPS,
                ),
            });
        }
    }
    if let Some(Err(e)) = &h.set_final {
        findings.push(Finding {
            workload: "set",
            what: format!("the final read failed after the cluster healed: {e}"),
            window: String::new(),
        });
    }
    if let Some(Ok(final_reads)) = &h.set_final {
        let pd_outages = pd_outages(events);
        for (name, adds, final_read) in [
            ("set (raw)", &h.set.raw, &final_reads.raw),
            ("set (txn)", &h.set.txn, &final_reads.txn),
        ] {
            let report = checker::set::check(adds, final_read, |invoked, completed| {
                pd_outages.overlap(invoked, completed)
            });
            eprintln!(
                "chaos: {name}: {}; {} read at the end, {} of unknown outcome found, {} acknowledged by the client without reaching a store (PD down)",
                tally(adds),
                final_read.len(),
                report.recovered,
                report.dropped_by_client.len()
            );
            for lost in &report.lost {
                let involved: Vec<usize> = adds
                    .iter()
                    .position(|op| op.f == *lost)
                    .into_iter()
                    .collect();
                findings.push(Finding {
                    workload: "set",
                    what: format!("{name}: acknowledged insert {lost} is lost"),
                    window: any_window(adds, &involved, events),
                });
            }
            if !report.unexpected.is_empty() {
                findings.push(Finding {
                    workload: "set",
                    what: format!(
                        "{name}: elements no insert could have made: {:?}",
                        report.unexpected
                    ),
                    window: String::new(),
                });
            }
        }
    }
    if !h.bank.reads.is_empty() {
        eprintln!(
            "chaos: bank: reads {}; transfers: {} committed, {} unknown ({} of them panics in the client's async commit), {} aborted ({} of them pessimistic transfers whose balances changed under the client's relock); {} orphaned async-commit locks resolved",
            tally(&h.bank.reads),
            h.bank.transfers_committed,
            h.bank.transfers_unknown,
            h.bank.client_panics,
            h.bank.transfers_aborted,
            h.bank.relock_mismatches,
            h.bank.orphaned_locks_resolved
        );
        for v in checker::bank::check(&h.bank.reads, h.bank.total) {
            findings.push(Finding {
                workload: "bank",
                what: format!(
                    "read #{} shows total {} (want {}), negative: {}",
                    v.read, v.total, h.bank.total, v.negative
                ),
                window: any_window(&h.bank.reads, &[v.read], events),
            });
        }
    }
    if !h.list_append.is_empty() {
        eprintln!("chaos: list-append: {}", tally(&h.list_append));
        let history = h.list_append.clone();
        for anomaly in checked(&mut findings, "list-append", move || {
            checker::list_append::check(&history)
        }) {
            let involved = anomaly_txns(&anomaly);
            findings.push(Finding {
                workload: "list-append",
                what: format!("{anomaly:?}"),
                window: any_window(&h.list_append, &involved, events),
            });
        }
    }
    if !h.tso.is_empty() {
        eprintln!("chaos: tso: {}", tally(&h.tso));
        for v in checker::tso::check(&h.tso) {
            let involved = match v {
                checker::tso::TsoViolation::NotIncreasing { earlier, later } => {
                    vec![earlier, later]
                }
                checker::tso::TsoViolation::Duplicate { first, second } => vec![first, second],
            };
            findings.push(Finding {
                workload: "tso",
                what: format!("{v:?}"),
                window: any_window(&h.tso, &involved, events),
            });
        }
    }
    findings
}

/// The window of `history` around `involved`, over all its operations.
fn any_window<F: Debug, R: Debug>(
    history: &[Op<F, R>],
    involved: &[usize],
    events: &[Event],
) -> String {
    report::window(history, involved, |_| true, events, WINDOW_OPS)
}

/// The transactions an anomaly names.
fn anomaly_txns(anomaly: &checker::list_append::Anomaly) -> Vec<usize> {
    use checker::list_append::Anomaly;
    match anomaly {
        Anomaly::G1a { reader, writer, .. } | Anomaly::G1b { reader, writer, .. } => {
            vec![*reader, *writer]
        }
        Anomaly::Duplicate { reader, .. } | Anomaly::Phantom { reader, .. } => vec![*reader],
        Anomaly::Cycle { txns, .. } => txns.clone(),
        Anomaly::IncompatibleOrder { .. } => vec![],
    }
}

fn write_history<F: Debug, R: Debug>(
    dir: &Path,
    name: &str,
    history: &[Op<F, R>],
) -> std::io::Result<()> {
    if history.is_empty() {
        return Ok(());
    }
    report::write_history(&dir.join(format!("{name}.history")), history)
}

/// Everything needed to study a failed run: the seed, the schedule, every history, the
/// findings with their windows, and the servers' logs.
fn write_evidence(
    dir: &Path,
    seed: u64,
    h: &Histories,
    events: &[Event],
    findings: &[Finding],
    logs: &[PathBuf],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("seed"), format!("{seed}\n"))?;
    report::write_events(&dir.join("nemesis.log"), events)?;
    write_history(dir, "register", &h.register)?;
    write_history(dir, "set-raw", &h.set.raw)?;
    write_history(dir, "set-txn", &h.set.txn)?;
    write_history(dir, "bank-reads", &h.bank.reads)?;
    write_history(dir, "bank-transfers", &h.bank.transfers)?;
    write_history(dir, "list-append", &h.list_append)?;
    write_history(dir, "tso", &h.tso)?;
    let text: String = findings
        .iter()
        .map(|f| format!("{}: {}\n{}\n", f.workload, f.what, f.window))
        .collect();
    std::fs::write(dir.join("anomalies.txt"), text)?;
    for log in logs {
        if let Some(name) = log.file_name() {
            std::fs::copy(log, dir.join(name))?;
        }
    }
    Ok(())
}
