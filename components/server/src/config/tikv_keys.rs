//! The configuration keys that TiKV itself accepts, section by section, so that tikv-server can
//! load a TiKV config file: keys of TiKV's that this store does not implement are accepted with a
//! warning, while a key that is neither ours nor TiKV's (a misspelling) stays an error.
//!
//! This is data, written for this project from public descriptions of TiKV's configuration:
//! the "TiKV Configuration File" documentation page (pingcap/docs `tikv-configuration-file.md`),
//! TiKV's annotated template `etc/config-template.toml`, and the full example TiKV's own tests
//! load (`tests/integrations/config/test-custom.toml`). It covers TiKV 5.x to 8.x, including keys
//! that TiKV still accepts for compatibility (`log-level`, `raftstore.sync-log`, ...).
//! Keys of ours are listed too where TiKV has them: the table describes TiKV, not this store.

use config_types::foreign::{any, listed, KeyTable, Keys, Section};

const NOT_IMPLEMENTED: &str = "not implemented by this store";
const NO_RAFTDB: &str = "raft logs are kept in raft-engine, not in a RocksDB raftdb";

/// TiKV's keys, for [`config_types::foreign::load`].
pub static TIKV: KeyTable = KeyTable {
    program: "TiKV",
    server: "tikv-server",
    sections: SECTIONS,
    reason: reason_for,
};

/// The keys of TiKV's `section`, or `None` if TiKV has no such section. A section that only
/// holds sub-sections (`readpool`) has no keys of its own.
pub fn section(path: &str) -> Option<Keys> {
    TIKV.section(path)
}

/// Whether `key` is a TiKV key of the TiKV section `keys`.
pub fn has_key(keys: Keys, key: &str) -> bool {
    keys.contains(key)
}

/// Why a TiKV key has no effect here.
fn reason_for(key: &str) -> &'static str {
    if key.starts_with("raftdb.") {
        NO_RAFTDB
    } else {
        NOT_IMPLEMENTED
    }
}

/// Every TiKV section. Sub-sections are sections of their own; a section's own key list does
/// not repeat them.
pub static SECTIONS: &[Section] = &[
    listed("", GLOBAL),
    listed("log", &["level", "format", "enable-timestamp"]),
    listed(
        "log.file",
        &["filename", "max-size", "max-days", "max-backups"],
    ),
    listed(
        "memory",
        &[
            "enable-heap-profiling",
            "profiling-sample-per-bytes",
            "enable-thread-exclusive-arena",
        ],
    ),
    listed("quota", QUOTA),
    listed("readpool.unified", READPOOL_UNIFIED),
    listed("readpool.storage", READPOOL_PRIORITIES),
    listed("readpool.coprocessor", READPOOL_PRIORITIES),
    listed("resource-control", &["enabled", "priority-ctl-strategy"]),
    listed("server", SERVER),
    any("server.labels"),
    listed("storage", STORAGE),
    listed(
        "storage.max-ts",
        &[
            "max-drift",
            "cache-sync-interval",
            "action-on-invalid-update",
        ],
    ),
    listed("storage.block-cache", STORAGE_BLOCK_CACHE),
    listed("storage.flow-control", STORAGE_FLOW_CONTROL),
    listed("storage.io-rate-limit", STORAGE_IO_RATE_LIMIT),
    listed(
        "pd",
        &[
            "endpoints",
            "retry-interval",
            "retry-log-every",
            "retry-max-count",
            "enable-forwarding",
        ],
    ),
    listed("metric", &["interval", "address", "job"]),
    listed("raftstore", RAFTSTORE),
    listed("coprocessor", COPROCESSOR),
    listed("coprocessor-v2", &["coprocessor-plugin-directory"]),
    listed("rocksdb", ROCKSDB),
    listed("rocksdb.titan", TITAN_DB),
    listed("rocksdb.defaultcf", COLUMN_FAMILY),
    listed("rocksdb.defaultcf.titan", TITAN_CF),
    listed("rocksdb.writecf", COLUMN_FAMILY),
    listed("rocksdb.lockcf", COLUMN_FAMILY),
    listed("rocksdb.raftcf", COLUMN_FAMILY),
    listed("rocksdb.ver-defaultcf", COLUMN_FAMILY),
    listed("rocksdb.ver-defaultcf.titan", TITAN_CF),
    listed("raftdb", RAFTDB),
    listed("raftdb.titan", TITAN_DB),
    listed("raftdb.defaultcf", COLUMN_FAMILY),
    listed("raftdb.defaultcf.titan", TITAN_CF),
    listed("raft-engine", RAFT_ENGINE),
    listed(
        "security",
        &[
            "ca-path",
            "cert-path",
            "key-path",
            "cert-allowed-cn",
            "redact-info-log",
        ],
    ),
    listed(
        "security.encryption",
        &[
            "data-encryption-method",
            "data-key-rotation-period",
            "enable-file-dictionary-log",
            "file-dictionary-rewrite-threshold",
        ],
    ),
    // Tagged by `type` ("plaintext", "file", "kms"), each type with keys of its own.
    any("security.encryption.master-key"),
    any("security.encryption.previous-master-key"),
    listed(
        "import",
        &[
            "num-threads",
            "stream-channel-window",
            "import-mode-timeout",
            "memory-use-ratio",
        ],
    ),
    listed(
        "backup",
        &[
            "num-threads",
            "batch-size",
            "sst-max-size",
            "enable-auto-tune",
            "s3-multi-part-size",
        ],
    ),
    listed("backup.hadoop", &["home", "linux-user"]),
    listed("log-backup", LOG_BACKUP),
    listed(
        "gc",
        &[
            "batch-keys",
            "max-write-bytes-per-sec",
            "enable-compaction-filter",
            "compaction-filter-skip-version-check",
            "ratio-threshold",
            "num-threads",
        ],
    ),
    listed("pessimistic-txn", PESSIMISTIC_TXN),
    listed("cdc", CDC),
    listed(
        "resolved-ts",
        &[
            "enable",
            "advance-ts-interval",
            "scan-lock-pool-size",
            "memory-quota",
            "incremental-scan-concurrency",
        ],
    ),
    listed("split", SPLIT),
    listed(
        "causal-ts",
        &[
            "alloc-ahead-buffer",
            "renew-interval",
            "renew-batch-min-size",
            "renew-batch-max-size",
        ],
    ),
    listed(
        "in-memory-engine",
        &[
            "enable",
            "capacity",
            "gc-run-interval",
            "mvcc-amplification-threshold",
        ],
    ),
];

/// Top-level keys; the `log-*` ones are TiKV's older spelling of `[log]`.
const GLOBAL: &[&str] = &[
    "abort-on-panic",
    "slow-log-file",
    "slow-log-threshold",
    "memory-usage-limit",
    "memory-usage-high-water",
    "panic-when-unexpected-key-or-data",
    "enable-io-snoop",
    "log-level",
    "log-file",
    "log-format",
    "log-rotation-timespan",
    "log-rotation-size",
];

const QUOTA: &[&str] = &[
    "foreground-cpu-time",
    "foreground-write-bandwidth",
    "foreground-read-bandwidth",
    "background-cpu-time",
    "background-write-bandwidth",
    "background-read-bandwidth",
    "max-delay-duration",
    "enable-auto-tune",
];

const READPOOL_UNIFIED: &[&str] = &[
    "min-thread-count",
    "max-thread-count",
    "stack-size",
    "max-tasks-per-worker",
    "auto-adjust-pool-size",
];

const READPOOL_PRIORITIES: &[&str] = &[
    "use-unified-pool",
    "high-concurrency",
    "normal-concurrency",
    "low-concurrency",
    "max-tasks-per-worker-high",
    "max-tasks-per-worker-normal",
    "max-tasks-per-worker-low",
    "stack-size",
];

const SERVER: &[&str] = &[
    "addr",
    "advertise-addr",
    "status-addr",
    "advertise-status-addr",
    "status-thread-pool-size",
    "labels",
    "grpc-compression-type",
    "grpc-concurrency",
    "grpc-concurrent-stream",
    "grpc-memory-pool-quota",
    "grpc-raft-conn-num",
    "grpc-stream-initial-window-size",
    "grpc-keepalive-time",
    "grpc-keepalive-timeout",
    "max-grpc-send-msg-len",
    "raft-client-grpc-send-msg-buffer",
    "raft-client-queue-size",
    "raft-client-max-backoff",
    "raft-msg-max-batch-size",
    "concurrent-send-snap-limit",
    "concurrent-recv-snap-limit",
    "end-point-recursion-limit",
    "end-point-stream-channel-size",
    "end-point-batch-row-limit",
    "end-point-stream-batch-row-limit",
    "end-point-enable-batch-if-possible",
    "end-point-request-max-handle-duration",
    "end-point-max-concurrency",
    "end-point-perf-level",
    "end-point-memory-quota",
    "end-point-slow-log-threshold",
    "snap-io-max-bytes-per-sec",
    "snap-max-write-bytes-per-sec",
    "snap-max-total-size",
    "stats-concurrency",
    "heavy-load-threshold",
    "heavy-load-wait-duration",
    "enable-request-batch",
    "background-thread-count",
    "forward-max-connections-per-address",
    "reject-messages-on-memory-ratio",
    "health-feedback-interval",
    "simplify-metrics",
];

const STORAGE: &[&str] = &[
    "data-dir",
    "engine",
    "max-key-size",
    "api-version",
    "enable-ttl",
    "ttl-check-poll-interval",
    "gc-ratio-threshold",
    "scheduler-concurrency",
    "scheduler-worker-pool-size",
    "scheduler-pending-write-threshold",
    "scheduler-notify-capacity",
    "enable-async-apply-prewrite",
    "reserve-space",
    "reserve-raft-space",
    "background-error-recovery-window",
    "txn-status-cache-capacity",
    "memory-quota",
];

const STORAGE_BLOCK_CACHE: &[&str] = &[
    "shared",
    "capacity",
    "num-shard-bits",
    "strict-capacity-limit",
    "high-pri-pool-ratio",
    "low-pri-pool-ratio",
    "memory-allocator",
];

const STORAGE_FLOW_CONTROL: &[&str] = &[
    "enable",
    "memtables-threshold",
    "l0-files-threshold",
    "soft-pending-compaction-bytes-limit",
    "hard-pending-compaction-bytes-limit",
];

const STORAGE_IO_RATE_LIMIT: &[&str] = &[
    "max-bytes-per-sec",
    "mode",
    "strict",
    "foreground-read-priority",
    "foreground-write-priority",
    "flush-priority",
    "level-zero-compaction-priority",
    "compaction-priority",
    "replication-priority",
    "load-balance-priority",
    "gc-priority",
    "import-priority",
    "export-priority",
    "other-priority",
];

const RAFTSTORE: &[&str] = &[
    "prevote",
    "raftdb-path",
    "capacity",
    "sync-log",
    "raft-base-tick-interval",
    "raft-heartbeat-ticks",
    "raft-election-timeout-ticks",
    "raft-min-election-timeout-ticks",
    "raft-max-election-timeout-ticks",
    "raft-max-size-per-msg",
    "raft-max-inflight-msgs",
    "raft-entry-max-size",
    "raft-log-compact-sync-interval",
    "raft-log-gc-tick-interval",
    "raft-log-gc-threshold",
    "raft-log-gc-count-limit",
    "raft-log-gc-size-limit",
    "raft-log-reserve-max-ticks",
    "raft-engine-purge-interval",
    "max-manual-flush-rate",
    "raft-entry-cache-life-time",
    "raft-reject-transfer-leader-duration",
    "split-region-check-tick-interval",
    "region-split-check-diff",
    // Older TiKV kept the split sizes here; they moved to [coprocessor].
    "region-max-size",
    "region-split-size",
    "region-compact-check-interval",
    "region-compact-check-step",
    "region-compact-min-tombstones",
    "region-compact-tombstones-percent",
    "region-compact-min-redundant-rows",
    "region-compact-redundant-rows-percent",
    "clean-stale-peer-delay",
    "pd-heartbeat-tick-interval",
    "pd-store-heartbeat-tick-interval",
    "pd-report-min-resolved-ts-interval",
    "report-min-resolved-ts-interval",
    "snap-mgr-gc-tick-interval",
    "snap-gc-timeout",
    "snap-wait-split-duration",
    "snap-generator-pool-size",
    "snap-apply-batch-size",
    "snap-apply-copy-symlink",
    "lock-cf-compact-interval",
    "lock-cf-compact-bytes-threshold",
    "notify-capacity",
    "messages-per-tick",
    "max-peer-down-duration",
    "max-leader-missing-duration",
    "abnormal-leader-missing-duration",
    "peer-stale-state-check-interval",
    "gc-peer-check-interval",
    "leader-transfer-max-log-lag",
    "max-snapshot-file-raw-size",
    "consistency-check-interval",
    "report-region-flow-interval",
    "raft-store-max-leader-lease",
    "right-derive-when-split",
    "allow-remove-leader",
    "merge-max-log-gap",
    "merge-check-tick-interval",
    "use-delete-range",
    "cleanup-import-sst-interval",
    "local-read-batch-size",
    "apply-yield-write-size",
    "apply-max-batch-size",
    "apply-pool-size",
    "apply-reschedule-duration",
    "apply-before-pause-wait-us",
    "apply-yield-duration",
    "store-max-batch-size",
    "store-pool-size",
    "store-reschedule-duration",
    "store-before-pause-wait-us",
    "store-io-pool-size",
    "store-io-notify-capacity",
    "future-poll-size",
    "hibernate-regions",
    "dev-assert",
    "perf-level",
    "evict-cache-on-memory-ratio",
    "cmd-batch",
    "cmd-batch-concurrent-ready-max-count",
    "raft-write-size-limit",
    "raft-write-batch-size-hint",
    "raft-write-wait-duration",
    "waterfall-metrics",
    "io-reschedule-concurrent-max-count",
    "io-reschedule-hotpot-duration",
    "inspect-interval",
    "inspect-cpu-util-thd",
    "check-leader-lease-interval",
    "renew-leader-lease-advance-duration",
    "reactive-memory-lock-tick-interval",
    "reactive-memory-lock-timeout-tick",
    "check-long-uncommitted-interval",
    "long-uncommitted-base-threshold",
    "report-region-buckets-tick-interval",
    "unreachable-backoff",
    "max-entry-cache-warmup-duration",
    "enable-partitioned-raft-kv-compatible-learner",
    "periodic-full-compact-start-times",
    "periodic-full-compact-start-max-cpu",
];

const COPROCESSOR: &[&str] = &[
    "split-region-on-table",
    "batch-split-limit",
    "region-max-size",
    "region-split-size",
    "region-max-keys",
    "region-split-keys",
    "consistency-check-method",
    "perf-level",
    "enable-region-bucket",
    "region-bucket-size",
    "region-size-threshold-for-approximate",
    "region-bucket-merge-size-ratio",
    "prefer-approximate-bucket",
];

/// Options of the data engine's RocksDB instance.
const ROCKSDB: &[&str] = &[
    "max-background-jobs",
    "max-background-flushes",
    "max-background-compactions",
    "max-sub-compactions",
    "max-open-files",
    "max-manifest-file-size",
    "create-if-missing",
    "wal-recovery-mode",
    "wal-dir",
    "wal-ttl-seconds",
    "wal-size-limit",
    "max-total-wal-size",
    "enable-statistics",
    "stats-dump-period",
    "compaction-readahead-size",
    "info-log-max-size",
    "info-log-roll-time",
    "info-log-keep-log-file-num",
    "info-log-dir",
    "info-log-level",
    "rate-bytes-per-sec",
    "rate-limiter-refill-period",
    "rate-limiter-mode",
    "rate-limiter-auto-tuned",
    "bytes-per-sync",
    "wal-bytes-per-sync",
    "writable-file-max-buffer-size",
    "use-direct-io-for-flush-and-compaction",
    "enable-pipelined-write",
    "enable-multi-batch-write",
    "enable-unordered-write",
    "allow-concurrent-memtable-write",
    "write-buffer-limit",
    "write-buffer-flush-oldest-first",
    "track-and-verify-wals-in-manifest",
];

/// Options of the raft log's RocksDB instance (TiKV's alternative to raft-engine).
const RAFTDB: &[&str] = &[
    "max-background-jobs",
    "max-background-flushes",
    "max-sub-compactions",
    "max-open-files",
    "max-manifest-file-size",
    "create-if-missing",
    "wal-recovery-mode",
    "wal-dir",
    "wal-ttl-seconds",
    "wal-size-limit",
    "max-total-wal-size",
    "enable-statistics",
    "stats-dump-period",
    "compaction-readahead-size",
    "info-log-max-size",
    "info-log-roll-time",
    "info-log-keep-log-file-num",
    "info-log-dir",
    "info-log-level",
    "bytes-per-sync",
    "wal-bytes-per-sync",
    "writable-file-max-buffer-size",
    "use-direct-io-for-flush-and-compaction",
    "enable-pipelined-write",
    "allow-concurrent-memtable-write",
];

/// Titan (key-value separation) options of a RocksDB instance.
const TITAN_DB: &[&str] = &[
    "enabled",
    "dirname",
    "disable-gc",
    "max-background-gc",
    "purge-obsolete-files-period",
];

/// Options of one column family (`[rocksdb.defaultcf]`, `[rocksdb.writecf]`, ...).
const COLUMN_FAMILY: &[&str] = &[
    "block-size",
    "block-cache-size",
    "disable-block-cache",
    "cache-index-and-filter-blocks",
    "pin-l0-filter-and-index-blocks",
    "use-bloom-filter",
    "optimize-filters-for-hits",
    "optimize-filters-for-memory",
    "whole-key-filtering",
    "bloom-filter-bits-per-key",
    "block-based-bloom-filter",
    "ribbon-filter-above-level",
    "read-amp-bytes-per-bit",
    "compression-per-level",
    "bottommost-level-compression",
    "bottommost-zstd-compression-dict-size",
    "bottommost-zstd-compression-sample-size",
    "write-buffer-size",
    "write-buffer-limit",
    "max-write-buffer-number",
    "min-write-buffer-number-to-merge",
    "max-bytes-for-level-base",
    "target-file-size-base",
    "level0-file-num-compaction-trigger",
    "level0-slowdown-writes-trigger",
    "level0-stop-writes-trigger",
    "max-compaction-bytes",
    "compaction-pri",
    "dynamic-level-bytes",
    "num-levels",
    "max-bytes-for-level-multiplier",
    "compaction-style",
    "disable-auto-compactions",
    "disable-write-stall",
    "soft-pending-compaction-bytes-limit",
    "hard-pending-compaction-bytes-limit",
    "force-consistency-checks",
    "prop-size-index-distance",
    "prop-keys-index-distance",
    "enable-doubly-skiplist",
    "enable-compaction-guard",
    "compaction-guard-min-output-file-size",
    "compaction-guard-max-output-file-size",
    "prepopulate-block-cache",
    "format-version",
    "checksum",
    "max-compactions",
    "ttl",
    "periodic-compaction-seconds",
];

/// Titan options of one column family.
const TITAN_CF: &[&str] = &[
    "min-blob-size",
    "blob-file-compression",
    "zstd-dict-size",
    "shared-blob-cache",
    "blob-cache-size",
    "min-gc-batch-size",
    "max-gc-batch-size",
    "discardable-ratio",
    "sample-ratio",
    "merge-small-file-threshold",
    "blob-run-mode",
    "level-merge",
    "range-merge",
    "max-sorted-runs",
    "gc-merge-rewrite",
];

const RAFT_ENGINE: &[&str] = &[
    "enable",
    "dir",
    "batch-compression-threshold",
    "bytes-per-sync",
    "target-file-size",
    "purge-threshold",
    "recovery-mode",
    "recovery-read-block-size",
    "recovery-threads",
    "memory-limit",
    "format-version",
    "enable-log-recycle",
    "prefill-for-recycle",
];

const LOG_BACKUP: &[&str] = &[
    "enable",
    "file-size-limit",
    "initial-scan-pending-memory-quota",
    "initial-scan-rate-limit",
    "max-flush-interval",
    "min-ts-interval",
    "num-threads",
    "temp-path",
];

const PESSIMISTIC_TXN: &[&str] = &[
    "enabled",
    "wait-for-lock-timeout",
    "wake-up-delay-duration",
    "pipelined",
    "in-memory",
    "in-memory-peer-size-limit",
    "in-memory-instance-size-limit",
];

const CDC: &[&str] = &[
    "min-ts-interval",
    "old-value-cache-size",
    "old-value-cache-memory-quota",
    "sink-memory-quota",
    "hibernate-regions-compatible",
    "incremental-scan-threads",
    "incremental-scan-concurrency",
    "incremental-scan-concurrency-limit",
    "incremental-scan-speed-limit",
    "incremental-fetch-speed-limit",
    "incremental-scan-ts-filter-ratio",
    "tso-worker-threads",
];

const SPLIT: &[&str] = &[
    "detect-times",
    "qps-threshold",
    "byte-threshold",
    "region-cpu-overload-threshold-ratio",
    "sample-num",
    "sample-threshold",
    "split-balance-score",
    "split-contained-score",
];
