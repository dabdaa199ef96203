//! The measurement behind the raft log backend choice (ARCHITECTURE.md): synced appends of
//! 1 KiB entries for 1,000 regions on raft-engine and on RocksDB, on the same disk.
//!
//! Two shapes of write:
//! - `single`: each synced write appends one entry to one region (round-robin over regions);
//!   the latency a lone proposal sees.
//! - `batched`: each synced write appends one entry to each of 100 regions, as a raftstore
//!   poll round does when many regions are busy; the throughput of the store.
//!
//! Run with `cargo bench -p raft_log_engine --bench raft_log_append`. Data goes under
//! `target/raft-log-bench` (a real disk, so fsync costs what it costs).

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use raft::eraftpb::Entry;
use raft_log_engine::{RaftEngineConfig, RaftEngineLog, RaftLogBatch, RaftLogEngine, RocksLog};
use types::RegionId;

const REGIONS: u64 = 1_000;
const ENTRY_SIZE: usize = 1024;
const SINGLE_WRITES: u64 = 3_000;
const BATCH_REGIONS: u64 = 100;
const BATCHED_WRITES: u64 = 1_000;

struct Report {
    entries: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Report {
    fn print(&self, backend: &str, shape: &str) {
        let secs = self.elapsed.as_secs_f64();
        let entries_per_sec = self.entries as f64 / secs;
        let mib_per_sec = entries_per_sec * ENTRY_SIZE as f64 / (1 << 20) as f64;
        println!(
            "{backend:<12} {shape:<8} writes={:<6} entries/s={entries_per_sec:>9.0} MiB/s={mib_per_sec:>6.1} \
             write p50={:>6}us p99={:>6}us",
            self.latency.len(),
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
        );
    }
}

/// Appends `writes` synced batches, each holding one entry for each of `per_write` regions.
fn run<E: RaftLogEngine>(engine: &E, writes: u64, per_write: u64) -> Report {
    let mut next_index = vec![1u64; REGIONS as usize];
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    let data = vec![0x5a; ENTRY_SIZE];
    let mut region_cursor = 0;
    let start = Instant::now();
    for _ in 0..writes {
        let mut batch = engine.new_batch();
        for _ in 0..per_write {
            let region = region_cursor % REGIONS;
            region_cursor += 1;
            let index = next_index[region as usize];
            let entry = Entry {
                index,
                term: 1,
                data: data.clone().into(),
                ..Default::default()
            };
            next_index[region as usize] += 1;
            batch
                .append(RegionId(region + 1), &[entry])
                .expect("append");
        }
        let write_start = Instant::now();
        engine.write(&mut batch, true).expect("write");
        latency
            .record(write_start.elapsed().as_micros() as u64)
            .expect("record");
    }
    Report {
        entries: writes * per_write,
        elapsed: start.elapsed(),
        latency,
    }
}

fn fresh_dir(root: &Path, name: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/raft-log-bench");
    println!(
        "synced appends, {ENTRY_SIZE} B entries, {REGIONS} regions; single: {SINGLE_WRITES} writes \
         of 1 entry; batched: {BATCHED_WRITES} writes of {BATCH_REGIONS} entries"
    );
    for shape in ["single", "batched"] {
        let (writes, per_write) = match shape {
            "single" => (SINGLE_WRITES, 1),
            _ => (BATCHED_WRITES, BATCH_REGIONS),
        };
        let dir = fresh_dir(&root, &format!("raft-engine-{shape}"));
        let engine = RaftEngineLog::open(&RaftEngineConfig::new(&dir)).expect("open raft-engine");
        run(&engine, writes, per_write).print("raft-engine", shape);
        drop(engine);
        let dir = fresh_dir(&root, &format!("rocksdb-{shape}"));
        let engine = RocksLog::open(&dir).expect("open rocksdb");
        run(&engine, writes, per_write).print("rocksdb", shape);
    }
    let _ = std::fs::remove_dir_all(&root);
}
