//! N stores in one process (TiKV's `test_raftstore::Cluster`): each with its own RocksDB and
//! raft-engine directories, raft and apply pollers, PD worker and storage, joined by a
//! [`Network`] with filters. A store can be stopped and started again on the same data, which
//! is what a crashed process finds on restart.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config_types::{ReadableDuration, ReadableSize};
use engine_rocks::{RocksConfig, RocksEngine};
use engine_traits::{WriteBatch, WriteOptions};
use kvproto::raft_cmdpb::{AdminCmdType, AdminRequest, RaftCmdRequest, RaftRequestHeader};
use kvproto::raft_cmdpb::{ChangePeerRequest, ChangePeerType, TransferLeaderRequest};
use kvproto::{errorpb, kvrpcpb, metapb};
use parking_lot::{Mutex, RwLock};
use raft_log_engine::{RaftEngineConfig, RaftEngineLog};
use raftstore::peer_storage::{write_initial_apply_state, write_initial_raft_state};
use raftstore::{
    create_raft_system, run_pd_worker, Callback, Config as RaftstoreConfig, LocalReader,
    PdScheduler, PeerMsg, RaftCommand, RaftSystem, RouterHandle, SharedRouter, SplitCheckConfig,
    StoreDeps, StoreMeta,
};
use server::raftkv::RaftKv;
use storage::concurrency_manager::ConcurrencyManager;
use storage::{Storage, StorageConfig};
use tempfile::TempDir;
use tracing::info;
use txn_types::TimeStamp;
use types::{RegionId, StoreId};

use crate::filter::Filter;
use crate::pd::{StorePd, TestPd};
use crate::rng::SeededRng;
use crate::transport::{ChannelTransport, FilterId, Network, Router};

pub type TestStorage = Storage<RaftKv<RocksEngine, RaftEngineLog>>;

/// How the in-process cluster runs.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub stores: u64,
    /// Stores that get a peer of the first region (the first ones); `None`: all of them.
    pub region_stores: Option<u64>,
    pub raftstore: RaftstoreConfig,
    pub split_check: SplitCheckConfig,
    /// Seeds every random choice of filters and tests; `TEST_SEED` in the environment wins.
    pub seed: u64,
}

impl ClusterConfig {
    /// Four stores, the first region on the first three: a store to add a replica to.
    pub fn with_spare_store() -> Self {
        ClusterConfig {
            stores: 4,
            region_stores: Some(3),
            ..ClusterConfig::default()
        }
    }

    /// Three stores whose leaders compact their raft logs past a stopped follower after a
    /// few entries (GC every 50 ms at 5 entries, at most 10 kept): a follower stopped under
    /// a few dozen writes catches up from a snapshot ([`Cluster::write_until_compacted_past`]).
    pub fn with_short_raft_logs() -> Self {
        let mut cfg = ClusterConfig::default();
        cfg.raftstore.raft_log_gc_threshold = 5;
        cfg.raftstore.raft_log_gc_count_limit = 10;
        cfg.raftstore.raft_log_gc_tick_interval = ReadableDuration::millis(50);
        cfg
    }
}

impl Default for ClusterConfig {
    /// Three stores with fast ticks: 20 ms, elections after 200-400 ms of silence, PD
    /// heartbeats every 100 ms, raft log GC every 100 ms.
    fn default() -> Self {
        let raftstore = RaftstoreConfig {
            raft_base_tick_interval: ReadableDuration::millis(20),
            raft_heartbeat_ticks: 2,
            raft_election_timeout_ticks: 10,
            raft_log_gc_tick_interval: ReadableDuration::millis(100),
            pd_heartbeat_tick_interval: ReadableDuration::millis(100),
            pd_store_heartbeat_tick_interval: ReadableDuration::secs(1),
            split_region_check_tick_interval: ReadableDuration::millis(100),
            region_split_check_diff: ReadableSize::kib(64),
            store_pool_size: 1,
            apply_pool_size: 1,
            ..RaftstoreConfig::default()
        };
        let seed = std::env::var("TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5EED);
        ClusterConfig {
            stores: 3,
            region_stores: None,
            raftstore,
            split_check: SplitCheckConfig::default(),
            seed,
        }
    }
}

/// What a store keeps across restarts: its directory and engines.
struct StoreData {
    _dir: TempDir,
    kv: RocksEngine,
    raft: RaftEngineLog,
}

/// A running store.
struct RunningStore {
    /// In a mutex only to make the cluster `Sync`: the batch system's router is not.
    system: Mutex<RaftSystem<RocksEngine, RaftEngineLog>>,
    router: Router,
    store_meta: Arc<Mutex<StoreMeta>>,
    storage: TestStorage,
    pd_worker: tokio::task::JoinHandle<()>,
}

/// Why a request through [`Cluster::call`] gave up.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// No answer without a region error before the deadline; the last region error.
    Timeout(Option<Box<errorpb::Error>>),
}

pub struct Cluster {
    pub cfg: ClusterConfig,
    pub pd: Arc<TestPd>,
    pub network: Arc<Network>,
    pub rng: Arc<SeededRng>,
    runtime: tokio::runtime::Runtime,
    data: BTreeMap<u64, StoreData>,
    running: RwLock<BTreeMap<u64, RunningStore>>,
    /// Where the client last found each region's leader.
    leader_hints: Mutex<BTreeMap<u64, metapb::Peer>>,
}

const CLUSTER_ID: u64 = 0x7E57;

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

impl Cluster {
    /// Creates the stores' engines and bootstraps one region with a peer on every store;
    /// nothing runs until [`Cluster::start`].
    pub fn new(cfg: ClusterConfig) -> Cluster {
        init_logging();
        info!(
            seed = cfg.seed,
            "in-process cluster (replay with TEST_SEED={})", cfg.seed
        );
        eprintln!(
            "test cluster seed: {} (replay with TEST_SEED={})",
            cfg.seed, cfg.seed
        );
        let pd = TestPd::new(CLUSTER_ID);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut data = BTreeMap::new();
        for _ in 0..cfg.stores {
            let store_id = pd.alloc_id();
            let dir = tempfile::tempdir().expect("temp dir");
            // As tikv-server opens its data engine: without a WAL.
            let kv_cfg = RocksConfig {
                disable_wal: true,
                ..RocksConfig::default()
            };
            let kv = RocksEngine::open(&dir.path().join("db"), &kv_cfg).expect("open RocksDB");
            let raft = RaftEngineLog::open(&RaftEngineConfig::new(dir.path().join("raft")))
                .expect("open raft-engine");
            data.insert(
                store_id,
                StoreData {
                    _dir: dir,
                    kv,
                    raft,
                },
            );
        }
        let cluster = Cluster {
            rng: Arc::new(SeededRng::new(cfg.seed)),
            cfg,
            pd,
            network: Network::new(),
            runtime,
            data,
            running: RwLock::default(),
            leader_hints: Mutex::default(),
        };
        cluster.bootstrap();
        cluster
    }

    fn bootstrap(&self) {
        let region_id = self.pd.alloc_id();
        let peers: Vec<metapb::Peer> = self
            .data
            .keys()
            .take(self.cfg.region_stores.unwrap_or(self.cfg.stores) as usize)
            .map(|&store_id| metapb::Peer {
                id: self.pd.alloc_id(),
                store_id,
                ..Default::default()
            })
            .collect();
        let region = metapb::Region {
            id: region_id,
            // As if the peers after the first had been added one by one: PD is bootstrapped
            // with the first alone (conf_ver 1) and learns the others from a heartbeat.
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: peers.len() as u64,
                version: 1,
            }),
            peers: peers.clone(),
            ..Default::default()
        };
        for peer in &peers {
            let data = &self.data[&peer.store_id];
            write_initial_raft_state(&data.raft, &region).expect("initial raft state");
            let mut batch = engine_traits::KvEngine::write_batch(&data.kv);
            write_initial_apply_state(&mut batch, &region).expect("initial apply state");
            batch
                .write_opt(WriteOptions { sync: true })
                .expect("write initial state");
        }
        let first_store = self.store_meta_pb(peers[0].store_id);
        let pd_region = metapb::Region {
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: vec![peers[0]],
            ..region.clone()
        };
        let pd = self.pd.cluster();
        pd.bootstrap(first_store, pd_region).expect("bootstrap PD");
        for &store_id in self.data.keys() {
            pd.put_store(self.store_meta_pb(store_id))
                .expect("put store");
        }
    }

    fn store_meta_pb(&self, store_id: u64) -> metapb::Store {
        metapb::Store {
            id: store_id,
            address: format!("store-{store_id}"),
            ..Default::default()
        }
    }

    pub fn store_ids(&self) -> Vec<u64> {
        self.data.keys().copied().collect()
    }

    /// Starts every store.
    pub fn start(&self) {
        for store_id in self.store_ids() {
            self.start_store(store_id);
        }
    }

    /// Starts a stopped store on the data it had.
    pub fn start_store(&self, store_id: u64) {
        let data = &self.data[&store_id];
        let mut running = self.running.write();
        assert!(
            !running.contains_key(&store_id),
            "store {store_id} is running"
        );
        let builder = create_raft_system::<RocksEngine, RaftEngineLog>(self.cfg.raftstore.clone());
        let router = SharedRouter::new(builder.router.clone());
        self.network.add_router(store_id, router.clone());
        let (pd_scheduler, pd_tasks) = PdScheduler::new();
        let pd_worker = self.runtime.spawn(run_pd_worker(
            pd_tasks,
            Arc::new(StorePd(self.pd.clone())),
            router.clone(),
            StoreId(store_id),
            std::env::temp_dir(),
        ));
        let store_meta = Arc::new(Mutex::new(StoreMeta::new(StoreId(store_id))));
        let system = builder
            .start(StoreDeps {
                store_id: StoreId(store_id),
                kv: data.kv.clone(),
                raft: data.raft.clone(),
                trans: Arc::new(ChannelTransport {
                    store_id,
                    network: self.network.clone(),
                }),
                pd_scheduler,
                store_meta: store_meta.clone(),
                split_check: self.cfg.split_check.clone(),
            })
            .expect("start raftstore");
        let engine = RaftKv::new(
            router.clone(),
            LocalReader::new(data.kv.clone(), store_meta.clone()),
            data.kv.clone(),
        );
        let storage = Storage::new(
            engine,
            StorageConfig::default(),
            ConcurrencyManager::new(TimeStamp::new(1)),
        );
        running.insert(
            store_id,
            RunningStore {
                system: Mutex::new(system),
                router,
                store_meta,
                storage,
                pd_worker,
            },
        );
        info!(store_id, "test store started");
    }

    /// Stops a store as a crash would: its threads stop, pending requests are dropped, and
    /// only what it wrote to its engines remains.
    pub fn stop_store(&self, store_id: u64) {
        let Some(store) = self.running.write().remove(&store_id) else {
            return;
        };
        self.network.remove_router(store_id);
        store.pd_worker.abort();
        store.system.lock().shutdown();
        info!(store_id, "test store stopped");
    }

    pub fn is_running(&self, store_id: u64) -> bool {
        self.running.read().contains_key(&store_id)
    }

    pub fn add_filter(&self, filter: impl Filter + 'static) -> FilterId {
        self.network.add_filter(Arc::new(filter))
    }

    pub fn remove_filter(&self, id: FilterId) {
        self.network.remove_filter(id);
    }

    pub fn clear_filters(&self) {
        self.network.clear_filters();
    }

    /// The data engine of a store (running or not).
    pub fn kv(&self, store_id: u64) -> &RocksEngine {
        &self.data[&store_id].kv
    }

    /// The raw (API V1) value of `key` in a store's data engine, read directly: what the store
    /// has applied, whatever its role.
    pub fn stored_raw(&self, store_id: u64, key: &[u8]) -> Option<Vec<u8>> {
        let stored = engine_traits::Peekable::get_value_cf(
            self.kv(store_id),
            engine_traits::CF_DEFAULT,
            &keys::data_key(key),
        )
        .expect("read the data engine")?;
        Some(
            storage::raw::RawValue::decode(&stored)
                .expect("a raw value")
                .user_value,
        )
    }

    pub fn raft_log(&self, store_id: u64) -> &RaftEngineLog {
        &self.data[&store_id].raft
    }

    /// The first and last index of the entries of `region_id` in a store's raft log, if it
    /// has any.
    pub fn log_span(&self, store_id: u64, region_id: u64) -> Option<(u64, u64)> {
        raft_log_engine::RaftLogEngine::entry_span(self.raft_log(store_id), RegionId(region_id))
            .expect("read the raft log")
    }

    /// Writes `k00`..`k29` (value `v`) into `region_id`, led from `leader`, and waits until the
    /// leader's log starts past what the stopped store `down` has, so that `down` needs a
    /// snapshot when it starts (with [`ClusterConfig::with_short_raft_logs`]).
    pub fn write_until_compacted_past(&self, region_id: u64, leader: u64, down: u64) {
        let span = |store_id| self.log_span(store_id, region_id);
        let (_, down_last) = span(down).expect("the stopped store's log of the region");
        for i in 0..30 {
            self.must_put(format!("k{i:02}").as_bytes(), b"v");
        }
        self.wait_until(
            Duration::from_secs(10),
            "the leader's log compacted past the stopped store's",
            || span(leader).is_some_and(|(first, _)| first > down_last + 1),
        );
    }

    pub fn storage(&self, store_id: u64) -> Option<TestStorage> {
        self.running
            .read()
            .get(&store_id)
            .map(|s| s.storage.clone())
    }

    pub fn router(&self, store_id: u64) -> Option<Router> {
        self.running.read().get(&store_id).map(|s| s.router.clone())
    }

    /// Starts a future on the cluster's runtime, for a request that should run while the test
    /// goes on.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Runs a future on the cluster's runtime (for tests that are not async).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The region holding `key` as this store knows it, if the store is running and has it.
    pub fn region_on_store(&self, store_id: u64, key: &[u8]) -> Option<metapb::Region> {
        let running = self.running.read();
        let meta = running.get(&store_id)?.store_meta.lock();
        meta.regions
            .values()
            .find(|r| keys::in_range(key, &r.start_key, &r.end_key))
            .cloned()
    }

    /// Whether the replica of `region_id` on the running store `store_id` hibernates.
    pub fn is_asleep(&self, store_id: u64, region_id: u64) -> bool {
        let running = self.running.read();
        running
            .get(&store_id)
            .is_some_and(|s| s.system.lock().hibernation().asleep().contains(&region_id))
    }

    /// The peer that leads `region_id` with the highest term among running stores.
    pub fn leader_of(&self, region_id: u64) -> Option<metapb::Peer> {
        let running = self.running.read();
        running
            .values()
            .filter_map(|s| {
                let meta = s.store_meta.lock();
                let delegate = meta.readers.get(&RegionId(region_id))?.get()?;
                let peer = delegate
                    .region
                    .peers
                    .iter()
                    .find(|p| p.id == delegate.peer_id.get())
                    .copied()?;
                Some((delegate.term, peer))
            })
            .max_by_key(|(term, _)| *term)
            .map(|(_, peer)| peer)
    }

    /// Waits until the lease of the region's leader has run out, so that its next read needs
    /// a read index.
    pub fn wait_lease_expired(&self, region_id: u64) {
        self.wait_until(
            Duration::from_secs(20),
            "the leader's lease to run out",
            || {
                self.published_lease(region_id)
                    .is_none_or(|e| e <= Instant::now())
            },
        );
    }

    /// The latest lease that a leader of `region_id` on a running store has published to its
    /// store's local readers: reads may be served without the raft thread until then.
    pub fn published_lease(&self, region_id: u64) -> Option<Instant> {
        let running = self.running.read();
        running
            .values()
            .filter_map(|s| {
                let cell = s
                    .store_meta
                    .lock()
                    .readers
                    .get(&RegionId(region_id))
                    .cloned()?;
                cell.get()?.lease_expire
            })
            .max()
    }

    /// Waits until `region_id` has a leader and returns it.
    pub fn wait_leader(&self, region_id: u64) -> metapb::Peer {
        let mut leader = None;
        self.wait_until(Duration::from_secs(20), "a leader", || {
            leader = self.leader_of(region_id);
            leader.is_some()
        });
        leader.expect("waited for it")
    }

    /// Polls `condition` every 10 ms until it holds; panics naming `what` after `timeout`.
    pub fn wait_until(&self, timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what} (seed {})",
                self.cfg.seed
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first region's id (the one bootstrapped).
    pub fn first_region_id(&self) -> u64 {
        self.pd
            .region_by_key(b"")
            .expect("bootstrapped region")
            .region
            .id
    }

    /// Asks the region's leader to hand leadership to its peer on `store_id`, and waits until
    /// that peer leads.
    pub fn must_transfer_leader(&self, region_id: u64, store_id: u64) {
        self.wait_until(Duration::from_secs(20), "the leader transfer", || {
            if self
                .leader_of(region_id)
                .is_some_and(|l| l.store_id == store_id)
            {
                return true;
            }
            self.ask_transfer_leader(region_id, store_id);
            std::thread::sleep(Duration::from_millis(50));
            self.leader_of(region_id)
                .is_some_and(|l| l.store_id == store_id)
        });
    }

    /// Asks the region's current leader, once, to hand its leadership to its peer on
    /// `store_id`; returns whether there was a leader to ask.
    pub fn ask_transfer_leader(&self, region_id: u64, store_id: u64) -> bool {
        let Some(leader) = self.leader_of(region_id) else {
            return false;
        };
        let Some(region) = self.region_by_id_on(leader.store_id, region_id) else {
            return false;
        };
        let Some(target) = region.peers.iter().find(|p| p.store_id == store_id) else {
            panic!("region {region_id} has no peer on store {store_id}");
        };
        let request = RaftCmdRequest {
            header: Some(RaftRequestHeader {
                region_id,
                peer: Some(leader),
                region_epoch: region.region_epoch,
                term: 0,
            }),
            requests: Vec::new(),
            admin_request: Some(AdminRequest {
                cmd_type: AdminCmdType::TransferLeader as i32,
                transfer_leader: Some(TransferLeaderRequest {
                    peer: Some(*target),
                }),
                ..Default::default()
            }),
        };
        let Some(router) = self.router(leader.store_id) else {
            return false;
        };
        let callback = Callback::Write(Box::new(|_| {}));
        router.send_peer(
            RegionId(region_id),
            PeerMsg::RaftCommand(Box::new(RaftCommand::new(request, callback))),
        );
        true
    }

    /// Splits the region at `key` through its leader; returns every region the split made.
    pub fn must_split(&self, region_id: u64, key: &[u8]) -> Vec<metapb::Region> {
        let leader = self.wait_leader(region_id);
        let region = self
            .region_by_id_on(leader.store_id, region_id)
            .expect("the leader has its region");
        let (sender, done) = crossbeam::channel::bounded(1);
        self.router(leader.store_id)
            .expect("the leader's store runs")
            .send_peer(
                RegionId(region_id),
                PeerMsg::SplitRegion {
                    region_epoch: region.region_epoch.unwrap_or_default(),
                    split_keys: vec![key.to_vec()],
                    callback: Box::new(move |result| {
                        let _ = sender.send(result);
                    }),
                },
            );
        let response = done
            .recv_timeout(Duration::from_secs(10))
            .expect("the split is answered")
            .expect("the split's outcome is known");
        let header = response.header.unwrap_or_default();
        assert!(header.error.is_none(), "split failed: {:?}", header.error);
        response
            .admin_response
            .and_then(|a| a.splits)
            .map(|s| s.regions)
            .unwrap_or_default()
    }

    /// Adds a voter on `store_id` to the region through its leader and waits until the
    /// leader's region has it; returns the new peer.
    pub fn must_add_peer(&self, region_id: u64, store_id: u64) -> metapb::Peer {
        let peer = metapb::Peer {
            id: self.pd.alloc_id(),
            store_id,
            ..Default::default()
        };
        self.must_change_peer(region_id, ChangePeerType::AddNode, peer)
    }

    /// Adds a learner on `store_id` to the region; returns it.
    pub fn must_add_learner(&self, region_id: u64, store_id: u64) -> metapb::Peer {
        let peer = metapb::Peer {
            id: self.pd.alloc_id(),
            store_id,
            role: metapb::PeerRole::Learner as i32,
            ..Default::default()
        };
        self.must_change_peer(region_id, ChangePeerType::AddLearnerNode, peer)
    }

    /// Makes the learner `peer` a voter; returns it.
    pub fn must_promote(&self, region_id: u64, peer: metapb::Peer) -> metapb::Peer {
        let voter = metapb::Peer {
            role: metapb::PeerRole::Voter as i32,
            ..peer
        };
        self.must_change_peer(region_id, ChangePeerType::AddNode, voter)
    }

    /// Runs a conf change through the region's leader and waits until the leader's region
    /// shows it.
    pub fn must_change_peer(
        &self,
        region_id: u64,
        change_type: ChangePeerType,
        peer: metapb::Peer,
    ) -> metapb::Peer {
        let mut leader = self.wait_leader(region_id);
        let done = |region: &metapb::Region| {
            if change_type == ChangePeerType::RemoveNode {
                !region.peers.iter().any(|p| p.id == peer.id)
            } else {
                region.peers.contains(&peer)
            }
        };
        // Retried while it may succeed later: the previous conf change may still be pending
        // in raft a moment after it shows, and leadership may move meanwhile.
        self.wait_until(Duration::from_secs(10), "the conf change proposed", || {
            leader = self.wait_leader(region_id);
            let Some(region) = self.region_by_id_on(leader.store_id, region_id) else {
                return false;
            };
            if done(&region) {
                // An earlier attempt whose answer was lost did it.
                return true;
            }
            match self.propose_conf_change(leader, &region, change_type, peer) {
                None => true,
                Some(e) if e.message.starts_with("invalid conf change") => {
                    panic!("conf change failed: {e:?}")
                }
                Some(_) => false,
            }
        });
        self.wait_until(
            Duration::from_secs(10),
            "the leader's region with the change",
            || {
                self.region_by_id_on(leader.store_id, region_id)
                    .is_some_and(|r| done(&r))
            },
        );
        peer
    }

    /// Proposes one conf change through `leader`; returns the error it was answered with.
    fn propose_conf_change(
        &self,
        leader: metapb::Peer,
        region: &metapb::Region,
        change_type: ChangePeerType,
        peer: metapb::Peer,
    ) -> Option<errorpb::Error> {
        let request = RaftCmdRequest {
            header: Some(RaftRequestHeader {
                region_id: region.id,
                peer: Some(leader),
                region_epoch: region.region_epoch,
                term: 0,
            }),
            requests: Vec::new(),
            admin_request: Some(AdminRequest {
                cmd_type: AdminCmdType::ChangePeer as i32,
                change_peer: Some(ChangePeerRequest {
                    change_type: change_type as i32,
                    peer: Some(peer),
                }),
                ..Default::default()
            }),
        };
        let (sender, done) = crossbeam::channel::bounded(1);
        let callback = Callback::Write(Box::new(move |result| {
            let _ = sender.send(result);
        }));
        self.router(leader.store_id)?.send_peer(
            RegionId(region.id),
            PeerMsg::RaftCommand(Box::new(RaftCommand::new(request, callback))),
        );
        match done
            .recv_timeout(Duration::from_secs(10))
            .expect("the conf change is answered")
        {
            Ok(response) => response.header.unwrap_or_default().error,
            Err(undetermined) => Some(errorpb::Error {
                message: undetermined.to_string(),
                ..Default::default()
            }),
        }
    }

    fn region_by_id_on(&self, store_id: u64, region_id: u64) -> Option<metapb::Region> {
        let running = self.running.read();
        let meta = running.get(&store_id)?.store_meta.lock();
        meta.regions.get(&RegionId(region_id)).cloned()
    }

    /// Sends a request for `key` the way a client does: to the region's leader, retrying on
    /// region errors until `timeout`. `call`
    /// runs the request on a store's storage with a filled-in context; `region_error` reads
    /// the response's region error.
    pub fn call<R>(
        &self,
        key: &[u8],
        timeout: Duration,
        call: impl Fn(TestStorage, kvrpcpb::Context) -> futures::future::BoxFuture<'static, R>,
        region_error: impl Fn(&R) -> Option<errorpb::Error>,
    ) -> Result<R, CallError> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        let mut attempt = 0u64;
        while Instant::now() < deadline {
            attempt += 1;
            let Some(region) = self.pd.region_by_key(key).map(|info| info.region) else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let peer = self.pick_peer(&region, attempt);
            let Some(storage) = self.storage(peer.store_id) else {
                self.leader_hints.lock().remove(&region.id);
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            // The store's own view of the region is fresher than PD's after a split.
            let region = self
                .region_by_id_on(peer.store_id, region.id)
                .unwrap_or(region);
            let ctx = kvrpcpb::Context {
                region_id: region.id,
                region_epoch: region.region_epoch,
                peer: Some(peer),
                ..Default::default()
            };
            let response = self.block_on(call(storage, ctx));
            let Some(error) = region_error(&response) else {
                self.leader_hints.lock().insert(region.id, peer);
                return Ok(response);
            };
            match error.not_leader.as_ref().and_then(|n| n.leader) {
                Some(leader) => {
                    self.leader_hints.lock().insert(region.id, leader);
                }
                None => {
                    self.leader_hints.lock().remove(&region.id);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            last_error = Some(Box::new(error));
        }
        Err(CallError::Timeout(last_error))
    }

    /// The leader of the highest term (the harness sees every store, a client does not), else
    /// the last NotLeader hint, else the region's peers in turn.
    fn pick_peer(&self, region: &metapb::Region, attempt: u64) -> metapb::Peer {
        if let Some(leader) = self.leader_of(region.id) {
            return leader;
        }
        if let Some(hint) = self.leader_hints.lock().get(&region.id) {
            if region.peers.iter().any(|p| p.id == hint.id) {
                return *hint;
            }
        }
        region.peers[(attempt as usize) % region.peers.len()]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for store_id in self.store_ids() {
            self.stop_store(store_id);
        }
    }
}
