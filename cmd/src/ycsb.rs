//! The YCSB core workloads for the `ycsb` tool: the operation mixes A–F, the key choosers
//! (uniform, zipfian, latest), and the per-operation statistics it prints as go-ycsb does.
//!
//! Keys are `user` + a hash of the record number (YCSB's `insertorder=hashed`), so records are
//! spread over the key space rather than appended at its end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::Rng;

/// One YCSB operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Read,
    Update,
    Insert,
    Scan,
    ReadModifyWrite,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "READ",
            Op::Update => "UPDATE",
            Op::Insert => "INSERT",
            Op::Scan => "SCAN",
            Op::ReadModifyWrite => "READ_MODIFY_WRITE",
        }
    }
}

/// How keys of existing records are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Distribution {
    Uniform,
    /// Popular records are popular wherever they are (scrambled zipfian, constant 0.99).
    Zipfian,
    /// The most recently inserted records are the most popular.
    Latest,
}

/// A core workload: proportions of each operation and the request distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub name: char,
    pub mix: Vec<(Op, f64)>,
    pub distribution: Distribution,
    /// Scans read between 1 and this many records.
    pub max_scan_length: usize,
}

impl Workload {
    /// YCSB's `workloads/workloada` .. `workloadf`.
    ///
    /// # Errors
    ///
    /// A letter other than a–f.
    pub fn core(letter: char) -> Result<Workload, String> {
        use Op::*;
        let (mix, distribution) = match letter.to_ascii_lowercase() {
            'a' => (vec![(Read, 0.5), (Update, 0.5)], Distribution::Zipfian),
            'b' => (vec![(Read, 0.95), (Update, 0.05)], Distribution::Zipfian),
            'c' => (vec![(Read, 1.0)], Distribution::Zipfian),
            'd' => (vec![(Read, 0.95), (Insert, 0.05)], Distribution::Latest),
            'e' => (vec![(Scan, 0.95), (Insert, 0.05)], Distribution::Zipfian),
            'f' => (
                vec![(Read, 0.5), (ReadModifyWrite, 0.5)],
                Distribution::Zipfian,
            ),
            other => {
                return Err(format!(
                    "unknown workload {other:?}; the core workloads are a to f"
                ))
            }
        };
        Ok(Workload {
            name: letter.to_ascii_lowercase(),
            mix,
            distribution,
            max_scan_length: 100,
        })
    }

    /// Picks the next operation.
    pub fn next_op(&self, rng: &mut impl Rng) -> Op {
        let mut x: f64 = rng.gen();
        for (op, share) in &self.mix {
            if x < *share {
                return *op;
            }
            x -= share;
        }
        self.mix.last().map_or(Op::Read, |(op, _)| *op)
    }
}

/// The key of record `n`: `user` + the FNV-1a hash of `n`, as YCSB's hashed insert order.
pub fn record_key(n: u64) -> Vec<u8> {
    format!("user{}", fnv1a(n)).into_bytes()
}

/// YCSB's `Utils.fnvhash64`: FNV-1a over the eight bytes of `n`, low byte first, made
/// non-negative as a Java long.
fn fnv1a(n: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in n.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash as i64).unsigned_abs()
}

/// Draws zipfian-distributed numbers in `[0, n)` with Gray et al.'s method ("Quickly
/// Generating Billion-Record Synthetic Databases"), as YCSB's ZipfianGenerator; 0 is the most
/// popular.
#[derive(Clone, Debug)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

/// YCSB's default zipfian constant.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;

/// YCSB's ScrambledZipfianGenerator draws from this many items and folds them onto the records
/// with a hash, so that the popularity of a record does not depend on the record count...
const SCRAMBLED_ITEM_COUNT: u64 = 10_000_000_000;
/// ...with zeta(10^10, 0.99) precomputed, as YCSB does.
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

fn zeta(count: u64, theta: f64) -> f64 {
    (1..=count).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

impl Zipfian {
    /// Over `n` items; computing zeta(n) takes O(n).
    pub fn new(n: u64) -> Zipfian {
        let n = n.max(1);
        Self::with_zetan(n, zeta(n, ZIPFIAN_CONSTANT))
    }

    fn with_zetan(n: u64, zetan: f64) -> Zipfian {
        let theta = ZIPFIAN_CONSTANT;
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta(2, theta) / zetan);
        Zipfian {
            n,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let value = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        value.min(self.n - 1)
    }
}

/// Chooses the record an operation reads or updates, among the records that exist.
#[derive(Clone, Debug)]
pub struct KeyChooser {
    distribution: Distribution,
    zipfian: Option<Zipfian>,
}

impl KeyChooser {
    /// `records` sizes the `latest` distribution (newest-first ranks over that many records).
    pub fn new(distribution: Distribution, records: u64) -> KeyChooser {
        let zipfian = match distribution {
            Distribution::Uniform => None,
            Distribution::Zipfian => {
                Some(Zipfian::with_zetan(SCRAMBLED_ITEM_COUNT, SCRAMBLED_ZETAN))
            }
            Distribution::Latest => Some(Zipfian::new(records)),
        };
        KeyChooser {
            distribution,
            zipfian,
        }
    }

    /// A record number below `records` (the count inserted so far).
    pub fn next(&self, rng: &mut impl Rng, records: u64) -> u64 {
        let records = records.max(1);
        match (&self.zipfian, self.distribution) {
            (Some(zipfian), Distribution::Zipfian) => fnv1a(zipfian.next(rng)) % records,
            (Some(zipfian), Distribution::Latest) => records - 1 - zipfian.next(rng) % records,
            _ => rng.gen_range(0..records),
        }
    }
}

/// Which records exist: the count loaded plus the inserts acknowledged so far without a gap, as
/// YCSB's AcknowledgedCounterGenerator, so that reads only pick records whose insert finished.
#[derive(Debug)]
pub struct InsertCounter {
    next: std::sync::atomic::AtomicU64,
    acknowledged: std::sync::Mutex<(u64, std::collections::BTreeSet<u64>)>,
}

impl InsertCounter {
    /// `existing` records, 0 to `existing - 1`, are there already.
    pub fn new(existing: u64) -> InsertCounter {
        InsertCounter {
            next: std::sync::atomic::AtomicU64::new(existing),
            acknowledged: std::sync::Mutex::new((existing, Default::default())),
        }
    }

    /// The record number of the next insert.
    pub fn next_insert(&self) -> u64 {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that the insert of `record` finished.
    pub fn acknowledge(&self, record: u64) {
        let mut guard = self.acknowledged.lock().expect("insert counter lock");
        let (limit, done) = &mut *guard;
        done.insert(record);
        while done.remove(limit) {
            *limit += 1;
        }
    }

    /// How many records exist without a gap: reads choose below this.
    pub fn existing(&self) -> u64 {
        self.acknowledged.lock().expect("insert counter lock").0
    }
}

/// Latencies and errors of each operation.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    ops: BTreeMap<Op, OpStats>,
}

#[derive(Clone, Debug)]
struct OpStats {
    latency_us: Histogram<u64>,
    errors: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: 0,
        }
    }
}

/// One operation's line of the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub op: Op,
    pub count: u64,
    pub errors: u64,
    pub ops_per_sec: f64,
    pub avg_us: f64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Stats {
    pub fn record(&mut self, op: Op, latency: Duration, ok: bool) {
        let stats = self.ops.entry(op).or_default();
        if ok {
            stats
                .latency_us
                .saturating_record(latency.as_micros().max(1) as u64);
        } else {
            stats.errors += 1;
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        for (op, theirs) in &other.ops {
            let ours = self.ops.entry(*op).or_default();
            // Same bounds on both sides, so adding cannot fail.
            let _ = ours.latency_us.add(&theirs.latency_us);
            ours.errors += theirs.errors;
        }
    }

    pub fn total(&self) -> u64 {
        self.ops
            .values()
            .map(|s| s.latency_us.len() + s.errors)
            .sum()
    }

    pub fn errors(&self) -> u64 {
        self.ops.values().map(|s| s.errors).sum()
    }

    pub fn summaries(&self, elapsed: Duration) -> Vec<Summary> {
        let secs = elapsed.as_secs_f64().max(1e-9);
        self.ops
            .iter()
            .map(|(op, s)| {
                let h = &s.latency_us;
                let empty = h.is_empty();
                let q = |quantile: f64| {
                    if empty {
                        0
                    } else {
                        h.value_at_quantile(quantile)
                    }
                };
                Summary {
                    op: *op,
                    count: h.len(),
                    errors: s.errors,
                    ops_per_sec: h.len() as f64 / secs,
                    avg_us: if empty { 0.0 } else { h.mean() },
                    min_us: if empty { 0 } else { h.min() },
                    p50_us: q(0.50),
                    p95_us: q(0.95),
                    p99_us: q(0.99),
                    p999_us: q(0.999),
                    max_us: if empty { 0 } else { h.max() },
                }
            })
            .collect()
    }
}

/// The progress line go-ycsb prints every second: one `OP - ...` part per operation.
pub fn progress_line(elapsed: Duration, stats: &Stats) -> String {
    let mut out = String::new();
    for s in stats.summaries(elapsed) {
        let _ = write!(
            out,
            "{:<6} - Takes(s): {:.1}, Count: {}, OPS: {:.1}, Avg(us): {:.0}, 99th(us): {}, Max(us): {}{}  ",
            s.op.name(),
            elapsed.as_secs_f64(),
            s.count,
            s.ops_per_sec,
            s.avg_us,
            s.p99_us,
            s.max_us,
            if s.errors > 0 { format!(", Errors: {}", s.errors) } else { String::new() }
        );
    }
    out.trim_end().to_string()
}

/// The final table: throughput and latency percentiles per operation.
pub fn summary_table(elapsed: Duration, stats: &Stats) -> String {
    let headers = [
        "Operation",
        "Takes(s)",
        "Count",
        "Errors",
        "OPS",
        "Avg(us)",
        "Min(us)",
        "50th(us)",
        "95th(us)",
        "99th(us)",
        "99.9th(us)",
        "Max(us)",
    ];
    let rows: Vec<Vec<String>> = stats
        .summaries(elapsed)
        .into_iter()
        .map(|s| {
            vec![
                s.op.name().to_string(),
                format!("{:.1}", elapsed.as_secs_f64()),
                s.count.to_string(),
                s.errors.to_string(),
                format!("{:.1}", s.ops_per_sec),
                format!("{:.0}", s.avg_us),
                s.min_us.to_string(),
                s.p50_us.to_string(),
                s.p95_us.to_string(),
                s.p99_us.to_string(),
                s.p999_us.to_string(),
                s.max_us.to_string(),
            ]
        })
        .collect();
    crate::ctl::table(&headers, &rows)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn core_workloads_mix_as_ycsb_does() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = Workload::core('a').unwrap();
        let reads = (0..10_000)
            .filter(|_| a.next_op(&mut rng) == Op::Read)
            .count();
        assert!((4_500..5_500).contains(&reads), "{reads}");
        let e = Workload::core('E').unwrap();
        assert_eq!(e.mix[0], (Op::Scan, 0.95));
        assert_eq!(
            Workload::core('d').unwrap().distribution,
            Distribution::Latest
        );
        assert!(Workload::core('g').is_err());
    }

    #[test]
    fn zipfian_favours_few_items_and_stays_in_range() {
        let mut rng = StdRng::seed_from_u64(2);
        let zipf = Zipfian::new(1000);
        let draws: Vec<u64> = (0..20_000).map(|_| zipf.next(&mut rng)).collect();
        assert!(draws.iter().all(|d| *d < 1000));
        let top = draws.iter().filter(|d| **d < 10).count();
        assert!(
            top > 20_000 / 4,
            "the first 1% of items get far more than 1%: {top}"
        );
        // Scrambled as YCSB's: the hottest record gets a few percent of 10,000 records' draws.
        let scrambled = KeyChooser::new(Distribution::Zipfian, 10_000);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100_000 {
            *counts
                .entry(scrambled.next(&mut rng, 10_000))
                .or_insert(0u32) += 1;
        }
        let hottest = counts.values().max().copied().unwrap_or(0);
        assert!((1_000..8_000).contains(&hottest), "{hottest}");
        let latest = KeyChooser::new(Distribution::Latest, 1000);
        let recent = (0..1000)
            .filter(|_| latest.next(&mut rng, 500) >= 490)
            .count();
        assert!(recent > 250, "{recent}");
        let uniform = KeyChooser::new(Distribution::Uniform, 1000);
        assert!((0..1000).all(|_| uniform.next(&mut rng, 10) < 10));
    }

    #[test]
    fn reads_see_only_inserts_acknowledged_without_a_gap() {
        let counter = InsertCounter::new(10);
        let (a, b, c) = (
            counter.next_insert(),
            counter.next_insert(),
            counter.next_insert(),
        );
        assert_eq!((a, b, c), (10, 11, 12));
        counter.acknowledge(b);
        assert_eq!(counter.existing(), 10, "record 10 is not written yet");
        counter.acknowledge(a);
        assert_eq!(counter.existing(), 12);
        counter.acknowledge(c);
        assert_eq!(counter.existing(), 13);
    }

    #[test]
    fn summaries_count_and_order_percentiles() {
        let mut stats = Stats::default();
        for us in 1..=1000 {
            stats.record(Op::Read, Duration::from_micros(us), true);
        }
        stats.record(Op::Update, Duration::from_micros(5), false);
        let mut other = Stats::default();
        other.record(Op::Read, Duration::from_micros(2000), true);
        stats.merge(&other);
        assert_eq!(stats.total(), 1002);
        let summaries = stats.summaries(Duration::from_secs(1));
        let read = &summaries[0];
        assert_eq!(read.count, 1001);
        assert!(read.p50_us <= read.p95_us && read.p95_us <= read.p99_us);
        assert!(read.p99_us <= read.p999_us && read.p999_us <= read.max_us);
        assert_eq!(summaries[1].errors, 1);
        let table = summary_table(Duration::from_secs(1), &stats);
        assert!(table.starts_with("Operation"), "{table}");
        assert!(progress_line(Duration::from_secs(1), &stats)
            .contains("READ   - Takes(s): 1.0, Count: 1001"));
        assert_ne!(record_key(1), record_key(2));
    }
}
