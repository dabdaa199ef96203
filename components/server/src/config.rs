//! tikv-server configuration: a TOML file (`--config`) with TiKV's sections, overridden by
//! command-line flags. `etc/tikv.toml` lists every key with its default.
//!
//! A config file written for TiKV loads as it is: the keys this store implements are honoured,
//! TiKV's other keys ([`tikv_keys`]) are accepted and reported as [`IgnoredKey`]s, and any other
//! key is an error (see [`Config::from_file`]).

mod load;
#[cfg(test)]
mod tests;
pub mod tikv_keys;

use std::path::PathBuf;

use config_types::{ReadableDuration, ReadableSize};
use raft_log_engine::RaftEngineConfig;
use serde::{Deserialize, Serialize};

pub use load::{IgnoredKey, LoadedConfig};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageSection,
    pub pd: PdConfig,
    pub raftstore: raftstore::Config,
    /// When regions split by size (TiKV keeps these under `[coprocessor]`).
    pub coprocessor: raftstore::SplitCheckConfig,
    pub pessimistic_txn: PessimisticTxnConfig,
    pub gc: GcConfig,
    pub rocksdb: RocksDbConfig,
    pub raft_engine: RaftEngineSection,
    pub log: LogConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on for clients and other stores. Default `"127.0.0.1:20160"`.
    pub addr: String,
    /// Address given to PD for clients and stores. Default: `addr`.
    pub advertise_addr: String,
    /// Address of the status server (`/metrics`, `/status`). Default `"127.0.0.1:20180"`.
    pub status_addr: String,
    /// How TiKV would compress gRPC responses: `"none"`, `"deflate"` or `"gzip"`. The value is
    /// checked, but this store never compresses; any value but `"none"` is reported as ignored.
    /// Default `"none"`.
    pub grpc_compression_type: GrpcCompressionType,
    /// Threads of the async runtime that serves gRPC (clients and the other stores' raft
    /// messages) and the store's background tasks. `0` means one per CPU, at most 5 (TiKV's
    /// default). Stores that share a machine do better with their share of its CPUs each:
    /// three stores on two CPUs with 10,000 regions did 14% more puts and 23% more gets with
    /// one thread each than with two. Default `0`.
    pub grpc_concurrency: usize,
}

/// TiKV's default `server.grpc-concurrency`, the most threads `0` picks.
const DEFAULT_GRPC_CONCURRENCY: usize = 5;

impl ServerConfig {
    /// How many runtime threads `grpc-concurrency` asks for on this machine.
    pub fn grpc_threads(&self) -> usize {
        match self.grpc_concurrency {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(DEFAULT_GRPC_CONCURRENCY),
            n => n,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:20160".into(),
            advertise_addr: String::new(),
            status_addr: "127.0.0.1:20180".into(),
            grpc_compression_type: GrpcCompressionType::None,
            grpc_concurrency: 0,
        }
    }
}

/// `server.grpc-compression-type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrpcCompressionType {
    #[default]
    None,
    Deflate,
    Gzip,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct StorageSection {
    /// Where data and raft logs are kept. Default `"./tikv-data"`.
    pub data_dir: PathBuf,
    /// Largest key a write may carry. Default `"8KiB"`.
    pub max_key_size: ReadableSize,
    /// The key encoding TiKV would be started with: 1 or 2. This store serves both API versions
    /// side by side (each request names its own), so the value is only checked and recorded.
    /// Default 1.
    pub api_version: u8,
    /// Whether raw writes may carry a TTL. This store accepts TTLs in every API version; the
    /// value is checked (API V2 requires it, as in TiKV) and recorded. Default `false`.
    pub enable_ttl: bool,
    /// Transactional writes are refused with ServerIsBusy while the writes in flight add up to
    /// more than this. Default `"100MiB"`, as in TiKV.
    pub scheduler_pending_write_threshold: ReadableSize,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            data_dir: PathBuf::from("./tikv-data"),
            max_key_size: ReadableSize::kib(8),
            api_version: 1,
            enable_ttl: false,
            scheduler_pending_write_threshold: ReadableSize::mib(100),
        }
    }
}

/// `[pessimistic-txn]`: how pessimistic lock requests wait for other transactions' locks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct PessimisticTxnConfig {
    /// The longest a pessimistic lock request waits for a lock before answering it (and the
    /// ceiling of a request's own wait timeout). Default `"1s"`, as in TiKV.
    pub wait_for_lock_timeout: ReadableDuration,
    /// When a lock is released its oldest waiter runs at once and the others this much later.
    /// Default `"20ms"`, as in TiKV.
    pub wake_up_delay_duration: ReadableDuration,
    /// TiKV answers a pessimistic lock request before its lock is replicated. This store always
    /// replicates first; `true` is reported as ignored. Default `false`.
    pub pipelined: bool,
}

impl Default for PessimisticTxnConfig {
    fn default() -> Self {
        PessimisticTxnConfig {
            wait_for_lock_timeout: ReadableDuration::millis(1000),
            wake_up_delay_duration: ReadableDuration::millis(20),
            pipelined: false,
        }
    }
}

/// `[gc]`: the GC worker, which removes versions no read at or above PD's GC safe point can
/// see, in the regions this store leads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct GcConfig {
    /// Keys handled per GC write. Default 512, as in TiKV.
    pub batch_keys: u64,
    /// Bytes of GC writes per second, at most; `"0"` is unlimited. Default `"0"`.
    pub max_write_bytes_per_sec: ReadableSize,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            batch_keys: 512,
            max_write_bytes_per_sec: ReadableSize(0),
        }
    }
}

/// `[rocksdb]`: the data engine's RocksDB options this store implements (TiKV's others are
/// accepted and reported as ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RocksDbConfig {
    /// Background flush and compaction threads, at least 2 and at most the number of cores.
    /// Default 4.
    pub max_background_jobs: i32,
    /// Files written by flushes and compactions are synced every this many bytes, each waiting
    /// for the previous range's writeback; `"0"` leaves it to the kernel's writeback. Default
    /// `"1MiB"`, as in TiKV.
    pub bytes_per_sync: ReadableSize,
    /// Flushes and compactions write at most this many bytes a second; flushes go first.
    /// Default `"10GiB"`, as in TiKV: no limit in practice. A lower limit shields the raft
    /// log's syncs from bursts of background writes on a shared disk, but writes stall once
    /// flushes fall behind (see ARCHITECTURE.md).
    pub rate_bytes_per_sec: ReadableSize,
    /// How often the limiter hands out its next share. Default `"100ms"`, as in TiKV.
    pub rate_limiter_refill_period: ReadableDuration,
    /// The limit follows the recent demand, between a twentieth of `rate-bytes-per-sec` and
    /// all of it. Default `true`, as in TiKV.
    pub rate_limiter_auto_tuned: bool,
}

impl Default for RocksDbConfig {
    fn default() -> Self {
        let engine = engine_rocks::RocksConfig::default();
        RocksDbConfig {
            max_background_jobs: engine.max_background_jobs,
            bytes_per_sync: ReadableSize(engine.bytes_per_sync),
            rate_bytes_per_sec: ReadableSize(engine.rate_bytes_per_sec),
            rate_limiter_refill_period: ReadableDuration(engine.rate_limiter_refill_period),
            rate_limiter_auto_tuned: engine.rate_limiter_auto_tuned,
        }
    }
}

impl RocksDbConfig {
    /// The engine's options: these keys over the engine's defaults, without the WAL (as TiKV's
    /// raftstore-v2: the raft log is the only log, raft log GC waits for a memtable flush to
    /// cover what it drops, and a restart applies the rest again from the raft log).
    pub fn engine(&self) -> engine_rocks::RocksConfig {
        engine_rocks::RocksConfig {
            max_background_jobs: self.max_background_jobs,
            bytes_per_sync: self.bytes_per_sync.0,
            rate_bytes_per_sec: self.rate_bytes_per_sec.0,
            rate_limiter_refill_period: self.rate_limiter_refill_period.0,
            rate_limiter_auto_tuned: self.rate_limiter_auto_tuned,
            disable_wal: true,
            ..Default::default()
        }
    }
}

/// `[raft-engine]`: the raft log store (TiKV's other raft-engine keys are accepted and reported
/// as ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RaftEngineSection {
    /// Where the raft logs live; a separate fast disk here keeps the logs' syncs off the data
    /// disk. A relative path is taken from the working directory. Default `""`: `raft` under
    /// `storage.data-dir` (TiKV's default is `raft-engine` there). A store refuses to start on
    /// an empty raft log while its data engine holds regions.
    pub dir: String,
    /// Size of each log file before the next is started. Default `"128MiB"`, as TiKV.
    pub target_file_size: ReadableSize,
    /// Total log size above which the oldest files are purged (their live entries rewritten).
    /// Default `"10GiB"`, as TiKV.
    pub purge_threshold: ReadableSize,
    /// A write of at least this many bytes is LZ4-compressed; `"0"` never compresses.
    /// Default `"8KiB"`, as TiKV.
    pub batch_compression_threshold: ReadableSize,
}

impl Default for RaftEngineSection {
    fn default() -> Self {
        let engine = RaftEngineConfig::new("");
        RaftEngineSection {
            dir: String::new(),
            target_file_size: ReadableSize(engine.target_file_size),
            purge_threshold: ReadableSize(engine.purge_threshold),
            batch_compression_threshold: ReadableSize(engine.batch_compression_threshold),
        }
    }
}

impl RaftEngineSection {
    /// The raft log's options, its directory resolved against `data_dir`.
    pub fn engine(&self, data_dir: &std::path::Path) -> RaftEngineConfig {
        let dir = if self.dir.is_empty() {
            data_dir.join("raft")
        } else {
            PathBuf::from(&self.dir)
        };
        RaftEngineConfig {
            dir,
            target_file_size: self.target_file_size.0,
            purge_threshold: self.purge_threshold.0,
            batch_compression_threshold: self.batch_compression_threshold.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct PdConfig {
    /// PD client URLs. Default `["127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
}

impl Default for PdConfig {
    fn default() -> Self {
        PdConfig {
            endpoints: vec!["127.0.0.1:2379".into()],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`. Default `"info"`.
    pub level: String,
    pub file: LogFile,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            file: LogFile::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogFile {
    /// Log file; empty means standard error. Default empty.
    pub filename: String,
}

impl Config {
    /// Fills derived defaults and checks the values.
    ///
    /// # Errors
    ///
    /// A message naming the bad setting.
    pub fn finish(&mut self) -> Result<(), String> {
        if self.server.advertise_addr.is_empty() {
            self.server.advertise_addr = self.server.addr.clone();
        }
        if self.pd.endpoints.is_empty() {
            return Err("pd.endpoints must name at least one PD".into());
        }
        for endpoint in &mut self.pd.endpoints {
            if let Some(rest) = endpoint.strip_prefix("http://") {
                *endpoint = rest.to_string();
            }
        }
        if self.storage.max_key_size.0 == 0 {
            return Err("storage.max-key-size must not be 0".into());
        }
        if self.storage.scheduler_pending_write_threshold.0 == 0 {
            return Err("storage.scheduler-pending-write-threshold must not be 0".into());
        }
        match (self.storage.api_version, self.storage.enable_ttl) {
            (1, _) | (2, true) => {}
            (2, false) => return Err("storage.enable-ttl must be true with api-version 2".into()),
            (other, _) => return Err(format!("storage.api-version must be 1 or 2, not {other}")),
        }
        let wait = self.pessimistic_txn.wait_for_lock_timeout.0;
        if wait.is_zero() || wait > std::time::Duration::from_secs(3600) {
            return Err("pessimistic-txn.wait-for-lock-timeout must be between 1ms and 1h".into());
        }
        if self.raft_engine.target_file_size.0 == 0 {
            return Err("raft-engine.target-file-size must not be 0".into());
        }
        if self.gc.batch_keys == 0 {
            return Err("gc.batch-keys must not be 0".into());
        }
        if self.rocksdb.max_background_jobs < 1 {
            return Err("rocksdb.max-background-jobs must be at least 1".into());
        }
        if self.rocksdb.rate_bytes_per_sec.0 == 0 {
            return Err(
                "rocksdb.rate-bytes-per-sec must not be 0 (the default, \"10GiB\", \
                        does not limit)"
                    .into(),
            );
        }
        let refill = self.rocksdb.rate_limiter_refill_period.0;
        if refill.is_zero() || refill > std::time::Duration::from_secs(1) {
            return Err(
                "rocksdb.rate-limiter-refill-period must be more than 0 and at most 1s".into(),
            );
        }
        self.raftstore.validate()?;
        self.coprocessor.validate()
    }
}
