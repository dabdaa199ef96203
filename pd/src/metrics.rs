//! Prometheus metrics of pd-server, served at `/metrics` on the client port.

use std::sync::LazyLock;

use prometheus::{
    exponential_buckets, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    REGISTRY
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

/// gRPC requests by method and result (`ok` or the PD error type).
pub static GRPC_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "pd_grpc_requests_total",
                "gRPC requests handled, by method and result",
            ),
            &["method", "result"],
        )
        .expect("valid metric"),
    )
});

/// gRPC handling time by method.
pub static GRPC_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "pd_grpc_request_duration_seconds",
                "Time to handle a gRPC request, by method",
            )
            .buckets(exponential_buckets(0.0000_5, 2.0, 18).expect("valid buckets")),
            &["method"],
        )
        .expect("valid metric"),
    )
});

/// Timestamps handed out.
pub static TSO_TIMESTAMPS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("pd_tso_timestamps_total", "Timestamps handed out").expect("valid metric"),
    )
});

pub static REGION_COUNT: LazyLock<IntGauge> = LazyLock::new(|| {
    register(IntGauge::new("pd_cluster_regions", "Regions known to PD").expect("valid metric"))
});

pub static STORE_COUNT: LazyLock<IntGauge> = LazyLock::new(|| {
    register(IntGauge::new("pd_cluster_stores", "Stores known to PD").expect("valid metric"))
});

/// Operators by kind (`add-peer`, ...) and event (`create`, `finish`, `timeout`).
pub static OPERATORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "pd_schedule_operators_total",
                "Scheduling operators, by kind and event",
            ),
            &["kind", "event"],
        )
        .expect("valid metric"),
    )
});

/// Returns all metrics in the Prometheus text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&REGISTRY.gather(), &mut buffer)
        .expect("text encoding of metrics cannot fail");
    String::from_utf8(buffer).expect("metrics text is UTF-8")
}
