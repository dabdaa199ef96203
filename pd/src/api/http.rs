//! The HTTP API, on the same port as gRPC, with PD's paths and JSON shapes.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /pd/api/v1/health` | `[{name, member_id, client_urls, health}]` |
//! | `GET /pd/api/v1/members` | `{header, members, leader, etcd_leader}` |
//! | `GET /pd/api/v1/stores`, `/store/{id}` | `{count, stores: [{store, status}]}`, one `{store, status}` |
//! | `GET /pd/api/v1/regions`, `/regions/count` | `{count, regions: [...]}`, `{count}` |
//! | `GET /pd/api/v1/region/id/{id}`, `/region/key/{key}` | one region (`?format=hex` for a hex key) |
//! | `GET /pd/api/v1/cluster`, `/cluster/status` | `{id, max_peer_count}`, `{raft_bootstrap_time, is_initialized}` |
//! | `GET`/`POST /pd/api/v1/config/replicate` | `{"max-replicas", "location-labels"}` |
//! | `GET`/`POST /pd/api/v1/operators` | running operators; add one |
//! | `GET`/`POST /pd/api/v2/keyspaces`, `GET /pd/api/v2/keyspaces/{name}` | keyspaces |
//! | `GET /pd/api/v1/version`, `/pd/api/v1/status`, `/metrics` | build info, Prometheus metrics |
//! | `GET /dashboard` | the live cluster page (`dashboard.html`), which polls the paths above |
//!
//! Keys are upper-case hex, sizes of regions in MiB, as in PD. Errors are a JSON string with a
//! 4xx/5xx status.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use kvproto::{keyspacepb, metapb, pdpb};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    cluster::{decode_hex, hex_upper, RegionInfo, StoreHealth, StoreInfo},
    error::PdError,
    metrics,
    schedule::{Operator, OperatorStep},
    server::PdState,
};

type AppState = State<Arc<PdState>>;

/// An error answer: a status code and a JSON string, like PD's.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(Value::String(self.1))).into_response()
    }
}

impl From<PdError> for ApiError {
    fn from(e: PdError) -> Self {
        let status = match e {
            PdError::RegionNotFound { .. }
            | PdError::RegionNotFoundForKey { .. }
            | PdError::StoreNotFound { .. }
            | PdError::KeyspaceNotFound { .. } => StatusCode::NOT_FOUND,
            PdError::InvalidValue { .. } | PdError::ClusterIdMismatch { .. } => {
                StatusCode::BAD_REQUEST
            }
            PdError::Duplicated { .. } => StatusCode::CONFLICT,
            PdError::NotBootstrapped => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

type ApiResult = Result<Json<Value>, ApiError>;

pub fn router(state: Arc<PdState>) -> Router {
    Router::new()
        .route("/pd/api/v1/health", get(health))
        .route("/pd/api/v1/members", get(members))
        .route("/pd/api/v1/stores", get(stores))
        .route("/pd/api/v1/store/{id}", get(store))
        .route("/pd/api/v1/regions", get(regions))
        .route("/pd/api/v1/regions/count", get(region_count))
        .route("/pd/api/v1/region/id/{id}", get(region_by_id))
        .route("/pd/api/v1/region/key/{key}", get(region_by_key))
        .route("/pd/api/v1/cluster", get(cluster))
        .route("/pd/api/v1/cluster/status", get(cluster_status))
        .route(
            "/pd/api/v1/config/replicate",
            get(replicate).post(set_replicate),
        )
        .route("/pd/api/v1/operators", get(operators).post(add_operator))
        .route("/pd/api/v2/keyspaces", get(keyspaces).post(create_keyspace))
        .route("/pd/api/v2/keyspaces/{name}", get(keyspace))
        .route("/pd/api/v1/version", get(version))
        .route("/pd/api/v1/status", get(status))
        .route("/metrics", get(render_metrics))
        .route("/dashboard", get(dashboard))
        .with_state(state)
}

fn member_json(member: &pdpb::Member) -> Value {
    json!({
        "name": member.name,
        "member_id": member.member_id,
        "peer_urls": member.peer_urls,
        "client_urls": member.client_urls,
        "binary_version": member.binary_version,
        "deploy_path": member.deploy_path,
        "git_hash": member.git_hash,
    })
}

async fn health(State(state): AppState) -> Json<Value> {
    let m = &state.member;
    Json(json!([{
        "name": m.name,
        "member_id": m.member_id,
        "client_urls": m.client_urls,
        "health": true,
    }]))
}

async fn members(State(state): AppState) -> Json<Value> {
    let member = member_json(&state.member);
    Json(json!({
        "header": { "cluster_id": state.cluster.id() },
        "members": [member],
        "leader": member,
        "etcd_leader": member,
    }))
}

/// Returns the store's state as PD names it: an Up store that has been silent for longer than
/// max-store-down-time is "Down".
fn store_state_name(info: &StoreInfo, health: StoreHealth) -> &'static str {
    let state = info.store.state;
    if state == metapb::StoreState::Up as i32 && health == StoreHealth::Down {
        return "Down";
    }
    metapb::StoreState::try_from(state).map_or("Unknown", |s| s.as_str_name())
}

fn store_json(info: &StoreInfo, health: StoreHealth, counts: &BTreeMap<u64, (u64, u64)>) -> Value {
    let s = &info.store;
    let (region_count, leader_count) = counts.get(&s.id).copied().unwrap_or_default();
    let stats = info.stats.clone().unwrap_or_default();
    json!({
        "store": {
            "id": s.id,
            "address": s.address,
            "labels": s.labels.iter().map(|l| json!({"key": l.key, "value": l.value})).collect::<Vec<_>>(),
            "version": s.version,
            "peer_address": s.peer_address,
            "status_address": s.status_address,
            "git_hash": s.git_hash,
            "start_timestamp": s.start_timestamp,
            "deploy_path": s.deploy_path,
            "last_heartbeat": info.last_heartbeat_ms * 1_000_000,
            "state_name": store_state_name(info, health),
        },
        "status": {
            "capacity": byte_size(stats.capacity),
            "available": byte_size(stats.available),
            "used_size": byte_size(stats.used_size),
            "leader_count": leader_count,
            "region_count": region_count,
            "last_heartbeat_ts": info.last_heartbeat_ms,
        },
    })
}

/// Bytes as PD prints store sizes: the largest binary unit with at most one decimal
/// (`251.9GiB`, `1MiB`, `512B`).
fn byte_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    format!("{}{}", text.trim_end_matches(".0"), UNITS[unit])
}

async fn stores(State(state): AppState) -> ApiResult {
    let stores = state.cluster.stores(false)?;
    let (_, counts) = state.cluster.region_counts();
    let max_down = state.operators.config().max_store_down_time.0;
    let list: Vec<Value> = stores
        .iter()
        .map(|s| store_json(s, state.cluster.store_health(s, max_down), &counts))
        .collect();
    Ok(Json(json!({ "count": list.len(), "stores": list })))
}

async fn store(State(state): AppState, Path(id): Path<u64>) -> ApiResult {
    let info = state.cluster.get_store(id)?;
    let (_, counts) = state.cluster.region_counts();
    let max_down = state.operators.config().max_store_down_time.0;
    let health = state.cluster.store_health(&info, max_down);
    Ok(Json(store_json(&info, health, &counts)))
}

fn peer_json(peer: &metapb::Peer) -> Value {
    let role = metapb::PeerRole::try_from(peer.role).map_or("Unknown", |r| r.as_str_name());
    json!({ "id": peer.id, "store_id": peer.store_id, "role_name": role })
}

fn region_json(info: &RegionInfo) -> Value {
    let r = &info.region;
    let epoch = info.epoch();
    json!({
        "id": r.id,
        "start_key": hex_upper(&r.start_key),
        "end_key": hex_upper(&r.end_key),
        "epoch": { "conf_ver": epoch.conf_ver, "version": epoch.version },
        "peers": r.peers.iter().map(peer_json).collect::<Vec<_>>(),
        "leader": info.leader.as_ref().map(peer_json),
        "down_peers": info.down_peers.iter().map(|d| json!({
            "peer": d.peer.as_ref().map(peer_json),
            "down_seconds": d.down_seconds,
        })).collect::<Vec<_>>(),
        "pending_peers": info.pending_peers.iter().map(peer_json).collect::<Vec<_>>(),
        "approximate_size": info.approximate_size >> 20,
        "approximate_keys": info.approximate_keys,
    })
}

async fn regions(State(state): AppState) -> ApiResult {
    let regions = state.cluster.scan_regions(b"", b"", 0)?;
    let list: Vec<Value> = regions.iter().map(region_json).collect();
    Ok(Json(json!({ "count": list.len(), "regions": list })))
}

async fn region_count(State(state): AppState) -> ApiResult {
    let (count, _) = state.cluster.region_counts();
    Ok(Json(json!({ "count": count })))
}

async fn region_by_id(State(state): AppState, Path(id): Path<u64>) -> ApiResult {
    Ok(Json(region_json(&state.cluster.region_by_id(id)?)))
}

#[derive(Deserialize)]
struct KeyFormat {
    #[serde(default)]
    format: String,
}

async fn region_by_key(
    State(state): AppState,
    Path(key): Path<String>,
    Query(format): Query<KeyFormat>,
) -> ApiResult {
    let key = match format.format.as_str() {
        "hex" => decode_hex(&key).ok_or_else(|| bad_request(format!("invalid hex key {key:?}")))?,
        "" | "raw" => key.into_bytes(),
        other => {
            return Err(bad_request(format!(
                "unknown key format {other:?}; use hex or raw"
            )))
        }
    };
    Ok(Json(region_json(&state.cluster.region_by_key(&key)?)))
}

async fn cluster(State(state): AppState) -> ApiResult {
    let meta = state.cluster.cluster_meta()?;
    Ok(Json(
        json!({ "id": meta.id, "max_peer_count": meta.max_peer_count }),
    ))
}

async fn cluster_status(State(state): AppState) -> Json<Value> {
    let bootstrap_ms = state.cluster.bootstrap_time_ms();
    Json(json!({
        "raft_bootstrap_time_ms": bootstrap_ms,
        "is_initialized": state.cluster.is_bootstrapped(),
    }))
}

fn replicate_json(state: &PdState) -> Value {
    let replication = state.cluster.replication();
    json!({
        "max-replicas": replication.max_replicas,
        "location-labels": replication.location_labels.join(","),
    })
}

async fn replicate(State(state): AppState) -> Json<Value> {
    Json(replicate_json(&state))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ReplicateUpdate {
    max_replicas: Option<u64>,
    location_labels: Option<String>,
}

async fn set_replicate(State(state): AppState, body: axum::body::Bytes) -> ApiResult {
    let update: ReplicateUpdate =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("invalid body: {e}")))?;
    let mut replication = state.cluster.replication();
    if let Some(max_replicas) = update.max_replicas {
        replication.max_replicas = max_replicas;
    }
    if let Some(labels) = update.location_labels {
        replication.location_labels = labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
    }
    state.cluster.set_replication(replication)?;
    Ok(Json(replicate_json(&state)))
}

async fn operators(State(state): AppState) -> Json<Value> {
    Json(json!(state.operators.list()))
}

/// `{"name": "transfer-leader", "region_id": 2, "to_store_id": 3}`,
/// `{"name": "add-peer", "region_id": 2, "store_id": 3}`,
/// `{"name": "remove-peer", "region_id": 2, "store_id": 3}`,
/// `{"name": "split-region", "region_id": 2, "keys": ["7200..."]}` (hex keys).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRequest {
    name: String,
    region_id: u64,
    #[serde(default)]
    store_id: u64,
    #[serde(default)]
    to_store_id: u64,
    #[serde(default)]
    keys: Vec<String>,
}

async fn add_operator(State(state): AppState, body: axum::body::Bytes) -> ApiResult {
    let req: OperatorRequest =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("invalid body: {e}")))?;
    let info = state.cluster.region_by_id(req.region_id)?;
    let find_peer = |store_id: u64| {
        info.region
            .peers
            .iter()
            .find(|p| p.store_id == store_id)
            .copied()
            .ok_or_else(|| {
                bad_request(format!(
                    "region {} has no peer on store {store_id}",
                    req.region_id
                ))
            })
    };
    let step = match req.name.as_str() {
        "transfer-leader" => OperatorStep::TransferLeader {
            peer: find_peer(req.to_store_id)?,
        },
        "remove-peer" => OperatorStep::RemovePeer {
            peer: find_peer(req.store_id)?,
        },
        "add-peer" => {
            state.cluster.get_store(req.store_id)?;
            if find_peer(req.store_id).is_ok() {
                return Err(bad_request(format!("region {} already has a peer on store {}", req.region_id, req.store_id)));
            }
            OperatorStep::AddPeer {
                peer: metapb::Peer {
                    id: state.cluster.alloc_id()?,
                    store_id: req.store_id,
                    ..Default::default()
                },
            }
        }
        "split-region" => {
            let keys = req
                .keys
                .iter()
                .map(|k| decode_hex(k).ok_or_else(|| bad_request(format!("invalid hex key {k:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            if keys.is_empty() {
                return Err(bad_request("split-region needs keys"));
            }
            let region = &info.region;
            let mut previous = &region.start_key;
            for key in &keys {
                if key <= previous || (!region.end_key.is_empty() && *key >= region.end_key) {
                    return Err(bad_request(format!(
                        "split key {} is not inside region {} [{}, {}) or not after the previous \
                         key; give ascending keys strictly inside the region",
                        hex_upper(key),
                        region.id,
                        hex_upper(&region.start_key),
                        hex_upper(&region.end_key)
                    )));
                }
                previous = key;
            }
            OperatorStep::Split { keys }
        }
        other => {
            return Err(bad_request(format!(
                "unknown operator {other:?}; use transfer-leader, add-peer, remove-peer or split-region"
            )))
        }
    };
    state.operators.add(Operator {
        region_id: req.region_id,
        epoch: info.epoch(),
        step,
        reason: "admin".into(),
        created_ms: state.cluster.now_ms(),
    })?;
    // To the leader at once, rather than with its next heartbeat.
    state.patrol(&[info.id()]);
    Ok(Json(Value::String("The operator is created.".into())))
}

fn keyspace_json(meta: &keyspacepb::KeyspaceMeta) -> Value {
    let state =
        keyspacepb::KeyspaceState::try_from(meta.state).map_or("UNKNOWN", |s| s.as_str_name());
    json!({
        "id": meta.id,
        "name": meta.name,
        "state": state,
        "created_at": meta.created_at,
        "state_changed_at": meta.state_changed_at,
        "config": meta.config,
    })
}

async fn keyspaces(State(state): AppState) -> Json<Value> {
    let list: Vec<Value> = state
        .cluster
        .keyspaces()
        .list(0, 0)
        .iter()
        .map(keyspace_json)
        .collect();
    Json(json!({ "keyspaces": list }))
}

async fn keyspace(State(state): AppState, Path(name): Path<String>) -> ApiResult {
    Ok(Json(keyspace_json(&state.cluster.keyspaces().load(&name)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKeyspace {
    name: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

async fn create_keyspace(State(state): AppState, body: axum::body::Bytes) -> ApiResult {
    let req: CreateKeyspace =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("invalid body: {e}")))?;
    let now_secs = (state.cluster.now_ms() / 1000) as i64;
    let meta =
        state
            .cluster
            .keyspaces()
            .create(&req.name, req.config.into_iter().collect(), now_secs)?;
    Ok(Json(keyspace_json(&meta)))
}

async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

async fn status(State(state): AppState) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_hash": "",
        "start_timestamp": state.start_time_secs,
    }))
}

/// The page is compiled into the binary: nothing to install or build beside pd-server.
async fn dashboard() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("dashboard.html"))
}

async fn render_metrics(State(state): AppState) -> String {
    let (regions, _) = state.cluster.region_counts();
    metrics::REGION_COUNT.set(regions as i64);
    let stores = state.cluster.stores(false).map_or(0, |s| s.len());
    metrics::STORE_COUNT.set(stores as i64);
    metrics::render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_round_trip() {
        assert_eq!(
            decode_hex(&hex_upper(b"\x72\x00\xff")),
            Some(b"\x72\x00\xff".to_vec())
        );
        assert_eq!(decode_hex("7"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("+f"), None);
        assert_eq!(decode_hex(""), Some(vec![]));
    }

    #[test]
    fn store_sizes_read_as_pds() {
        assert_eq!(byte_size(0), "0B");
        assert_eq!(byte_size(512), "512B");
        assert_eq!(byte_size(1 << 20), "1MiB");
        assert_eq!(byte_size(270_553_174_016), "252GiB");
        assert_eq!(byte_size(55_466_388_480), "51.7GiB");
    }

    #[test]
    fn silent_up_stores_are_shown_down() {
        let store = |state: metapb::StoreState| StoreInfo {
            store: metapb::Store {
                state: state as i32,
                ..Default::default()
            },
            ..StoreInfo::default()
        };
        let up = store(metapb::StoreState::Up);
        assert_eq!(store_state_name(&up, StoreHealth::Up), "Up");
        assert_eq!(store_state_name(&up, StoreHealth::Down), "Down");
        let offline = store(metapb::StoreState::Offline);
        assert_eq!(store_state_name(&offline, StoreHealth::Down), "Offline");
        let tombstone = store(metapb::StoreState::Tombstone);
        assert_eq!(
            store_state_name(&tombstone, StoreHealth::Tombstone),
            "Tombstone"
        );
    }
}
