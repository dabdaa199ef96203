//! RocksDB tuning knobs, with TiKV's defaults where they matter.

use std::time::Duration;

/// Options of the data engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RocksConfig {
    /// Memtable size per column family before it is flushed. Default 128 MiB, as TiKV's
    /// `default` and `write` column families.
    pub write_buffer_size: usize,
    /// Background flush and compaction threads. Default 4 (capped by the number of cores).
    pub max_background_jobs: i32,
    /// Shared block cache. Default 256 MiB.
    pub block_cache_size: usize,
    /// Memtables a column family may hold, the one taking writes included, before writes
    /// stall for a flush. Default 5, as TiKV's `default` and `write` column families
    /// (RocksDB's own default of 2 stalls writes whenever one flush runs long).
    pub max_write_buffer_number: i32,
    /// SST files written by flushes and compactions are synced every this many bytes rather
    /// than left to the kernel's writeback, and each sync waits for the previous range
    /// (RocksDB's `strict_bytes_per_sync`), so a file never has more than this many bytes
    /// queued on the disk. Default 1 MiB, as TiKV's `rocksdb.bytes-per-sync`.
    pub bytes_per_sync: u64,
    /// The same for the write-ahead log. Default 512 KiB, as TiKV's
    /// `rocksdb.wal-bytes-per-sync`.
    pub wal_bytes_per_sync: u64,
    /// Flushes and compactions write at most this many bytes a second (RocksDB's rate
    /// limiter; flushes go first). Default 10 GiB, as TiKV's `rocksdb.rate-bytes-per-sec`:
    /// no limit on any disk of today.
    pub rate_bytes_per_sec: u64,
    /// How often the limiter hands out its next share of bytes. Default 100 ms, as TiKV's
    /// `rocksdb.rate-limiter-refill-period`.
    pub rate_limiter_refill_period: Duration,
    /// The limit follows the recent demand, between a twentieth of `rate_bytes_per_sec` and
    /// all of it. Default true, as TiKV's `rocksdb.rate-limiter-auto-tuned`.
    pub rate_limiter_auto_tuned: bool,
    /// Write without RocksDB's write-ahead log, as TiKV's raftstore-v2 does: the raft log is
    /// the only log. Column families then flush together (`atomic_flush`), so the files on
    /// disk always hold one prefix of the writes; [`engine_traits::KvEngine::sync`] and synced
    /// writes flush the memtables instead of syncing a log; a crash loses the writes since the
    /// last flush, and raftstore applies them again from the raft log, which it keeps until a
    /// flush has covered them. Default false (PD's storage and the RocksDB raft log need
    /// their WAL); tikv-server sets it for its data engine.
    pub disable_wal: bool,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            write_buffer_size: 128 << 20,
            max_background_jobs: 4,
            block_cache_size: 256 << 20,
            max_write_buffer_number: 5,
            bytes_per_sync: 1 << 20,
            wal_bytes_per_sync: 512 << 10,
            rate_bytes_per_sec: 10 << 30,
            rate_limiter_refill_period: Duration::from_millis(100),
            rate_limiter_auto_tuned: true,
            disable_wal: false,
        }
    }
}
