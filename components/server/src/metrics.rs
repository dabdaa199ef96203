//! Prometheus metrics of tikv-server, served at `/metrics` on the status address.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::{
    exponential_buckets, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, TextEncoder,
};

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    prometheus::default_registry()
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

/// Raft messages received from other stores (snapshots included), as TiKV counts them.
pub static RAFT_MESSAGES_RECEIVED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "tikv_server_raft_message_recv_total",
            "Raft messages received from other stores",
        )
        .expect("valid metric"),
    )
});

pub static GRPC_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_grpc_msg_total",
                "gRPC requests handled, by method and result",
            ),
            &["type", "result"],
        )
        .expect("valid metric"),
    )
});

pub static GRPC_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "tikv_grpc_msg_duration_seconds",
                "gRPC request latency, by method",
            )
            .buckets(exponential_buckets(0.000_05, 2.0, 20).expect("valid buckets")),
            &["type"],
        )
        .expect("valid metric"),
    )
});

/// Requests to the raft engine (`RaftKv`) that completed, by kind (`snapshot`, `write`):
/// from the storage layer's call to the snapshot or the applied write.
pub static ENGINE_ASYNC_REQUEST_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "tikv_storage_engine_async_request_duration_seconds",
                "Bucketed histogram of requests to the raft engine, by type",
            )
            .buckets(exponential_buckets(0.000_01, 2.0, 26).expect("valid buckets")),
            &["type"],
        )
        .expect("valid metric"),
    )
});

pub static GC_KEYS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_gcworker_gc_keys",
                "Versions the GC worker looked at (scanned) and removed (deleted), by column family",
            ),
            &["cf", "tag"],
        )
        .expect("valid metric"),
    )
});

pub static GC_SAFE_POINT: LazyLock<IntGauge> = LazyLock::new(|| {
    register(
        IntGauge::new(
            "tikv_gcworker_autogc_safe_point",
            "The GC safe point the GC worker last started a round at",
        )
        .expect("valid metric"),
    )
});

/// Regions with a peer on this store (`type="region"`) and those it leads (`type="leader"`),
/// as TiKV exports them (its dashboards select the type).
pub static REGION_COUNT: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "tikv_raftstore_region_count",
                "Regions with a peer on this store, and those it leads",
            ),
            &["type"],
        )
        .expect("valid metric"),
    )
});

/// Records one gRPC request.
pub fn observe_grpc(method: &'static str, started: Instant, region_error: bool) {
    let result = if region_error { "region_error" } else { "ok" };
    GRPC_REQUESTS.with_label_values(&[method, result]).inc();
    GRPC_DURATION
        .with_label_values(&[method])
        .observe(started.elapsed().as_secs_f64());
}

/// Returns all registered metrics in the Prometheus text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&prometheus::gather(), &mut buffer)
        .expect("text encoding of metrics cannot fail");
    String::from_utf8(buffer).expect("metrics text is UTF-8")
}
