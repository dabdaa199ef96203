//! Prometheus metrics of raftstore, in the default registry (the status server renders it).

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, Opts};

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    prometheus::default_registry()
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

/// Proposals and reads by kind: `normal`, `conf_change`, `split`, `read_index`, `lease_read`.
pub static PROPOSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_raftstore_proposal_total",
                "Raft proposals and reads, by kind",
            ),
            &["type"],
        )
        .expect("valid metric"),
    )
});

/// Raft entries applied to the data engine.
pub static APPLIED_ENTRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("tikv_raftstore_apply_entries_total", "Raft entries applied")
            .expect("valid metric"),
    )
});

/// Snapshots generated and applied.
pub static SNAPSHOTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_raftstore_snapshot_total",
                "Region snapshots, by generate or apply",
            ),
            &["type"],
        )
        .expect("valid metric"),
    )
});
