//! RocksDB tuning knobs, with TiKV's defaults where they matter.

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
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            write_buffer_size: 128 << 20,
            max_background_jobs: 4,
            block_cache_size: 256 << 20,
        }
    }
}
