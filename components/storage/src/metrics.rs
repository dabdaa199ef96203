//! Prometheus metrics of the transaction scheduler, in the default registry (the status server
//! renders it), named as TiKV's.

use std::sync::LazyLock;

use prometheus::{exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, Opts};

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    prometheus::default_registry()
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

fn histogram_by_type(name: &str, help: &str) -> HistogramVec {
    // 10 µs doubling up to about 5 minutes, as the raftstore's.
    let opts = HistogramOpts::new(name, help)
        .buckets(exponential_buckets(0.000_01, 2.0, 26).expect("valid buckets"));
    register(HistogramVec::new(opts, &["type"]).expect("valid metric"))
}

/// From admission to the command's answer, by command (its `_count` counts the commands).
pub static COMMAND_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_by_type(
        "tikv_scheduler_command_duration_seconds",
        "Scheduler write command duration, by command",
    )
});

/// Time a command waited for its keys' latches, by command.
pub static LATCH_WAIT_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_by_type(
        "tikv_scheduler_latch_wait_duration_seconds",
        "Time scheduler commands waited for latches, by command",
    )
});

/// Commands refused because too many bytes were pending (ServerIsBusy), by command.
pub static TOO_BUSY: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_scheduler_too_busy_total",
                "Scheduler commands refused as too busy, by command",
            ),
            &["type"],
        )
        .expect("valid metric"),
    )
});
