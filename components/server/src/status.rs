//! The status server: `/metrics` in Prometheus format and `/status`.

use std::sync::Arc;

use axum::{extract::State, routing::get, Json, Router};
use parking_lot::Mutex;
use raftstore::StoreMeta;
use serde_json::{json, Value};

use crate::metrics;

#[derive(Clone)]
struct StatusState {
    store_meta: Arc<Mutex<StoreMeta>>,
}

pub fn router(store_meta: Arc<Mutex<StoreMeta>>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/status", get(status))
        .with_state(StatusState { store_meta })
}

fn refresh_gauges(state: &StatusState) -> (usize, usize, u64) {
    let meta = state.store_meta.lock();
    let regions = meta.regions.len();
    let leaders = meta.readers.len();
    metrics::REGION_COUNT
        .with_label_values(&["region"])
        .set(regions as i64);
    metrics::REGION_COUNT
        .with_label_values(&["leader"])
        .set(leaders as i64);
    (regions, leaders, meta.store_id.get())
}

async fn render_metrics(State(state): State<StatusState>) -> String {
    refresh_gauges(&state);
    metrics::render()
}

async fn status(State(state): State<StatusState>) -> Json<Value> {
    let (regions, leaders, store_id) = refresh_gauges(&state);
    Json(json!({
        "store_id": store_id,
        "region_count": regions,
        "leader_count": leaders,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
