//! The cluster's metadata: its id, bootstrap state, stores, regions, ID allocation, the GC safe
//! point and the replication settings.
//!
//! All mutations go through [`Cluster`]: each checks the request, writes the change durably to
//! the [`MetaStore`], then updates the in-memory view, so an acknowledged change survives a
//! restart and a failed write leaves memory unchanged.

pub mod keyspace;
pub mod region_tree;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kvproto::{metapb, pdpb};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use keyspace::KeyspaceManager;
pub use region_tree::{RegionInfo, RegionTree, UpdateOutcome};

use crate::{
    error::{PdError, Result},
    id::{IdAllocator, DEFAULT_STEP},
    storage::{decode_message, encode_u64, keys, load_u64, MetaOp, MetaStore, StorageError},
    tso::Clock,
};

/// How many replicas each region should have; set with `[replication]` in the config file or
/// `POST /pd/api/v1/config/replicate`, and saved once the cluster is bootstrapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ReplicationConfig {
    /// Replicas per region. Default 3.
    pub max_replicas: u64,
    /// Store label keys that describe topology, most significant first. Default none.
    pub location_labels: Vec<String>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            max_replicas: 3,
            location_labels: Vec::new(),
        }
    }
}

impl ReplicationConfig {
    /// # Errors
    ///
    /// [`PdError::InvalidValue`] if `max-replicas` is 0.
    pub fn validate(&self) -> Result<()> {
        if self.max_replicas == 0 {
            return Err(PdError::invalid(
                "replication.max-replicas must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A store and what it last reported.
#[derive(Clone, Debug, Default)]
pub struct StoreInfo {
    pub store: metapb::Store,
    pub stats: Option<pdpb::StoreStats>,
    /// Unix milliseconds of the last PutStore or heartbeat, 0 if none since PD started.
    pub last_heartbeat_ms: u64,
}

impl StoreInfo {
    pub fn id(&self) -> u64 {
        self.store.id
    }

    pub fn is_tombstone(&self) -> bool {
        self.store.state == metapb::StoreState::Tombstone as i32
    }

    /// Returns how scheduling sees the store at `now_ms`.
    ///
    /// A store is down once it has been silent for longer than `max_down_time`. Silence is
    /// counted from its last heartbeat, but never from before `pd_start_ms`: stores loaded from
    /// disk have no heartbeat yet, and a restarted PD must give them time to report before it
    /// replaces their replicas.
    pub fn health(&self, now_ms: u64, pd_start_ms: u64, max_down_time: Duration) -> StoreHealth {
        let silent_ms = now_ms.saturating_sub(self.last_heartbeat_ms.max(pd_start_ms));
        if self.is_tombstone() {
            StoreHealth::Tombstone
        } else if u128::from(silent_ms) > max_down_time.as_millis() {
            StoreHealth::Down
        } else if self.store.state == metapb::StoreState::Up as i32 {
            StoreHealth::Up
        } else {
            StoreHealth::Offline
        }
    }
}

/// A store's condition as scheduling sees it; see [`StoreInfo::health`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    /// Up and heard from within max-store-down-time: it may receive new replicas.
    Up,
    /// Being removed (Offline) but still reporting: it keeps its replicas for now and receives
    /// no new ones.
    Offline,
    /// Not heard from for longer than max-store-down-time: its replicas are replaced.
    Down,
    /// Removed for good: its replicas are replaced.
    Tombstone,
}

struct State {
    /// `Some` once a store has bootstrapped the cluster.
    meta: Option<metapb::Cluster>,
    bootstrap_time_ms: u64,
    stores: BTreeMap<u64, StoreInfo>,
    regions: RegionTree,
    gc_safe_point: u64,
    replication: ReplicationConfig,
}

/// Most regions one AskBatchSplit may ask ids for (TiDB pre-splits at most 1,000 at a time by
/// default); each takes `1 + peers` ids, so an unbounded count could exhaust the id space.
pub const MAX_SPLIT_COUNT: u32 = 10_000;

pub struct Cluster {
    store: Arc<dyn MetaStore>,
    cluster_id: u64,
    clock: Clock,
    /// When this PD process opened the cluster; see [`StoreInfo::health`].
    start_time_ms: u64,
    ids: IdAllocator,
    keyspaces: KeyspaceManager,
    state: RwLock<State>,
}

impl Cluster {
    /// Loads the cluster's metadata.
    ///
    /// `replication` is the configured default; a saved setting (from a bootstrapped cluster or
    /// the HTTP API) wins over it.
    ///
    /// # Errors
    ///
    /// A storage error, including [`StorageError::Corrupt`] for a record that does not decode.
    pub fn open(
        store: Arc<dyn MetaStore>,
        cluster_id: u64,
        replication: ReplicationConfig,
        clock: Clock,
    ) -> Result<Self> {
        let start_time_ms = clock();
        let now_secs = (start_time_ms / 1000) as i64;
        let ids = IdAllocator::open(store.clone(), DEFAULT_STEP)?;
        let keyspaces = KeyspaceManager::open(store.clone(), now_secs)?;
        let meta = store
            .get(keys::CLUSTER)?
            .map(|bytes| decode_message::<metapb::Cluster>(keys::CLUSTER, &bytes))
            .transpose()?;
        let replication = match store.get(keys::REPLICATION)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                key: keys::REPLICATION.to_string(),
                reason: e.to_string(),
            })?,
            None => replication,
        };
        let mut stores = BTreeMap::new();
        for (key, value) in store.scan_prefix(keys::STORE_PREFIX)? {
            let meta: metapb::Store = decode_message(&key, &value)?;
            stores.insert(
                meta.id,
                StoreInfo {
                    store: meta,
                    ..StoreInfo::default()
                },
            );
        }
        let mut regions = RegionTree::default();
        for (key, value) in store.scan_prefix(keys::REGION_PREFIX)? {
            let region: metapb::Region = decode_message(&key, &value)?;
            regions.update(RegionInfo::new(region));
        }
        let state = State {
            meta,
            bootstrap_time_ms: load_u64(store.as_ref(), keys::BOOTSTRAP_TIME)?.unwrap_or(0),
            stores,
            regions,
            gc_safe_point: load_u64(store.as_ref(), keys::GC_SAFE_POINT)?.unwrap_or(0),
            replication,
        };
        info!(
            cluster_id,
            bootstrapped = state.meta.is_some(),
            stores = state.stores.len(),
            regions = state.regions.len(),
            "cluster metadata loaded"
        );
        Ok(Cluster {
            store,
            cluster_id,
            clock,
            start_time_ms,
            ids,
            keyspaces,
            state: RwLock::new(state),
        })
    }

    pub fn id(&self) -> u64 {
        self.cluster_id
    }

    pub fn keyspaces(&self) -> &KeyspaceManager {
        &self.keyspaces
    }

    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    /// Unix milliseconds at which this PD process opened the cluster.
    pub fn start_time_ms(&self) -> u64 {
        self.start_time_ms
    }

    /// Returns how scheduling sees `store` now; see [`StoreInfo::health`].
    pub fn store_health(&self, store: &StoreInfo, max_down_time: Duration) -> StoreHealth {
        store.health(self.now_ms(), self.start_time_ms, max_down_time)
    }

    pub fn is_bootstrapped(&self) -> bool {
        self.state.read().meta.is_some()
    }

    /// Unix milliseconds of the bootstrap, 0 if not bootstrapped.
    pub fn bootstrap_time_ms(&self) -> u64 {
        self.state.read().bootstrap_time_ms
    }

    fn check_bootstrapped(&self) -> Result<()> {
        if self.is_bootstrapped() {
            Ok(())
        } else {
            Err(PdError::NotBootstrapped)
        }
    }

    /// Bootstraps the cluster with its first store and first region (covering all keys).
    ///
    /// # Errors
    ///
    /// [`PdError::AlreadyBootstrapped`] the second time; [`PdError::InvalidValue`] if the store
    /// or region is malformed; a storage error.
    pub fn bootstrap(&self, store: metapb::Store, region: metapb::Region) -> Result<()> {
        check_bootstrap_request(&store, &region)?;
        let mut state = self.state.write();
        if state.meta.is_some() {
            return Err(PdError::AlreadyBootstrapped {
                cluster_id: self.cluster_id,
            });
        }
        let meta = metapb::Cluster {
            id: self.cluster_id,
            max_peer_count: state.replication.max_replicas as u32,
        };
        let mut store = store;
        store.state = metapb::StoreState::Up as i32;
        store.node_state = metapb::NodeState::Serving as i32;
        let now = self.now_ms();
        self.store.write(vec![
            MetaOp::Put(keys::CLUSTER.into(), prost::Message::encode_to_vec(&meta)),
            MetaOp::Put(keys::store(store.id), prost::Message::encode_to_vec(&store)),
            MetaOp::Put(
                keys::region(region.id),
                prost::Message::encode_to_vec(&region),
            ),
            MetaOp::Put(keys::BOOTSTRAP_TIME.into(), encode_u64(now)),
            MetaOp::Put(
                keys::REPLICATION.into(),
                serde_json::to_vec(&state.replication).expect("replication config serializes"),
            ),
        ])?;
        info!(
            cluster_id = self.cluster_id,
            store_id = store.id,
            region_id = region.id,
            "cluster bootstrapped"
        );
        state.meta = Some(meta);
        state.bootstrap_time_ms = now;
        state.stores.insert(
            store.id,
            StoreInfo {
                store,
                stats: None,
                last_heartbeat_ms: now,
            },
        );
        state.regions.update(RegionInfo::new(region));
        Ok(())
    }

    /// Returns a new cluster-wide unique ID.
    ///
    /// # Errors
    ///
    /// A storage error if the ID window cannot be extended.
    pub fn alloc_id(&self) -> Result<u64> {
        self.ids.alloc()
    }

    /// Returns `count` new IDs.
    ///
    /// # Errors
    ///
    /// As [`Cluster::alloc_id`].
    pub fn alloc_ids(&self, count: u64) -> Result<Vec<u64>> {
        self.ids.alloc_many(count)
    }

    /// Registers a store or updates its address, labels and version.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`]; [`PdError::InvalidValue`] for id 0 or an empty address;
    /// [`PdError::StoreTombstone`] for a removed store; [`PdError::Duplicated`] if another live
    /// store has the same address; a storage error.
    pub fn put_store(&self, store: metapb::Store) -> Result<()> {
        self.check_bootstrapped()?;
        if store.id == 0 {
            return Err(PdError::invalid("store id must not be 0"));
        }
        if store.address.is_empty() {
            return Err(PdError::invalid(format!(
                "store {} has no address",
                store.id
            )));
        }
        let mut state = self.state.write();
        if let Some(other) = state
            .stores
            .values()
            .find(|s| s.id() != store.id && !s.is_tombstone() && s.store.address == store.address)
        {
            return Err(PdError::Duplicated {
                what: format!(
                    "store address {} (used by store {})",
                    store.address,
                    other.id()
                ),
            });
        }
        let mut merged = store;
        match state.stores.get(&merged.id) {
            Some(existing) if existing.is_tombstone() => {
                return Err(PdError::StoreTombstone {
                    store_id: merged.id,
                });
            }
            Some(existing) => {
                merged.state = existing.store.state;
                merged.node_state = existing.store.node_state;
            }
            None => {
                merged.state = metapb::StoreState::Up as i32;
                merged.node_state = metapb::NodeState::Serving as i32;
                info!(store_id = merged.id, address = %merged.address, "store joined");
            }
        }
        self.store.put(
            keys::store(merged.id),
            prost::Message::encode_to_vec(&merged),
        )?;
        let now = self.now_ms();
        let entry = state.stores.entry(merged.id).or_default();
        entry.store = merged;
        entry.last_heartbeat_ms = now;
        Ok(())
    }

    /// Returns a store.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], [`PdError::StoreNotFound`].
    pub fn get_store(&self, store_id: u64) -> Result<StoreInfo> {
        self.check_bootstrapped()?;
        self.state
            .read()
            .stores
            .get(&store_id)
            .cloned()
            .ok_or(PdError::StoreNotFound { store_id })
    }

    /// Returns every store, in id order.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`].
    pub fn stores(&self, exclude_tombstone: bool) -> Result<Vec<StoreInfo>> {
        self.check_bootstrapped()?;
        Ok(self
            .state
            .read()
            .stores
            .values()
            .filter(|s| !(exclude_tombstone && s.is_tombstone()))
            .cloned()
            .collect())
    }

    /// Records a store heartbeat.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], [`PdError::StoreNotFound`], [`PdError::StoreTombstone`].
    pub fn store_heartbeat(&self, stats: pdpb::StoreStats) -> Result<()> {
        self.check_bootstrapped()?;
        let now = self.now_ms();
        let mut state = self.state.write();
        let store_id = stats.store_id;
        let info = state
            .stores
            .get_mut(&store_id)
            .ok_or(PdError::StoreNotFound { store_id })?;
        if info.is_tombstone() {
            return Err(PdError::StoreTombstone { store_id });
        }
        info.stats = Some(stats);
        info.last_heartbeat_ms = now;
        Ok(())
    }

    /// Applies a region heartbeat to the region tree, persisting the region if its keys, epoch
    /// or peers changed.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`]; [`PdError::InvalidValue`] for a region without id, epoch or
    /// leader; [`PdError::StoreNotFound`] if the leader's store is unknown;
    /// [`PdError::StaleRegion`] if the tree holds a newer epoch; a storage error.
    pub fn region_heartbeat(&self, info: RegionInfo) -> Result<()> {
        self.check_bootstrapped()?;
        let region_id = info.id();
        if region_id == 0 || info.region.region_epoch.is_none() {
            return Err(PdError::invalid(
                "region heartbeat needs a region with id and epoch",
            ));
        }
        let leader = info.leader.as_ref().ok_or_else(|| {
            PdError::invalid(format!("region {region_id} heartbeat has no leader"))
        })?;
        let mut state = self.state.write();
        if !state.stores.contains_key(&leader.store_id) {
            return Err(PdError::StoreNotFound {
                store_id: leader.store_id,
            });
        }
        self.put_region(&mut state, info)
    }

    /// Puts `info` into the region tree (replacing the older regions it overlaps) and persists
    /// the layout change.
    fn put_region(&self, state: &mut State, info: RegionInfo) -> Result<()> {
        let region_id = info.id();
        let region = info.region.clone();
        match state.regions.update(info) {
            UpdateOutcome::Stale { reason } => Err(PdError::StaleRegion { region_id, reason }),
            UpdateOutcome::StatsOnly => Ok(()),
            UpdateOutcome::MetaChanged { removed } => {
                let mut ops = vec![MetaOp::Put(
                    keys::region(region_id),
                    prost::Message::encode_to_vec(&region),
                )];
                ops.extend(removed.iter().map(|id| MetaOp::Delete(keys::region(*id))));
                if let Err(e) = self.store.write(ops) {
                    // Memory is ahead of disk now; the next heartbeat of this region rewrites
                    // it, and a restart reloads the older layout, which heartbeats then fix.
                    warn!(region_id, error = %e, "failed to persist region");
                    return Err(e.into());
                }
                Ok(())
            }
        }
    }

    /// Returns the region containing `key`.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], [`PdError::RegionNotFoundForKey`].
    pub fn region_by_key(&self, key: &[u8]) -> Result<RegionInfo> {
        self.check_bootstrapped()?;
        self.state
            .read()
            .regions
            .get_by_key(key)
            .cloned()
            .ok_or_else(|| PdError::RegionNotFoundForKey {
                key: hex_upper(key),
            })
    }

    /// Returns the region just before the one containing `key`.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], [`PdError::RegionNotFoundForKey`].
    pub fn prev_region_by_key(&self, key: &[u8]) -> Result<RegionInfo> {
        self.check_bootstrapped()?;
        self.state
            .read()
            .regions
            .get_prev_by_key(key)
            .cloned()
            .ok_or_else(|| PdError::RegionNotFoundForKey {
                key: hex_upper(key),
            })
    }

    /// Returns a region by id.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], [`PdError::RegionNotFound`].
    pub fn region_by_id(&self, region_id: u64) -> Result<RegionInfo> {
        self.check_bootstrapped()?;
        self.state
            .read()
            .regions
            .get(region_id)
            .cloned()
            .ok_or(PdError::RegionNotFound { region_id })
    }

    /// Returns up to `limit` regions (0: all) from the one containing `start` to `end`.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`].
    pub fn scan_regions(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<RegionInfo>> {
        self.check_bootstrapped()?;
        Ok(self
            .state
            .read()
            .regions
            .scan(start, end, limit)
            .into_iter()
            .cloned()
            .collect())
    }

    /// The ids of up to `limit` regions from the one containing `start`, in key order, and
    /// the end key of the last (empty when the tree ends there or holds no more).
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`].
    pub fn region_ids_from(&self, start: &[u8], limit: usize) -> Result<(Vec<u64>, Vec<u8>)> {
        self.check_bootstrapped()?;
        let state = self.state.read();
        let regions = state.regions.scan(start, &[], limit);
        let next = match regions.last() {
            Some(last) if regions.len() == limit => last.region.end_key.clone(),
            _ => Vec::new(),
        };
        Ok((regions.iter().map(|r| r.id()).collect(), next))
    }

    /// How many regions each store leads, as the regions' heartbeats last showed; stores
    /// leading none may be missing.
    pub fn leader_counts(&self) -> HashMap<u64, u64> {
        self.state.read().regions.leader_counts().clone()
    }

    /// Returns the number of regions and, per store, `(region count, leader count)`.
    pub fn region_counts(&self) -> (usize, BTreeMap<u64, (u64, u64)>) {
        let state = self.state.read();
        let mut per_store: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for info in state.regions.iter() {
            for peer in &info.region.peers {
                per_store.entry(peer.store_id).or_default().0 += 1;
            }
        }
        for (store_id, leaders) in state.regions.leader_counts() {
            per_store.entry(*store_id).or_default().1 = *leaders;
        }
        (state.regions.len(), per_store)
    }

    /// Allocates ids for splitting `region` into `split_count + 1` regions: one new region id
    /// and one new peer id per existing peer, for each split.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`]; [`PdError::InvalidValue`] for a zero count or a region
    /// without peers; [`PdError::RegionNotFound`]; a storage error.
    pub fn ask_batch_split(
        &self,
        region: &metapb::Region,
        split_count: u32,
    ) -> Result<Vec<pdpb::SplitId>> {
        self.check_bootstrapped()?;
        if split_count == 0 || split_count > MAX_SPLIT_COUNT {
            return Err(PdError::invalid(format!(
                "split_count must be between 1 and {MAX_SPLIT_COUNT}, got {split_count}"
            )));
        }
        if region.peers.is_empty() {
            return Err(PdError::invalid(format!(
                "region {} has no peers",
                region.id
            )));
        }
        if self.state.read().regions.get(region.id).is_none() {
            return Err(PdError::RegionNotFound {
                region_id: region.id,
            });
        }
        let per_split = 1 + region.peers.len() as u64;
        let ids = self.alloc_ids(per_split * u64::from(split_count))?;
        Ok(ids
            .chunks(per_split as usize)
            .map(|chunk| pdpb::SplitId {
                new_region_id: chunk[0],
                new_peer_ids: chunk[1..].to_vec(),
            })
            .collect())
    }

    /// Takes a split report into the region tree. The regions' own heartbeats would also bring
    /// the new layout, but one at a time: after the first, the tree has a hole where the rest
    /// of the old region was, and a client asking for a key there finds no region (the Rust
    /// client does not retry that). Regions the tree already knows at this version or newer
    /// are left alone; the others get as leader their peer on the store that led the old
    /// region, where the new regions campaign first. Their heartbeats then correct it.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], [`PdError::InvalidValue`] for fewer than two regions or
    /// regions that are not contiguous; a storage error.
    pub fn report_batch_split(&self, regions: &[metapb::Region]) -> Result<()> {
        self.check_bootstrapped()?;
        if regions.len() < 2 {
            return Err(PdError::invalid(
                "a split report needs at least two regions",
            ));
        }
        for pair in regions.windows(2) {
            if pair[0].end_key != pair[1].start_key {
                return Err(PdError::invalid(format!(
                    "split report regions {} and {} are not adjacent",
                    pair[0].id, pair[1].id
                )));
            }
        }
        info!(
            regions = ?regions.iter().map(|r| r.id).collect::<Vec<_>>(),
            "region split reported"
        );
        let mut state = self.state.write();
        let leader_store = regions
            .iter()
            .find_map(|r| state.regions.get(r.id).and_then(|info| info.leader))
            .map(|leader| leader.store_id);
        for region in regions {
            let reported = region.region_epoch.unwrap_or_default().version;
            if state
                .regions
                .get(region.id)
                .is_some_and(|known| known.epoch().version >= reported)
            {
                continue;
            }
            let leader =
                leader_store.and_then(|s| region.peers.iter().find(|p| p.store_id == s).copied());
            let info = RegionInfo {
                leader,
                ..RegionInfo::new(region.clone())
            };
            match self.put_region(&mut state, info) {
                // A newer layout of this range is already known.
                Err(PdError::StaleRegion { .. }) => {}
                result => result?,
            }
        }
        Ok(())
    }

    /// Returns the GC safe point.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`].
    pub fn gc_safe_point(&self) -> Result<u64> {
        self.check_bootstrapped()?;
        Ok(self.state.read().gc_safe_point)
    }

    /// Raises the GC safe point to `safe_point` if that is higher, and returns the safe point
    /// now in force. The safe point never moves back.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], a storage error.
    pub fn update_gc_safe_point(&self, safe_point: u64) -> Result<u64> {
        self.check_bootstrapped()?;
        let mut state = self.state.write();
        if safe_point > state.gc_safe_point {
            self.store
                .put(keys::GC_SAFE_POINT.into(), encode_u64(safe_point))?;
            info!(
                old = state.gc_safe_point,
                new = safe_point,
                "gc safe point updated"
            );
            state.gc_safe_point = safe_point;
        }
        Ok(state.gc_safe_point)
    }

    /// Returns the cluster's `metapb.Cluster`.
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`].
    pub fn cluster_meta(&self) -> Result<metapb::Cluster> {
        self.state.read().meta.ok_or(PdError::NotBootstrapped)
    }

    /// Replaces the cluster's `metapb.Cluster` (its `max_peer_count`).
    ///
    /// # Errors
    ///
    /// [`PdError::NotBootstrapped`], [`PdError::ClusterIdMismatch`] if `meta.id` is another
    /// cluster's, [`PdError::InvalidValue`] for a zero peer count, a storage error.
    pub fn put_cluster_meta(&self, meta: metapb::Cluster) -> Result<()> {
        self.check_bootstrapped()?;
        if meta.id != self.cluster_id {
            return Err(PdError::ClusterIdMismatch {
                expected: self.cluster_id,
                actual: meta.id,
            });
        }
        let mut replication = self.replication();
        replication.max_replicas = u64::from(meta.max_peer_count);
        self.set_replication(replication)
    }

    pub fn replication(&self) -> ReplicationConfig {
        self.state.read().replication.clone()
    }

    /// Replaces the replication settings, durably.
    ///
    /// # Errors
    ///
    /// [`PdError::InvalidValue`] if they do not validate, a storage error.
    pub fn set_replication(&self, replication: ReplicationConfig) -> Result<()> {
        replication.validate()?;
        let mut state = self.state.write();
        let mut ops = vec![MetaOp::Put(
            keys::REPLICATION.into(),
            serde_json::to_vec(&replication).expect("replication config serializes"),
        )];
        let meta = state.meta.map(|meta| metapb::Cluster {
            max_peer_count: replication.max_replicas as u32,
            ..meta
        });
        if let Some(meta) = &meta {
            ops.push(MetaOp::Put(
                keys::CLUSTER.into(),
                prost::Message::encode_to_vec(meta),
            ));
        }
        self.store.write(ops)?;
        info!(
            max_replicas = replication.max_replicas,
            "replication config updated"
        );
        state.replication = replication;
        if meta.is_some() {
            state.meta = meta;
        }
        Ok(())
    }
}

fn check_bootstrap_request(store: &metapb::Store, region: &metapb::Region) -> Result<()> {
    if store.id == 0 {
        return Err(PdError::invalid("bootstrap store id must not be 0"));
    }
    if store.address.is_empty() {
        return Err(PdError::invalid("bootstrap store has no address"));
    }
    if region.id == 0 {
        return Err(PdError::invalid("bootstrap region id must not be 0"));
    }
    if !region.start_key.is_empty() || !region.end_key.is_empty() {
        return Err(PdError::invalid("the first region must cover all keys"));
    }
    if region.region_epoch.is_none() {
        return Err(PdError::invalid("bootstrap region has no epoch"));
    }
    match region.peers.as_slice() {
        [peer] if peer.store_id == store.id && peer.id != 0 => Ok(()),
        _ => Err(PdError::invalid(format!(
            "the first region must have exactly one peer, on store {}",
            store.id
        ))),
    }
}

/// Formats a key as PD does in its API: upper-case hex.
pub fn hex_upper(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02X}")).collect()
}

/// Parses hex of either case, as keys come to PD's API; `None` if it is not hex.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    // `from_str_radix` alone would take a sign: "+f" is not a hex byte.
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
