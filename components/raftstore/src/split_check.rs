//! Size-based region splits (seed: the split-check worker). A leader whose region took
//! `region-split-check-diff` bytes of writes since its last check, and may now be over its
//! limits (the last measured size plus what was written since), hands the region to the split
//! checker thread. The checker measures the region; if it holds more than `region-max-size`
//! bytes or `region-max-keys` keys, it picks a split key every `region-split-size` bytes (or
//! `region-split-keys` keys) and the leader asks PD to split there, the same path PD's own
//! split operators take. A region created by a split is checked at its leader's next check
//! tick, so the parts of a bulk-loaded region split further in parallel.
//!
//! Sizes count every data column family. Keys count, as TiKV's keys checker does, only the
//! commit records in the write column family (one per version of a transactional key): raw
//! key-value data, which lives in the default column family, splits by size alone.
//!
//! The same thread estimates a region's size for its PD heartbeats from the engine's file
//! statistics ([`approximate_stats`]), so no raft thread waits on the engine for it.

use std::sync::Arc;
use std::thread::JoinHandle;

use config_types::ReadableSize;
use crossbeam::channel::{self, Sender};
use engine_traits::{EngineIterator, IterOptions, Iterable, KvEngine, SeekKey, CF_WRITE, DATA_CFS};
use kvproto::metapb;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::errors::Result;

/// The `[coprocessor]` section: when regions split by size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SplitCheckConfig {
    /// A region larger than this is split. Default `"144MiB"`.
    pub region_max_size: ReadableSize,
    /// Size of the regions a split produces. Default `"96MiB"`.
    pub region_split_size: ReadableSize,
    /// A region with more keys than this is split. Default 1,440,000. Keys are the versions
    /// of transactional keys (the write CF's entries), as TiKV counts them; raw data splits by
    /// size only.
    pub region_max_keys: u64,
    /// Keys in the regions a split produces. Default 960,000.
    pub region_split_keys: u64,
    /// Most split keys one check proposes; a region that needs more is cut into parts of
    /// whole split-size segments, which split further after their own next checks. Default 10.
    pub batch_split_limit: usize,
}

impl Default for SplitCheckConfig {
    fn default() -> Self {
        SplitCheckConfig {
            region_max_size: ReadableSize::mib(144),
            region_split_size: ReadableSize::mib(96),
            region_max_keys: 1_440_000,
            region_split_keys: 960_000,
            batch_split_limit: 10,
        }
    }
}

impl SplitCheckConfig {
    /// # Errors
    ///
    /// A message naming the bad setting.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.batch_split_limit == 0 {
            return Err("coprocessor.batch-split-limit must be at least 1".into());
        }
        if self.region_split_size.0 == 0 || self.region_split_keys == 0 {
            return Err("coprocessor.region-split-size and region-split-keys must not be 0".into());
        }
        if self.region_max_size.0 < self.region_split_size.0 {
            return Err(
                "coprocessor.region-max-size must not be smaller than region-split-size".into(),
            );
        }
        if self.region_max_keys < self.region_split_keys {
            return Err(
                "coprocessor.region-max-keys must not be smaller than region-split-keys".into(),
            );
        }
        Ok(())
    }

    /// Whether a region measured at `last` (bytes, keys; `None`: never measured) that took
    /// `written` more bytes and keys since may be over the limits. Overwrites and deletes make
    /// this an overestimate, which only costs a check.
    pub fn may_exceed(&self, last: Option<(u64, u64)>, written: (u64, u64)) -> bool {
        last.is_none_or(|(size, keys)| {
            size + written.0 > self.region_max_size.0 || keys + written.1 > self.region_max_keys
        })
    }
}

/// What a check found: the region's size and keys, and where to split it (keys as in the
/// region, without the data prefix; empty when it is within the limits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckResult {
    pub size: u64,
    pub keys: u64,
    pub split_keys: Vec<Vec<u8>>,
}

/// Measures `region` and finds its split keys: scans every data column family of `snapshot`
/// in key order, counting key and value bytes of all and the entries of the write CF.
///
/// # Errors
///
/// Engine errors while scanning.
pub fn check_region<S: Iterable>(
    snapshot: &S,
    region: &metapb::Region,
    cfg: &SplitCheckConfig,
) -> Result<CheckResult> {
    let start = keys::data_key(&region.start_key);
    let end = keys::data_end_key(&region.end_key);
    let mut iters = Vec::with_capacity(DATA_CFS.len());
    let mut counts_keys = Vec::with_capacity(DATA_CFS.len());
    for cf in DATA_CFS {
        let mut it = snapshot.iterator_opt(cf, IterOptions::range(&start, &end))?;
        if it.seek(SeekKey::Start)? {
            iters.push(it);
            counts_keys.push(*cf == CF_WRITE);
        }
    }
    let (mut size, mut keys) = (0u64, 0u64);
    let (mut segment_size, mut segment_keys) = (0u64, 0u64);
    let mut splits: Vec<Vec<u8>> = Vec::new();
    // A k-way merge: each step takes the smallest key among the column families.
    while let Some(next) = smallest(&iters) {
        let it = &mut iters[next];
        let entry = (it.key().len() + it.value().len()) as u64;
        // Transactional keys carry a timestamp: split between user keys, never between the
        // versions of one key, so that a key's versions stay in one region.
        let split_key = txn_types::strip_timestamp_if_exists(keys::origin_key(it.key()));
        // By keys, a segment ends at the next commit record, not at the value or lock of the
        // key whose commit record filled it (they sort with that key): each part then holds
        // `region-split-keys` commit records, as TiKV's.
        let key = u64::from(counts_keys[next]);
        if (segment_size >= cfg.region_split_size.0
            || (key == 1 && segment_keys >= cfg.region_split_keys))
            && split_key > region.start_key.as_slice()
            && splits
                .last()
                .is_none_or(|last| last.as_slice() != split_key)
        {
            splits.push(split_key.to_vec());
            segment_size = 0;
            segment_keys = 0;
        }
        size += entry;
        keys += key;
        segment_size += entry;
        segment_keys += key;
        if !it.next()? {
            iters.swap_remove(next);
            counts_keys.swap_remove(next);
        }
    }
    if size <= cfg.region_max_size.0 && keys <= cfg.region_max_keys {
        splits.clear();
    }
    Ok(CheckResult {
        size,
        keys,
        split_keys: spread(splits, cfg.batch_split_limit),
    })
}

/// At most `limit` of `boundaries`, the keys that cut a region into segments of the split
/// size: all of them when there are that few. Otherwise the region is cut into at most
/// `limit + 1` parts of the same number of whole segments (the last part may have fewer),
/// rather than into `limit` segments and a remainder holding the rest: each part that is
/// still over the limits splits again after its own next check, so a bulk-loaded region
/// splits in parallel instead of `limit` keys a round.
fn spread(boundaries: Vec<Vec<u8>>, limit: usize) -> Vec<Vec<u8>> {
    if boundaries.len() <= limit {
        return boundaries;
    }
    let segments_per_part = (boundaries.len() + 1).div_ceil(limit + 1);
    boundaries
        .into_iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % segments_per_part == 0)
        .map(|(_, key)| key)
        .collect()
}

/// Index of the iterator standing on the smallest key.
fn smallest<I: EngineIterator>(iters: &[I]) -> Option<usize> {
    (0..iters.len()).min_by(|&a, &b| iters[a].key().cmp(iters[b].key()))
}

/// A region's estimated size, as PD's region heartbeats carry it: bytes of every data column
/// family, keys of the write column family (commit records; raw data has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionStats {
    pub size: u64,
    pub keys: u64,
}

/// Estimates `region`'s [`RegionStats`] from the engine's statistics, without a scan (RocksDB
/// counts its files only: what is still in the memtables shows after their flush, as in TiKV).
///
/// # Errors
///
/// Engine errors.
pub fn approximate_stats<EK: KvEngine>(kv: &EK, region: &metapb::Region) -> Result<RegionStats> {
    let start = keys::data_key(&region.start_key);
    let end = keys::data_end_key(&region.end_key);
    let mut stats = RegionStats::default();
    for cf in DATA_CFS {
        let range = kv.approximate_range_stats(cf, &start, &end)?;
        stats.size += range.size;
        if *cf == CF_WRITE {
            stats.keys = range.keys;
        }
    }
    Ok(stats)
}

enum Task<EK> {
    Check {
        kv: EK,
        region: metapb::Region,
        reply: Box<dyn FnOnce(CheckResult) + Send>,
    },
    Estimate {
        kv: EK,
        region: metapb::Region,
        reply: Box<dyn FnOnce(RegionStats) + Send>,
    },
}

impl<EK: KvEngine> Task<EK> {
    fn run(self, limits: &SplitCheckConfig) {
        match self {
            Task::Check { kv, region, reply } => {
                match check_region(&kv.snapshot(), &region, limits) {
                    Ok(result) => {
                        if !result.split_keys.is_empty() {
                            info!(
                                region_id = region.id,
                                size = result.size,
                                keys = result.keys,
                                split_keys = result.split_keys.len(),
                                "region over its size limit; asking to split"
                            );
                        }
                        reply(result);
                    }
                    Err(e) => warn!(region_id = region.id, error = %e, "split check failed"),
                }
            }
            Task::Estimate { kv, region, reply } => match approximate_stats(&kv, &region) {
                Ok(stats) => reply(stats),
                Err(e) => {
                    warn!(region_id = region.id, error = %e, "estimating a region's size failed")
                }
            },
        }
    }
}

/// Handle to the split checker thread; it stops when every handle is dropped.
pub struct SplitChecker<EK: KvEngine> {
    sender: Sender<Task<EK>>,
    cfg: Arc<SplitCheckConfig>,
}

impl<EK: KvEngine> Clone for SplitChecker<EK> {
    fn clone(&self) -> Self {
        SplitChecker {
            sender: self.sender.clone(),
            cfg: self.cfg.clone(),
        }
    }
}

impl<EK: KvEngine> SplitChecker<EK> {
    /// Starts the checker thread with the size limits of `cfg`.
    ///
    /// # Errors
    ///
    /// If the thread cannot be spawned.
    pub fn start(cfg: SplitCheckConfig) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (sender, receiver) = channel::unbounded::<Task<EK>>();
        let cfg = Arc::new(cfg);
        let limits = cfg.clone();
        let handle = std::thread::Builder::new()
            .name("split-check".into())
            .spawn(move || {
                for task in receiver {
                    task.run(&limits);
                }
            })?;
        Ok((SplitChecker { sender, cfg }, handle))
    }

    /// The size limits the checker applies.
    pub fn config(&self) -> &SplitCheckConfig {
        &self.cfg
    }

    /// Measures `region` on the checker thread and hands the result to `reply`.
    pub fn schedule(
        &self,
        kv: EK,
        region: metapb::Region,
        reply: impl FnOnce(CheckResult) + Send + 'static,
    ) {
        let _ = self.sender.send(Task::Check {
            kv,
            region,
            reply: Box::new(reply),
        });
    }

    /// Estimates `region`'s size ([`approximate_stats`]) on the checker thread and hands it to
    /// `reply`; an engine error is logged and answered with nothing.
    pub fn estimate(
        &self,
        kv: EK,
        region: metapb::Region,
        reply: impl FnOnce(RegionStats) + Send + 'static,
    ) {
        let _ = self.sender.send(Task::Estimate {
            kv,
            region,
            reply: Box::new(reply),
        });
    }
}

#[cfg(test)]
mod tests {
    use engine_memory::MemoryEngine;
    use engine_traits::{CfName, Mutable, WriteBatch, WriteOptions, CF_DEFAULT, CF_WRITE};

    use super::*;

    fn region(start: &[u8], end: &[u8]) -> metapb::Region {
        metapb::Region {
            id: 1,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            ..Default::default()
        }
    }

    /// Keys `k000`..: `count` of them in `cf`, each with a `value_len`-byte value.
    fn fill(engine: &MemoryEngine, cf: CfName, count: usize, value_len: usize) {
        let mut batch = engine.write_batch();
        for i in 0..count {
            let key = keys::data_key(format!("k{i:03}").as_bytes());
            batch.put_cf(cf, &key, &vec![b'v'; value_len]).unwrap();
        }
        batch.write_opt(WriteOptions::default()).unwrap();
    }

    fn config(max: u64, split: u64) -> SplitCheckConfig {
        SplitCheckConfig {
            region_max_size: ReadableSize(max),
            region_split_size: ReadableSize(split),
            region_max_keys: u64::MAX,
            region_split_keys: u64::MAX,
            ..SplitCheckConfig::default()
        }
    }

    /// Limits by keys only (sizes far above the test data), ten split keys per check.
    fn key_config(max_keys: u64, split_keys: u64) -> SplitCheckConfig {
        SplitCheckConfig {
            region_max_size: ReadableSize::mib(1),
            region_split_size: ReadableSize::mib(1),
            region_max_keys: max_keys,
            region_split_keys: split_keys,
            batch_split_limit: 10,
        }
    }

    fn split_keys_of(
        snapshot: &impl Iterable,
        region: &metapb::Region,
        cfg: &SplitCheckConfig,
    ) -> Result<Vec<Vec<u8>>> {
        check_region(snapshot, region, cfg).map(|r| r.split_keys)
    }

    #[test]
    fn a_region_within_its_limits_does_not_split() {
        let engine = MemoryEngine::new();
        // 100 entries of 5 + 95 bytes: 10,000 bytes in all.
        fill(&engine, CF_DEFAULT, 100, 95);
        let keys = split_keys_of(
            &engine.snapshot(),
            &region(b"", b""),
            &config(10_000, 5_000),
        );
        assert_eq!(keys.unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn an_oversized_region_splits_every_split_size() {
        let engine = MemoryEngine::new();
        fill(&engine, CF_DEFAULT, 100, 95);
        let keys = split_keys_of(&engine.snapshot(), &region(b"", b""), &config(9_999, 2_500));
        // 25 entries of 100 bytes per region.
        assert_eq!(
            keys.unwrap(),
            vec![b"k025".to_vec(), b"k050".to_vec(), b"k075".to_vec()]
        );
    }

    #[test]
    fn only_the_region_is_scanned_and_split_keys_lie_inside_it() {
        let engine = MemoryEngine::new();
        fill(&engine, CF_DEFAULT, 100, 95);
        // [k010, k060): 50 entries, 5,000 bytes.
        let keys = split_keys_of(
            &engine.snapshot(),
            &region(b"k010", b"k060"),
            &config(4_000, 2_000),
        );
        assert_eq!(keys.unwrap(), vec![b"k030".to_vec(), b"k050".to_vec()]);
    }

    #[test]
    fn column_families_count_together_and_a_key_is_split_at_once() {
        let engine = MemoryEngine::new();
        // Every key in two column families: 200 bytes per key.
        fill(&engine, CF_DEFAULT, 100, 95);
        fill(&engine, CF_WRITE, 100, 95);
        let keys = split_keys_of(
            &engine.snapshot(),
            &region(b"", b""),
            &config(10_000, 5_000),
        );
        assert_eq!(
            keys.unwrap(),
            vec![b"k025".to_vec(), b"k050".to_vec(), b"k075".to_vec()]
        );
    }

    #[test]
    fn key_limits_split_too() {
        let engine = MemoryEngine::new();
        fill(&engine, CF_WRITE, 100, 1);
        let cfg = key_config(50, 20);
        let keys = split_keys_of(&engine.snapshot(), &region(b"", b""), &cfg).unwrap();
        let expected: Vec<Vec<u8>> = ["k020", "k040", "k060", "k080"]
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn a_region_needing_more_keys_than_the_batch_limit_is_cut_into_even_parts() {
        let engine = MemoryEngine::new();
        // 500 keys, a segment every 20: 24 boundaries, 25 segments. Ten keys at most cut
        // them into parts of 3 segments (60 keys), the last one shorter.
        fill(&engine, CF_WRITE, 500, 1);
        let cfg = key_config(100, 20);
        let keys = split_keys_of(&engine.snapshot(), &region(b"", b""), &cfg).unwrap();
        let expected: Vec<Vec<u8>> = (1..=8)
            .map(|part| format!("k{:03}", part * 60).into_bytes())
            .collect();
        assert_eq!(keys, expected);
        assert!(
            spread(vec![vec![1]; 7], 10).len() == 7,
            "few boundaries are all kept"
        );
        for (boundaries, limit) in [(11, 10), (24, 10), (1000, 10), (5, 1), (2, 1)] {
            let kept = spread((0..boundaries).map(|i| vec![i as u8]).collect(), limit);
            assert!(
                !kept.is_empty() && kept.len() <= limit,
                "{boundaries} {limit}"
            );
        }
    }

    #[test]
    fn a_check_measures_the_region() {
        let engine = MemoryEngine::new();
        fill(&engine, CF_DEFAULT, 100, 95);
        let result = check_region(
            &engine.snapshot(),
            &region(b"", b""),
            &config(10_000, 5_000),
        );
        let result = result.unwrap();
        assert_eq!(
            (result.size, result.keys),
            (10_000, 0),
            "raw data has no commit records"
        );
        assert!(result.split_keys.is_empty());
        fill(&engine, CF_WRITE, 10, 5);
        let result = check_region(
            &engine.snapshot(),
            &region(b"", b""),
            &config(1 << 20, 1 << 20),
        );
        assert_eq!(result.unwrap().keys, 10);
    }

    /// Each part holds `region-split-keys` commit records even when values live in the default
    /// CF and sort right after their commit record.
    #[test]
    fn key_splits_count_whole_commit_records() {
        let engine = MemoryEngine::new();
        let mut batch = engine.write_batch();
        for i in 0..30u64 {
            let key = txn_types::Key::from_raw(format!("k{i:03}").as_bytes());
            let commit = key.clone().append_ts(txn_types::TimeStamp::new(20));
            let value = key.append_ts(txn_types::TimeStamp::new(10));
            batch
                .put_cf(CF_WRITE, &keys::data_key(commit.as_encoded()), b"w")
                .unwrap();
            batch
                .put_cf(
                    CF_DEFAULT,
                    &keys::data_key(value.as_encoded()),
                    b"long value",
                )
                .unwrap();
        }
        batch.write_opt(WriteOptions::default()).unwrap();
        let keys =
            split_keys_of(&engine.snapshot(), &region(b"", b""), &key_config(20, 10)).unwrap();
        let expected: Vec<Vec<u8>> = [10, 20]
            .iter()
            .map(|i| txn_types::Key::from_raw(format!("k{i:03}").as_bytes()).into_encoded())
            .collect();
        assert_eq!(keys, expected);
    }

    /// TiKV's keys checker counts commit records only: raw data splits by size alone, however
    /// many keys it has.
    #[test]
    fn raw_data_splits_by_size_not_by_keys() {
        let engine = MemoryEngine::new();
        fill(&engine, CF_DEFAULT, 500, 1);
        let cfg = key_config(100, 20);
        assert_eq!(
            split_keys_of(&engine.snapshot(), &region(b"", b""), &cfg).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        fill(&engine, CF_WRITE, 500, 1);
        assert!(!split_keys_of(&engine.snapshot(), &region(b"", b""), &cfg)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn only_a_region_that_may_be_over_its_limits_is_checked() {
        let cfg = config(1_000, 500);
        assert!(cfg.may_exceed(None, (0, 0)), "never measured");
        assert!(!cfg.may_exceed(Some((600, 10)), (400, 4)));
        assert!(cfg.may_exceed(Some((600, 10)), (401, 4)));
        let keys = SplitCheckConfig {
            region_max_keys: 20,
            ..cfg
        };
        assert!(keys.may_exceed(Some((0, 10)), (0, 11)));
    }

    #[test]
    fn an_estimate_counts_the_bytes_of_every_cf_and_the_keys_of_the_write_cf_in_the_region() {
        let engine = MemoryEngine::new();
        // 100 keys k000..k099 of 5 + 95 bytes in each CF.
        fill(&engine, CF_DEFAULT, 100, 95);
        fill(&engine, CF_WRITE, 100, 95);
        let stats = approximate_stats(&engine, &region(b"k050", b"")).unwrap();
        assert_eq!(
            stats,
            RegionStats {
                size: 2 * 50 * 100,
                keys: 50
            }
        );
    }

    #[test]
    fn max_smaller_than_split_size_is_refused() {
        assert!(config(1, 2).validate().is_err());
        assert!(SplitCheckConfig::default().validate().is_ok());
    }

    #[test]
    fn versions_of_a_key_never_straddle_a_split() {
        let engine = MemoryEngine::new();
        let mut batch = engine.write_batch();
        // Ten user keys with ten versions each in the write CF: 100 entries.
        for user in 0..10u64 {
            for version in 0..10u64 {
                let key = txn_types::Key::from_raw(format!("t{user}").as_bytes())
                    .append_ts(txn_types::TimeStamp::new(100 - version));
                batch
                    .put_cf(CF_WRITE, &keys::data_key(key.as_encoded()), b"w")
                    .unwrap();
            }
        }
        batch.write_opt(WriteOptions::default()).unwrap();
        let cfg = SplitCheckConfig {
            region_max_keys: 50,
            region_split_keys: 15,
            ..config(u64::MAX, u64::MAX)
        };
        let keys = split_keys_of(&engine.snapshot(), &region(b"", b""), &cfg).unwrap();
        assert!(!keys.is_empty());
        for key in &keys {
            // Every split key is a whole user key, without a timestamp.
            let user = codec::memcomparable::decode(key).unwrap();
            assert!(user.starts_with(b"t"), "{user:?}");
        }
        // The 16th entry is a version of t1, so the split lands at t1 itself: all of t1's
        // versions go right, and the left region holds t0 alone.
        let first = codec::memcomparable::decode(&keys[0]).unwrap();
        assert_eq!(first, b"t1");
    }
}
