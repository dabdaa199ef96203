//! Start-up and serving: opens the data directory, loads the metadata, and serves gRPC and the
//! HTTP API together on each client URL until shutdown.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kvproto::{keyspacepb::keyspace_server::KeyspaceServer, pdpb, pdpb::pd_server::PdServer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tracing::{error, info};

use crate::{
    api,
    cluster::Cluster,
    config::{split_urls, Config, ConfigError},
    error::PdError,
    schedule::{HeartbeatStreams, OperatorController},
    storage::{self, encode_u64, keys, load_u64, MetaStore, StorageError},
    tso::{system_clock, Clock, TimestampOracle},
};

/// Everything the gRPC and HTTP handlers share.
pub struct PdState {
    pub cluster: Cluster,
    pub tso: TimestampOracle,
    pub operators: OperatorController,
    /// Where steps for region leaders are pushed.
    pub heartbeat_streams: HeartbeatStreams,
    pub member: pdpb::Member,
    pub start_time_secs: u64,
}

impl PdState {
    /// Opens PD's metadata in `store`.
    ///
    /// # Errors
    ///
    /// [`ServerError::MemberMismatch`] if the data belongs to a PD member with another name; a
    /// storage error.
    pub fn open(
        store: Arc<dyn MetaStore>,
        config: &Config,
        clock: Clock,
    ) -> Result<Self, ServerError> {
        let (cluster_id, member) = load_identity(store.as_ref(), config, &clock)?;
        let tso = TimestampOracle::open(store.clone(), clock.clone(), config.tso_save_interval.0)?;
        let cluster = Cluster::open(store, cluster_id, config.replication.clone(), clock.clone())?;
        let member = pdpb::Member {
            name: member.name,
            member_id: member.member_id,
            peer_urls: split_urls(&config.advertise_peer_urls)
                .map(with_scheme)
                .collect(),
            client_urls: split_urls(&config.advertise_client_urls)
                .map(with_scheme)
                .collect(),
            binary_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        Ok(PdState {
            cluster,
            tso,
            operators: OperatorController::new(config.schedule.clone()),
            heartbeat_streams: HeartbeatStreams::default(),
            member,
            start_time_secs: clock() / 1000,
        })
    }
}

impl PdState {
    /// Runs the checkers over `region_ids` and pushes the steps due to the leaders' stores.
    pub fn patrol(&self, region_ids: &[u64]) {
        let dispatches = self.operators.patrol(&self.cluster, region_ids);
        self.heartbeat_streams.push(self.cluster.id(), dispatches);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Pd(#[from] PdError),
    #[error("cannot create data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory belongs to PD member {stored:?} of cluster {cluster_id}, not {configured:?}; \
         start with --name {stored} or use another --data-dir"
    )]
    MemberMismatch {
        stored: String,
        configured: String,
        cluster_id: u64,
    },
    #[error(
        "{} is not a PD data directory (it holds {found}); use an empty or PD-owned --data-dir",
        path.display()
    )]
    ForeignDataDir { path: PathBuf, found: String },
    #[error("cannot listen on {addr}: {source}; is another process using the port?")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server on {addr} failed: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The identity of this PD member, saved in its data directory.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberRecord {
    pub name: String,
    pub member_id: u64,
}

/// Loads the cluster id and member record, creating both on first start.
fn load_identity(
    store: &dyn MetaStore,
    config: &Config,
    clock: &Clock,
) -> Result<(u64, MemberRecord), ServerError> {
    let record = match store.get(keys::MEMBER)? {
        Some(bytes) => {
            serde_json::from_slice::<MemberRecord>(&bytes).map_err(|e| StorageError::Corrupt {
                key: keys::MEMBER.into(),
                reason: e.to_string(),
            })?
        }
        None => {
            let record = MemberRecord {
                name: config.name.clone(),
                member_id: random_u64().max(1),
            };
            let bytes = serde_json::to_vec(&record).expect("member record serializes");
            store.put(keys::MEMBER.into(), bytes)?;
            record
        }
    };
    let cluster_id = match load_u64(store, keys::CLUSTER_ID)? {
        Some(id) => id,
        None => {
            // As PD: the creation time in the high 32 bits, random low bits.
            let id = ((clock() / 1000) << 32) | (random_u64() & 0xFFFF_FFFF);
            store.put(keys::CLUSTER_ID.into(), encode_u64(id))?;
            info!(cluster_id = id, "new cluster id generated");
            id
        }
    };
    if record.name != config.name {
        return Err(ServerError::MemberMismatch {
            stored: record.name,
            configured: config.name.clone(),
            cluster_id,
        });
    }
    Ok((cluster_id, record))
}

fn random_u64() -> u64 {
    // RandomState is seeded from the OS per process; hashing nothing yields random bits.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn with_scheme(url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

/// Refuses a data directory that holds something other than PD metadata, such as a
/// tikv-server's data, before RocksDB writes into it.
fn check_data_dir(dir: &Path) -> Result<PathBuf, ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let meta_dir = dir.join("meta");
    if !meta_dir.exists() {
        let entries: Vec<String> = std::fs::read_dir(dir)
            .map_err(|source| ServerError::DataDir {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !entries.is_empty() {
            return Err(ServerError::ForeignDataDir {
                path: dir.to_path_buf(),
                found: entries.join(", "),
            });
        }
    }
    Ok(meta_dir)
}

/// A running PD: its shared state and the addresses it listens on.
pub struct Server {
    pub state: Arc<PdState>,
    listeners: Vec<TcpListener>,
}

impl Server {
    /// Opens the data directory and binds the client URLs.
    ///
    /// # Errors
    ///
    /// Any [`ServerError`]: bad config, foreign or corrupt data directory, busy port.
    pub async fn open(mut config: Config) -> Result<Server, ServerError> {
        config.finish()?;
        let meta_dir = check_data_dir(&config.data_dir)?;
        let store: Arc<dyn MetaStore> = Arc::new(storage::open_rocks(&meta_dir)?);
        let state = Arc::new(PdState::open(store, &config, system_clock())?);
        let mut listeners = Vec::new();
        for addr in config.listen_addrs()? {
            let listener = TcpListener::bind(&addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: addr.clone(),
                    source,
                })?;
            listeners.push(listener);
        }
        Ok(Server { state, listeners })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes in-flight requests
    /// and returns.
    ///
    /// # Errors
    ///
    /// [`ServerError::Serve`] if a listener fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let state = self.state;
        let renewer = tokio::spawn(renew_tso_window(state.clone()));
        let patrol = tokio::spawn(patrol_regions(state.clone()));
        let balancer = tokio::spawn(balance_leaders(state.clone()));
        let routes =
            tonic::service::Routes::new(PdServer::new(api::grpc::PdService::new(state.clone())))
                .add_service(KeyspaceServer::new(api::grpc::KeyspaceService::new(
                    state.clone(),
                )))
                .into_axum_router()
                .merge(api::http::router(state.clone()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut servers = Vec::new();
        for listener in self.listeners {
            let addr = listener.local_addr().map_err(|source| ServerError::Serve {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            info!(%addr, cluster_id = state.cluster.id(), "pd-server is serving gRPC and HTTP");
            let mut stop = stop_rx.clone();
            let app = routes.clone();
            servers.push(tokio::spawn(async move {
                // Small replies (TSO, heartbeats) must not wait out Nagle and delayed ACKs.
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    })
                    .await
                    .map_err(|source| ServerError::Serve { addr, source })
            }));
        }
        shutdown.await;
        info!("pd-server shutting down");
        let _ = stop_tx.send(true);
        let mut result = Ok(());
        for server in servers {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => error!(error = %e, "server task panicked"),
            }
        }
        renewer.abort();
        patrol.abort();
        balancer.abort();
        result
    }
}

/// Regions the patrol checks per round.
const PATROL_BATCH: usize = 128;

/// PD's patrol: every `patrol-region-interval` the checkers look at the next batch of regions
/// of the tree, wrapping around at its end, and their steps are pushed to the leaders.
async fn patrol_regions(state: Arc<PdState>) {
    let mut interval = tokio::time::interval(state.operators.config().patrol_region_interval.0);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_key = Vec::new();
    loop {
        interval.tick().await;
        let Ok((ids, next)) = state.cluster.region_ids_from(&next_key, PATROL_BATCH) else {
            continue; // Not bootstrapped yet.
        };
        next_key = next;
        state.patrol(&ids);
    }
}

/// How soon the leader balancer runs again after a pass that started transfers, and at most how
/// long it waits while leaders are balanced (PD's `min-` and `max-schedule-interval`). A pass that
/// starts nothing doubles the wait: up to `UNBALANCED_MAX_INTERVAL` while leaders are unbalanced
/// (running transfers fill the limit, or no region can move yet: a new store holds no replica),
/// so that PD does not rescan the region tree every 10 ms for moves that are not there.
const MIN_SCHEDULE_INTERVAL: Duration = Duration::from_millis(10);
const UNBALANCED_MAX_INTERVAL: Duration = Duration::from_millis(100);
const MAX_SCHEDULE_INTERVAL: Duration = Duration::from_secs(5);

/// PD's balance-leader scheduler: moves leaderships until every Up store leads about as many
/// regions as the others; see `schedule/leader_balancer.rs`.
async fn balance_leaders(state: Arc<PdState>) {
    let mut cursor = Vec::new();
    let mut wait = MIN_SCHEDULE_INTERVAL;
    loop {
        tokio::time::sleep(wait).await;
        let (dispatches, unbalanced) = state.operators.balance_leaders(&state.cluster, &mut cursor);
        wait = if !dispatches.is_empty() {
            MIN_SCHEDULE_INTERVAL
        } else if unbalanced {
            (wait * 2).min(UNBALANCED_MAX_INTERVAL)
        } else {
            (wait * 2).min(MAX_SCHEDULE_INTERVAL)
        };
        state.heartbeat_streams.push(state.cluster.id(), dispatches);
    }
}

/// Keeps the saved TSO window ahead of the clock so requests rarely wait for a sync write.
async fn renew_tso_window(state: Arc<PdState>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        let state = state.clone();
        match tokio::task::spawn_blocking(move || state.tso.renew_window()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "failed to save the TSO window; retrying"),
            Err(e) => error!(error = %e, "TSO window task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_checked() {
        let store = storage::memory();
        let clock = system_clock();
        let config = Config::default();
        let (id, member) = load_identity(&store, &config, &clock).unwrap();
        let (again, member_again) = load_identity(&store, &config, &clock).unwrap();
        assert_eq!(id, again);
        assert_eq!(member.member_id, member_again.member_id);
        let other = Config {
            name: "pd-2".into(),
            ..Config::default()
        };
        let err = load_identity(&store, &other, &clock).unwrap_err();
        assert!(matches!(err, ServerError::MemberMismatch { .. }), "{err}");
    }

    #[test]
    fn foreign_data_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("raft.log"), b"x").unwrap();
        let err = check_data_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a PD data directory"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            check_data_dir(empty.path()).unwrap(),
            empty.path().join("meta")
        );
    }
}
