//! A tikv-server node (seed: `run_tikv` / `run_raft_server`): opens the engines, joins the
//! cluster through PD, starts raftstore, and serves `tikvpb.Tikv`, the raft transport and the
//! status server until shutdown.
//!
//! This is the one place where concrete engines are named: RocksDB for data, raft-engine for
//! raft logs.

pub mod config;
pub mod deadlock;
pub mod gc_worker;
pub mod metrics;
pub mod node;
pub mod pd_api;
pub mod raftkv;
pub mod service;
pub mod status;
pub mod transport;
pub mod tso_clock;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use engine_rocks::RocksEngine;
use kvproto::deadlock::deadlock_server::DeadlockServer;
use kvproto::debugpb::debug_server::DebugServer;
use kvproto::metapb;
use kvproto::raft_serverpb::raft_transport_server::RaftTransportServer;
use kvproto::tikvpb::tikv_server::TikvServer;
use parking_lot::Mutex;
use pd_client::PdClient;
use raft_log_engine::RaftEngineLog;
use raftstore::{create_raft_system, LocalReader, PdScheduler, SharedRouter, StoreDeps, StoreMeta};
use storage::concurrency_manager::{ConcurrencyManager, MaxTsSource};
use storage::lock_manager::{LockManager, LockWaitConfig};
use storage::txn::GcOptions;
use storage::{Storage, StorageConfig};
use tokio::net::TcpListener;
use tracing::info;
use txn_types::TimeStamp;
use types::StoreId;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "this data directory belongs to cluster {local}, but PD serves cluster {pd}; \
         point --pd at the right cluster or use an empty --data-dir"
    )]
    ClusterIdMismatch { local: u64, pd: u64 },
    #[error("data directory: {0}")]
    Data(String),
    #[error("engine: {0}")]
    Engine(#[from] engine_traits::Error),
    #[error("PD: {0}")]
    Pd(String),
    #[error("raftstore: {0}")]
    Raftstore(#[from] raftstore::Error),
    #[error("cannot listen on {addr}: {source}; is another process using the port?")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Leader changes of this store's peers, and PD's TSO, for the concurrency manager.
struct StoreMaxTs {
    store_meta: Arc<Mutex<StoreMeta>>,
    pd: Arc<PdClient>,
}

impl MaxTsSource for StoreMaxTs {
    fn leader_epoch(&self) -> u64 {
        self.store_meta.lock().leader_changes
    }

    fn fetch_ts(&self) -> storage::kv::BoxFuture<Result<TimeStamp, String>> {
        let pd = self.pd.clone();
        Box::pin(async move {
            pd.get_tso()
                .await
                .map(TimeStamp::new)
                .map_err(|e| e.to_string())
        })
    }
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Runs a store until `shutdown` completes.
///
/// # Errors
///
/// Any [`ServerError`] at start-up: bad config, unusable data directory, a data directory of
/// another cluster, busy ports.
pub async fn run(
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.finish().map_err(ServerError::Config)?;
    let data_dir = config.storage.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| ServerError::Data(format!("create {}: {e}", data_dir.display())))?;
    let kv = RocksEngine::open(&data_dir.join("db"), &config.rocksdb.engine())
        .map_err(|e| ServerError::Data(format!("open {}: {e}", data_dir.join("db").display())))?;
    let raft_config = config.raft_engine.engine(&data_dir);
    let raft = RaftEngineLog::open(&raft_config).map_err(|e| {
        ServerError::Data(format!("open raft log {}: {e}", raft_config.dir.display()))
    })?;
    // Bind before joining, so a busy port fails fast and clearly.
    let listener = bind(&config.server.addr).await?;
    let status_listener = bind(&config.server.status_addr).await?;

    info!(endpoints = ?config.pd.endpoints, "connecting to PD");
    let pd = Arc::new(PdClient::connect(config.pd.endpoints.clone()).await);
    let store_id = node::load_or_create_store_id(&pd, &kv).await?;
    let store = metapb::Store {
        id: store_id,
        address: config.server.advertise_addr.clone(),
        status_address: config.server.status_addr.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        start_timestamp: unix_secs(),
        ..Default::default()
    };
    node::bootstrap_cluster(&pd, &kv, &raft, store.clone()).await?;

    let builder = create_raft_system::<RocksEngine, RaftEngineLog>(config.raftstore.clone());
    let router = SharedRouter::new(builder.router.clone());
    let trans = transport::ServerTransport::new(
        pd.cluster_id(),
        pd.clone(),
        router.clone(),
        tokio::runtime::Handle::current(),
    );
    let (pd_scheduler, pd_tasks) = PdScheduler::new();
    tokio::spawn(raftstore::run_pd_worker(
        pd_tasks,
        Arc::new(pd_api::GrpcPd(pd.clone())),
        router.clone(),
        StoreId(store_id),
        data_dir.clone(),
    ));
    let store_meta = Arc::new(Mutex::new(StoreMeta::new(StoreId(store_id))));
    let mut system = builder.start(StoreDeps {
        store_id: StoreId(store_id),
        kv: kv.clone(),
        raft: raft.clone(),
        trans: Arc::new(trans),
        pd_scheduler,
        store_meta: store_meta.clone(),
        split_check: config.coprocessor.clone(),
    })?;

    let storage_config = StorageConfig {
        max_key_size: config.storage.max_key_size.0 as usize,
        scheduler_pending_write_threshold: config.storage.scheduler_pending_write_threshold.0
            as usize,
    };
    let engine = raftkv::RaftKv::new(
        router.clone(),
        LocalReader::new(kv.clone(), store_meta.clone()),
        kv.clone(),
    );
    // Async commit computes commit timestamps above max_ts; it must start above every
    // timestamp this store may have served reads at before a restart.
    let latest_ts = pd
        .get_tso()
        .await
        .map_err(|e| ServerError::Pd(format!("get a timestamp to start max_ts from: {e}")))?;
    let max_ts_source = Arc::new(StoreMaxTs {
        store_meta: store_meta.clone(),
        pd: pd.clone(),
    });
    let concurrency_manager =
        ConcurrencyManager::with_source(TimeStamp::new(latest_ts), max_ts_source);
    // Raw TTLs follow PD's time, not this machine's clock.
    let ttl_clock = tso_clock::TsoClock::new(latest_ts >> 18);
    tokio::spawn(tso_clock::keep_in_step(ttl_clock.clone(), pd.clone()));
    let lock_wait = LockWaitConfig {
        wait_for_lock_timeout: config.pessimistic_txn.wait_for_lock_timeout.0,
        wake_up_delay_duration: config.pessimistic_txn.wake_up_delay_duration.0,
    };
    let detector = deadlock::Detector::new(
        lock_wait.wait_for_lock_timeout,
        store_meta.clone(),
        pd.clone(),
        tokio::runtime::Handle::current(),
    );
    let storage = Storage::with_parts(
        engine,
        storage_config,
        concurrency_manager,
        LockManager::new(lock_wait, Arc::new(detector.clone())),
        ttl_clock.as_raw_clock(),
    );
    tokio::spawn(
        gc_worker::GcWorker {
            storage: storage.txn().clone(),
            store_meta: store_meta.clone(),
            pd: pd.clone(),
            options: GcOptions {
                batch_keys: config.gc.batch_keys as usize,
                max_write_bytes_per_sec: config.gc.max_write_bytes_per_sec.0,
            },
            poll_interval: gc_worker::POLL_SAFE_POINT_INTERVAL,
        }
        .run(),
    );
    let kv_service = TikvServer::new(service::kv::KvService::new(storage))
        .max_decoding_message_size(transport::MAX_RAFT_MESSAGE_SIZE);
    let deadlock_service = DeadlockServer::new(deadlock::DeadlockService::new(detector));
    let kv_service = service::unimplemented::NameUnimplemented::new(kv_service);
    let raft_service = RaftTransportServer::new(service::raft::RaftService::new(
        router.clone(),
        pd.cluster_id(),
    ))
    .max_decoding_message_size(transport::MAX_RAFT_MESSAGE_SIZE);
    let debug_service = DebugServer::new(service::debug::DebugService::new(
        kv.clone(),
        store_meta.clone(),
        pd.cluster_id(),
        match (config.storage.api_version, config.storage.enable_ttl) {
            (2, _) => kvproto::kvrpcpb::ApiVersion::V2,
            (_, true) => kvproto::kvrpcpb::ApiVersion::V1ttl,
            _ => kvproto::kvrpcpb::ApiVersion::V1,
        },
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut grpc_stop = stop_rx.clone();
    let grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(kv_service)
            .add_service(raft_service)
            .add_service(deadlock_service)
            .add_service(debug_service)
            .serve_with_incoming_shutdown(
                // Small replies must not wait out Nagle and delayed ACKs (40 ms on Linux).
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = grpc_stop.wait_for(|stop| *stop).await;
                },
            ),
    );
    let mut status_stop = stop_rx;
    let status_app = status::router(store_meta);
    let status_server = tokio::spawn(async move {
        axum::serve(status_listener, status_app)
            .with_graceful_shutdown(async move {
                let _ = status_stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    node::put_store(&pd, store).await?;
    let addr: Option<SocketAddr> = config.server.addr.parse().ok();
    info!(store_id, addr = ?addr, status_addr = %config.server.status_addr, "tikv-server is serving");

    shutdown.await;
    info!("tikv-server shutting down");
    let _ = stop_tx.send(true);
    // Raft streams from other stores and idle client connections never end on their own;
    // in-flight requests get a grace period, then the listeners are dropped.
    let grace = std::time::Duration::from_secs(3);
    let _ = tokio::time::timeout(grace, grpc).await;
    let _ = tokio::time::timeout(grace, status_server).await;
    tokio::task::spawn_blocking(move || system.shutdown())
        .await
        .map_err(|e| ServerError::Data(format!("raftstore shutdown: {e}")))?;
    Ok(())
}
