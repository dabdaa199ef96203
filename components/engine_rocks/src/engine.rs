use std::path::Path;
use std::sync::Arc;

use engine_traits::{
    CfName, Error, IterOptions, Iterable, KvEngine, Peekable, RangeStats, Result, ALL_CFS,
};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Env, Options,
};

use crate::{engine_error, Db, RocksConfig, RocksIterator, RocksSnapshot, RocksWriteBatch};

/// A RocksDB database with every column family of [`ALL_CFS`]. Clones share the database.
#[derive(Clone)]
pub struct RocksEngine {
    db: Arc<Db>,
    disable_wal: bool,
}

impl RocksEngine {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// # Errors
    /// An engine error when RocksDB cannot open the directory (locked by another process,
    /// corrupt, unreadable).
    pub fn open(path: &Path, cfg: &RocksConfig) -> Result<Self> {
        let mut db_opts = db_options_with_strict_bytes_per_sync(path)?;
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        let jobs = cfg.max_background_jobs.min(num_cores()).max(2);
        db_opts.set_max_background_jobs(jobs);
        db_opts.set_bytes_per_sync(cfg.bytes_per_sync);
        set_rate_limiter(&mut db_opts, cfg);
        db_opts.set_wal_bytes_per_sync(cfg.wal_bytes_per_sync);
        // Without a WAL, column families flushed apart would leave on disk one column
        // family's writes without another's from the same batch.
        db_opts.set_atomic_flush(cfg.disable_wal);
        let cache = Cache::new_lru_cache(cfg.block_cache_size);
        let descriptors = ALL_CFS
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(*cf, cf_options(cfg, &cache)));
        let db = Db::open_cf_descriptors(&db_opts, path, descriptors).map_err(engine_error)?;
        Ok(RocksEngine {
            db: Arc::new(db),
            disable_wal: cfg.disable_wal,
        })
    }

    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Whether writes skip the write-ahead log (see [`RocksConfig::disable_wal`]).
    pub(crate) fn wal_disabled(&self) -> bool {
        self.disable_wal
    }

    pub(crate) fn cf(&self, cf: CfName) -> Result<&ColumnFamily> {
        cf_handle(&self.db, cf)
    }

    /// Bytes and keys of `cf` in SST files, summed over its live files.
    fn file_totals(&self, cf: CfName) -> Result<(u64, u64)> {
        let files = self.db.live_files().map_err(engine_error)?;
        let (mut size, mut keys) = (0, 0);
        for file in files.iter().filter(|f| f.column_family_name == cf) {
            size += file.size as u64;
            keys += file.num_entries.saturating_sub(file.num_deletions);
        }
        Ok((size, keys))
    }

    /// The smallest key greater than every key now in `cf`, or `None` when `cf` is empty.
    fn end_of_cf(&self, cf: CfName) -> Result<Option<Vec<u8>>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek_to_last();
        it.status().map_err(engine_error)?;
        Ok(it.key().map(|k| {
            let mut end = k.to_vec();
            end.push(0);
            end
        }))
    }
}

pub(crate) fn cf_handle(db: &Db, cf: CfName) -> Result<&ColumnFamily> {
    db.cf_handle(cf)
        .ok_or_else(|| Error::CfNotFound { cf: cf.to_owned() })
}

/// RocksDB's rate limiter over flushes and compactions, as TiKV configures it: writes only,
/// RocksDB's default fairness (a low-priority request goes first one time in ten).
fn set_rate_limiter(opts: &mut Options, cfg: &RocksConfig) {
    const FAIRNESS: i32 = 10;
    let rate = i64::try_from(cfg.rate_bytes_per_sec).unwrap_or(i64::MAX);
    let refill_us = i64::try_from(cfg.rate_limiter_refill_period.as_micros()).unwrap_or(i64::MAX);
    if cfg.rate_limiter_auto_tuned {
        opts.set_auto_tuned_ratelimiter(rate, refill_us, FAIRNESS);
    } else {
        opts.set_ratelimiter(rate, refill_us, FAIRNESS);
    }
}

/// RocksDB's options with `strict_bytes_per_sync` on: a file being written (an SST of a flush
/// or compaction, a WAL) has at most `bytes_per_sync` of writeback outstanding, the writer
/// waiting for the previous range before it starts the next, instead of handing the kernel
/// range after range. Unbounded, a flush queues tens of megabytes on the disk at once, and
/// every raft-engine `fdatasync` behind it waits for them (see ARCHITECTURE.md: the batch
/// put's p99 fell from 49-61 ms to 33-48 ms with it). RocksDB's C API has no setter for this
/// option, so it comes from an options file of RocksDB's own format holding that one setting,
/// written for a moment beside the database at `path` (where RocksDB is about to write anyway).
fn db_options_with_strict_bytes_per_sync(path: &Path) -> Result<Options> {
    const OPTIONS_FILE: &str =
        "[Version]\n  rocksdb_version=10.4.2\n  options_file_version=1.1\n\n\
        [DBOptions]\n  strict_bytes_per_sync=true\n\n[CFOptions \"default\"]\n";
    let io_error = |e: std::io::Error| Error::Engine(format!("write RocksDB's options file: {e}"));
    let beside = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let dir = tempfile::Builder::new()
        .prefix(".rocksdb-options")
        .tempdir_in(beside)
        .map_err(io_error)?;
    std::fs::write(dir.path().join("OPTIONS-000001"), OPTIONS_FILE).map_err(io_error)?;
    let env = Env::new().map_err(engine_error)?;
    let (opts, _) = Options::load_latest(dir.path(), env, false, Cache::new_lru_cache(0))
        .map_err(engine_error)?;
    Ok(opts)
}

fn num_cores() -> i32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as i32)
}

fn cf_options(cfg: &RocksConfig, cache: &Cache) -> Options {
    let mut opts = Options::default();
    opts.set_write_buffer_size(cfg.write_buffer_size);
    opts.set_max_write_buffer_number(cfg.max_write_buffer_number);
    // As TiKV: fresh data in levels 0 and 1 stays uncompressed (cheap to write and to compact),
    // lz4 in the middle, zstd at the bottom where most data lives.
    use DBCompressionType::{Lz4, None as NoCompression, Zstd};
    opts.set_compression_per_level(&[NoCompression, NoCompression, Lz4, Lz4, Lz4, Zstd, Zstd]);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    opts.set_block_based_table_factory(&table);
    opts
}

impl Peekable for RocksEngine {
    fn get_value_cf(&self, cf: CfName, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf)?, key).map_err(engine_error)
    }
}

impl Iterable for RocksEngine {
    type Iterator = RocksIterator;

    fn iterator_opt(&self, cf: CfName, opts: IterOptions) -> Result<RocksIterator> {
        RocksIterator::from_db(self.db.clone(), cf, opts)
    }
}

impl KvEngine for RocksEngine {
    type Snapshot = RocksSnapshot;
    type WriteBatch = RocksWriteBatch;

    fn snapshot(&self) -> RocksSnapshot {
        RocksSnapshot::new(self.db.clone())
    }

    fn write_batch(&self) -> RocksWriteBatch {
        RocksWriteBatch::new(self.clone())
    }

    /// Sizes are RocksDB's `GetApproximateSizes` over SST files (on-disk bytes, so compressed
    /// below level 1; unflushed memtable data is not counted). Keys are estimated from the
    /// column family's average entry size in its SST files.
    fn approximate_range_stats(&self, cf: CfName, start: &[u8], end: &[u8]) -> Result<RangeStats> {
        Error::check_range(start, end)?;
        let handle = self.cf(cf)?;
        let end = if end.is_empty() {
            match self.end_of_cf(cf)? {
                Some(end) => end,
                None => return Ok(RangeStats::default()),
            }
        } else {
            end.to_vec()
        };
        if start >= end.as_slice() {
            return Ok(RangeStats::default());
        }
        let range = rocksdb::Range::new(start, &end);
        let size = self.db.get_approximate_sizes_cf(handle, &[range])[0];
        let (total_size, total_keys) = self.file_totals(cf)?;
        let keys = if total_size == 0 {
            0
        } else {
            (u128::from(size) * u128::from(total_keys) / u128::from(total_size)) as u64
        };
        Ok(RangeStats { size, keys })
    }

    fn sync(&self) -> Result<()> {
        if self.disable_wal {
            // The memtables are the only copy of unflushed writes.
            return self.flush();
        }
        self.db.flush_wal(true).map_err(engine_error)
    }

    fn flush(&self) -> Result<()> {
        let handles: Vec<&ColumnFamily> = ALL_CFS
            .iter()
            .map(|cf| self.cf(cf))
            .collect::<Result<_>>()?;
        self.db
            .flush_cfs_opt(&handles, &rocksdb::FlushOptions::default())
            .map_err(engine_error)
    }

    fn compact_range(&self, cf: CfName, start: &[u8], end: &[u8], bottommost: bool) -> Result<()> {
        let handle = self.cf(cf)?;
        let mut options = rocksdb::CompactOptions::default();
        options.set_exclusive_manual_compaction(false);
        options.set_bottommost_level_compaction(if bottommost {
            rocksdb::BottommostLevelCompaction::Force
        } else {
            rocksdb::BottommostLevelCompaction::Skip
        });
        let bound = |key: &[u8]| (!key.is_empty()).then(|| key.to_vec());
        self.db
            .compact_range_cf_opt(handle, bound(start), bound(end), &options);
        Ok(())
    }
}
