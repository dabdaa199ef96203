//! The configuration keys that PD itself accepts, section by section, so that pd-server can load
//! a PD config file: keys of PD's that this PD does not implement are accepted with a warning,
//! while a key that is neither ours nor PD's (a misspelling) stays an error.
//!
//! This is data, written for this project from public descriptions of PD's configuration: the
//! "PD Configuration File" documentation page (pingcap/docs `pd-configuration-file.md`), PD's
//! annotated template `conf/config.toml`, and the TOML names PD gives its settings in
//! `server/config/config.go`, `pkg/schedule/config/config.go`, the security, encryption, log and
//! metric settings it shares with its other services, and the resource-control `[controller]`.
//! It covers PD 3.x to 8.x, including keys that PD still accepts for compatibility
//! (`log-level`, `schedule.disable-*`, `pd-server.trace-region-flow`, ...). Keys of ours are
//! listed too: the table describes PD, not this PD.

use config_types::foreign::{any, listed, KeyTable, Section};

const NOT_IMPLEMENTED: &str = "not implemented by this PD";
const NO_TLS: &str = "this PD serves plain http only";
const NO_ETCD: &str = "an etcd or membership setting; this PD runs as one member without etcd";
const DEPRECATED_LOG: &str = "deprecated by PD; set log.level and log.file.filename instead";

/// PD's keys, for [`config_types::foreign::load`].
pub static PD: KeyTable = KeyTable {
    program: "PD",
    server: "pd-server",
    sections: SECTIONS,
    reason: reason_for,
};

/// Top-level keys that configure PD's embedded etcd or its membership in a PD cluster.
const ETCD_KEYS: &[&str] = &[
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "join",
    "lease",
    "quota-backend-bytes",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "tick-interval",
    "election-interval",
    "enable-prevote",
    "max-request-bytes",
    "force-new-cluster",
    "enable-grpc-gateway",
];

/// Why a PD key has no effect here.
fn reason_for(key: &str) -> &'static str {
    if key.starts_with("security.") {
        NO_TLS
    } else if key == "log-level" || key == "log-file" {
        DEPRECATED_LOG
    } else if ETCD_KEYS.contains(&key) {
        NO_ETCD
    } else {
        NOT_IMPLEMENTED
    }
}

/// Every PD section. Sub-sections are sections of their own; a section's own key list does not
/// repeat them. Arrays of tables (`[[schedule.schedulers]]`, `[[label-property.reject-leader]]`)
/// are keys of their section.
pub static SECTIONS: &[Section] = &[
    listed("", GLOBAL),
    // This PD member's own labels (`zone` and the like): any key.
    any("labels"),
    listed(
        "security",
        &[
            "cacert-path",
            "cert-path",
            "key-path",
            "cert-allowed-cn",
            "redact-info-log",
            "redact-info-mark",
        ],
    ),
    listed(
        "security.encryption",
        &["data-encryption-method", "data-key-rotation-period"],
    ),
    listed(
        "security.encryption.master-key",
        &["type", "key-id", "region", "endpoint", "path"],
    ),
    listed(
        "log",
        &[
            "level",
            "format",
            "disable-timestamp",
            "development",
            "disable-caller",
            "disable-stacktrace",
            "disable-error-verbose",
        ],
    ),
    listed(
        "log.file",
        &[
            "filename",
            "max-size",
            "max-days",
            "max-backups",
            "log-rotate",
        ],
    ),
    listed("log.sampling", &["initial", "thereafter"]),
    listed("metric", &["job", "address", "interval"]),
    listed("schedule", SCHEDULE),
    // Per-store limits, keyed by store id: `[schedule.store-limit.1]`.
    any("schedule.store-limit"),
    listed("replication", REPLICATION),
    listed("pd-server", PD_SERVER),
    // Label properties such as `[[label-property.reject-leader]]`: any key.
    any("label-property"),
    listed("dashboard", DASHBOARD),
    listed("replication-mode", &["replication-mode"]),
    listed("replication-mode.dr-auto-sync", DR_AUTO_SYNC),
    listed(
        "keyspace",
        &[
            "pre-alloc",
            "wait-region-split",
            "wait-region-split-timeout",
            "check-region-split-interval",
        ],
    ),
    listed("micro-service", &["enable-scheduling-fallback"]),
    listed(
        "controller",
        &[
            "degraded-mode-wait-duration",
            "ltb-max-wait-duration",
            "enable-controller-trace-log",
        ],
    ),
    listed("controller.request-unit", REQUEST_UNIT),
];

const GLOBAL: &[&str] = &[
    "name",
    "data-dir",
    "client-urls",
    "advertise-client-urls",
    "peer-urls",
    "advertise-peer-urls",
    "initial-cluster",
    "initial-cluster-state",
    "initial-cluster-token",
    "join",
    "lease",
    "log-level",
    "log-file",
    "tso-save-interval",
    "tso-update-physical-interval",
    "enable-local-tso",
    "max-concurrent-tso-proxy-streamings",
    "tso-proxy-recv-from-client-timeout",
    "quota-backend-bytes",
    "auto-compaction-mode",
    "auto-compaction-retention",
    "tick-interval",
    "election-interval",
    "enable-prevote",
    "max-request-bytes",
    "force-new-cluster",
    "enable-grpc-gateway",
    "enable-dynamic-config",
    "cluster-version",
    "schedulers-payload",
    "namespace-classifier",
];

const SCHEDULE: &[&str] = &[
    "max-snapshot-count",
    "max-pending-peer-count",
    "max-merge-region-size",
    "max-merge-region-keys",
    "max-affinity-merge-region-size",
    "split-merge-interval",
    "switch-witness-interval",
    "enable-one-way-merge",
    "enable-cross-table-merge",
    "patrol-region-interval",
    "patrol-region-worker-count",
    "max-store-down-time",
    "max-store-preparing-time",
    "leader-schedule-limit",
    "leader-schedule-policy",
    "region-schedule-limit",
    "witness-schedule-limit",
    "replica-schedule-limit",
    "merge-schedule-limit",
    "hot-region-schedule-limit",
    "affinity-schedule-limit",
    "split-scatter-schedule-limit",
    "hot-region-cache-hits-threshold",
    "store-balance-rate",
    "store-limit-mode",
    "store-limit-version",
    "tolerant-size-ratio",
    "low-space-ratio",
    "high-space-ratio",
    "region-score-formula-version",
    "scheduler-max-waiting-operator",
    "disable-raft-learner",
    "disable-remove-down-replica",
    "disable-replace-offline-replica",
    "disable-make-up-replica",
    "disable-remove-extra-replica",
    "disable-location-replacement",
    "enable-remove-down-replica",
    "enable-replace-offline-replica",
    "enable-make-up-replica",
    "enable-remove-extra-replica",
    "enable-location-replacement",
    "enable-debug-metrics",
    "enable-joint-consensus",
    "enable-tikv-split-region",
    "enable-heartbeat-breakdown-metrics",
    "enable-heartbeat-concurrent-runner",
    "enable-diagnostic",
    "enable-witness",
    "halt-scheduling",
    "schedulers",
    "hot-regions-write-interval",
    "hot-regions-reserved-days",
    "max-movable-hot-peer-size",
    "slow-store-evicting-affected-store-ratio-threshold",
];

const REPLICATION: &[&str] = &[
    "max-replicas",
    "location-labels",
    "strictly-match-label",
    "enable-placement-rules",
    "enable-placement-rules-cache",
    "isolation-level",
];

const PD_SERVER: &[&str] = &[
    "use-region-storage",
    "max-gap-reset-ts",
    "max-reset-ts-gap",
    "key-type",
    "runtime-services",
    "metric-storage",
    "dashboard-address",
    "trace-region-flow",
    "flow-round-by-digit",
    "min-resolved-ts-persistence-interval",
    "server-memory-limit",
    "server-memory-limit-gc-trigger",
    "enable-gogc-tuner",
    "gc-tuner-threshold",
    "block-safe-point-v1",
];

const DASHBOARD: &[&str] = &[
    "tidb-cacert-path",
    "tidb-cert-path",
    "tidb-key-path",
    "public-path-prefix",
    "internal-proxy",
    "enable-telemetry",
    "enable-experimental",
];

const DR_AUTO_SYNC: &[&str] = &[
    "label-key",
    "primary",
    "dr",
    "primary-replicas",
    "dr-replicas",
    "wait-store-timeout",
    "wait-sync-timeout",
    "wait-recover-timeout",
    "pause-region-split",
];

const REQUEST_UNIT: &[&str] = &[
    "read-base-cost",
    "read-per-batch-base-cost",
    "read-cost-per-byte",
    "write-base-cost",
    "write-per-batch-base-cost",
    "write-cost-per-byte",
    "read-cpu-ms-cost",
];
