//! Prometheus metrics of the raft log storage, in the default registry.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, Opts};

/// Entry reads (`entries` and `term` calls) by where they were answered: `hit` from the entry
/// cache alone, `miss` when the engine was read.
static ENTRY_FETCHES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let fetches = IntCounterVec::new(
        Opts::new(
            "tikv_raftstore_entry_fetches",
            "Raft entry reads, by whether the entry cache answered them",
        ),
        &["type"],
    )
    .expect("valid metric");
    prometheus::default_registry()
        .register(Box::new(fetches.clone()))
        .expect("metric names are unique");
    fetches
});

pub(crate) static ENTRY_CACHE_HITS: LazyLock<IntCounter> =
    LazyLock::new(|| ENTRY_FETCHES.with_label_values(&["hit"]));
pub(crate) static ENTRY_CACHE_MISSES: LazyLock<IntCounter> =
    LazyLock::new(|| ENTRY_FETCHES.with_label_values(&["miss"]));
