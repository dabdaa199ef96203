//! A peer's storage: its raft log (raft-rs `Storage`), its persisted region and apply state,
//! and region snapshots — cut from the data engine at the applied index, and applied into it.
//!
//! Snapshots are generated off the raft thread by [`SnapGenerator`]: raft-rs asks for one with
//! `Storage::snapshot`; the first call starts generation and answers
//! `SnapshotTemporarilyUnavailable`, a later call (raft retries on the follower's next
//! response) takes the result.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam::channel::{self, Sender};
use engine_traits::{
    Iterable, KvEngine, Mutable, Peekable, Snapshot, WriteBatch, WriteOptions, CF_RAFT, DATA_CFS,
};
use kvproto::metapb;
use kvproto::raft_serverpb::{
    PeerState, RaftApplyState, RaftSnapshotData, RaftTruncatedState, RegionLocalState, SnapshotKv,
};
use parking_lot::Mutex;
use prost::Message as _;
use raft::eraftpb::{ConfState, Entry, Snapshot as RaftSnapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use raft_log_engine::{RaftLogEngine, RaftLogStorage};
use tracing::{error, info};
use types::RegionId;

use crate::errors::{Error, Result};

/// Term and index a region's log starts at when it is created by bootstrap or a split, as in
/// TiKV: above 0 so that a peer created by a raft message (with an empty log) can be told
/// apart and is sent a snapshot.
pub const RAFT_INIT_LOG_TERM: u64 = 5;
pub const RAFT_INIT_LOG_INDEX: u64 = 5;

/// The configuration of `region` as raft-rs sees it.
pub fn conf_state_from_region(region: &metapb::Region) -> ConfState {
    let mut conf_state = ConfState::default();
    for peer in &region.peers {
        if peer.role == metapb::PeerRole::Learner as i32 {
            conf_state.mut_learners().push(peer.id);
        } else {
            conf_state.mut_voters().push(peer.id);
        }
    }
    conf_state
}

fn decode<M: prost::Message + Default>(what: &str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// Loads a region's apply state.
///
/// # Errors
///
/// Engine errors, or a corrupt record.
pub fn load_apply_state(kv: &impl Peekable, region_id: u64) -> Result<Option<RaftApplyState>> {
    kv.get_value_cf(CF_RAFT, &keys::apply_state_key(region_id))?
        .map(|bytes| decode("apply state", &bytes))
        .transpose()
}

/// Loads a region's local state.
///
/// # Errors
///
/// Engine errors, or a corrupt record.
pub fn load_region_state(kv: &impl Peekable, region_id: u64) -> Result<Option<RegionLocalState>> {
    kv.get_value_cf(CF_RAFT, &keys::region_state_key(region_id))?
        .map(|bytes| decode("region state", &bytes))
        .transpose()
}

/// Loads every region state on this store, in region id order.
///
/// # Errors
///
/// Engine errors, or a corrupt record.
pub fn load_all_region_states(kv: &impl Iterable) -> Result<Vec<RegionLocalState>> {
    let (start, end) = keys::region_state_range();
    let mut states = Vec::new();
    let mut corrupt = None;
    kv.scan(CF_RAFT, &start, &end, |key, value| {
        if keys::decode_region_state_key(key).is_some() {
            match RegionLocalState::decode(value) {
                Ok(state) => states.push(state),
                Err(e) => corrupt = Some(e.to_string()),
            }
        }
        Ok(corrupt.is_none())
    })?;
    if let Some(reason) = corrupt {
        return Err(Error::Corrupt {
            what: "region state".into(),
            reason,
        });
    }
    Ok(states)
}

/// Adds the region state and the apply state of a region whose log starts at
/// [`RAFT_INIT_LOG_INDEX`] to `batch`.
pub fn write_initial_apply_state(batch: &mut impl Mutable, region: &metapb::Region) -> Result<()> {
    write_states_at(batch, region, RAFT_INIT_LOG_INDEX, RAFT_INIT_LOG_TERM).map(|_| ())
}

/// Adds a Normal region state for `region` and an apply state whose log starts after
/// `(index, term)` to `batch`; returns the apply state.
fn write_states_at(
    batch: &mut impl Mutable,
    region: &metapb::Region,
    index: u64,
    term: u64,
) -> Result<RaftApplyState> {
    let region_state = RegionLocalState {
        state: PeerState::Normal as i32,
        region: Some(region.clone()),
    };
    let apply_state = RaftApplyState {
        applied_index: index,
        applied_term: term,
        truncated_state: Some(RaftTruncatedState { index, term }),
        commit_index: index,
        commit_term: term,
    };
    batch.put_cf(
        CF_RAFT,
        &keys::region_state_key(region.id),
        &region_state.encode_to_vec(),
    )?;
    batch.put_cf(
        CF_RAFT,
        &keys::apply_state_key(region.id),
        &apply_state.encode_to_vec(),
    )?;
    Ok(apply_state)
}

/// Starts a region's raft log at [`RAFT_INIT_LOG_INDEX`] with `region`'s peers, unless it
/// already has entries or a compaction point past that (then it is left alone). A hard state
/// with a higher term (a vote cast before the region was created here) is kept.
///
/// # Errors
///
/// Raft log errors.
pub fn write_initial_raft_state<ER: RaftLogEngine>(
    raft: &ER,
    region: &metapb::Region,
) -> Result<()> {
    let log = RaftLogStorage::open(raft.clone(), RegionId(region.id))?;
    if log.truncated().0 >= RAFT_INIT_LOG_INDEX || log.last_index()? >= RAFT_INIT_LOG_INDEX {
        return Ok(());
    }
    let mut meta = SnapshotMetadata {
        index: RAFT_INIT_LOG_INDEX,
        term: RAFT_INIT_LOG_TERM,
        ..Default::default()
    };
    meta.set_conf_state(conf_state_from_region(region));
    log.apply_snapshot(&meta)?;
    Ok(())
}

/// Where the generation of a peer's snapshot stands.
#[derive(Default)]
enum SnapState {
    #[default]
    Idle,
    Generating,
    Ready(RaftSnapshot),
    Failed,
}

struct GenTask<EK: KvEngine> {
    region_id: u64,
    kv: EK,
    slot: Arc<Mutex<SnapState>>,
}

/// A thread that cuts region snapshots from the data engine.
pub struct SnapGenerator<EK: KvEngine> {
    sender: Sender<GenTask<EK>>,
}

impl<EK: KvEngine> Clone for SnapGenerator<EK> {
    fn clone(&self) -> Self {
        SnapGenerator {
            sender: self.sender.clone(),
        }
    }
}

impl<EK: KvEngine> SnapGenerator<EK> {
    /// Starts the generator thread; it stops when every handle is dropped.
    ///
    /// # Errors
    ///
    /// If the thread cannot be spawned.
    pub fn start() -> std::io::Result<(Self, JoinHandle<()>)> {
        let (sender, receiver) = channel::unbounded::<GenTask<EK>>();
        let handle = std::thread::Builder::new()
            .name("snap-generator".into())
            .spawn(move || {
                for task in receiver {
                    let result = generate_snapshot(&task.kv.snapshot(), task.region_id);
                    *task.slot.lock() = match result {
                        Ok(snapshot) => {
                            crate::metrics::SNAPSHOTS.with_label_values(&["generate"]).inc();
                            info!(
                                region_id = task.region_id,
                                index = snapshot.get_metadata().index,
                                bytes = snapshot.data.len(),
                                "snapshot generated"
                            );
                            SnapState::Ready(snapshot)
                        }
                        Err(e) => {
                            error!(region_id = task.region_id, error = %e, "snapshot generation failed");
                            SnapState::Failed
                        }
                    };
                }
            })?;
        Ok((SnapGenerator { sender }, handle))
    }
}

/// Cuts a snapshot of `region_id` from `kv` at its applied index: the region, its data in every
/// data column family, and raft metadata (index, term, configuration) of the applied entry.
///
/// # Errors
///
/// Engine errors; a region without apply or region state.
pub fn generate_snapshot<S: Snapshot>(kv: &S, region_id: u64) -> Result<RaftSnapshot> {
    let apply_state = load_apply_state(kv, region_id)?.ok_or(Error::RegionNotFound {
        region_id: RegionId(region_id),
    })?;
    let region = load_region_state(kv, region_id)?
        .and_then(|s| s.region)
        .ok_or(Error::RegionNotFound {
            region_id: RegionId(region_id),
        })?;
    let start = keys::data_key(&region.start_key);
    let end = keys::data_end_key(&region.end_key);
    let mut kvs = Vec::new();
    for cf in DATA_CFS {
        kv.scan(cf, &start, &end, |key, value| {
            kvs.push(SnapshotKv {
                cf: cf.to_string(),
                key: keys::origin_key(key).to_vec(),
                value: value.to_vec(),
            });
            Ok(true)
        })?;
    }
    let mut snapshot = RaftSnapshot::default();
    let meta = snapshot.mut_metadata();
    meta.index = apply_state.applied_index;
    meta.term = apply_state.applied_term;
    meta.set_conf_state(conf_state_from_region(&region));
    snapshot.data = Bytes::from(
        RaftSnapshotData {
            region: Some(region),
            kvs,
        }
        .encode_to_vec(),
    );
    Ok(snapshot)
}

/// The region a snapshot carries (its range and epoch when it was cut).
///
/// # Errors
///
/// Undecodable snapshot data, or data without a region.
pub fn snapshot_region(snapshot: &RaftSnapshot) -> Result<metapb::Region> {
    // The region only: decoding skips the data (a snapshot carries the region's every key).
    let data: SnapshotRegionOnly = decode("snapshot data", &snapshot.data)?;
    data.region.ok_or_else(|| Error::Corrupt {
        what: "snapshot data".into(),
        reason: "no region".into(),
    })
}

/// `RaftSnapshotData` without its key-value pairs, which decoding skips.
#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotRegionOnly {
    #[prost(message, optional, tag = "1")]
    region: Option<metapb::Region>,
}

/// Replaces the data of the snapshot's region with the snapshot's, and moves the region's apply
/// state to the snapshot, in one write that is not synced: the caller makes it durable
/// (`snap_apply`) before the raft log records the snapshot. Returns the new region and apply
/// state.
///
/// `replaced` is the range the peer holds now, if it holds one: what of it the snapshot's
/// region no longer covers (a split this replica missed moved it to another region) is
/// deleted in the same write, as TiKV's `clear_extra_data`. No other region of the store can
/// own any of it until the peer takes on the snapshot's region, after this write.
///
/// # Errors
///
/// Undecodable snapshot data, engine errors.
pub fn write_snapshot_data<EK: KvEngine>(
    kv: &EK,
    snapshot: &RaftSnapshot,
    replaced: Option<&metapb::Region>,
) -> Result<(metapb::Region, RaftApplyState)> {
    fail::fail_point!("before_write_snapshot_data");
    let data: RaftSnapshotData = decode("snapshot data", &snapshot.data)?;
    let region = data.region.ok_or_else(|| Error::Corrupt {
        what: "snapshot data".into(),
        reason: "no region".into(),
    })?;
    let meta = snapshot.get_metadata();
    let mut batch = kv.write_batch();
    let start = keys::data_key(&region.start_key);
    let end = keys::data_end_key(&region.end_key);
    let mut deleted = vec![(start, end)];
    if let Some(replaced) = replaced {
        deleted.extend(ranges_outside(replaced, &region));
    }
    for (start, end) in &deleted {
        for cf in DATA_CFS {
            batch.delete_range_cf(cf, start, end)?;
        }
    }
    for pair in &data.kvs {
        let cf = engine_traits::data_cf(&pair.cf).ok_or_else(|| Error::Corrupt {
            what: "snapshot data".into(),
            reason: format!("unknown column family {:?}", pair.cf),
        })?;
        batch.put_cf(cf, &keys::data_key(&pair.key), &pair.value)?;
    }
    let apply_state = write_states_at(&mut batch, &region, meta.index, meta.term)?;
    batch.write_opt(WriteOptions { sync: false })?;
    Ok((region, apply_state))
}

/// The parts of `outer`'s range that `inner`'s does not cover, as data-key ranges (at most
/// one before `inner` and one after it).
fn ranges_outside(outer: &metapb::Region, inner: &metapb::Region) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (outer_start, outer_end) = (
        keys::data_key(&outer.start_key),
        keys::data_end_key(&outer.end_key),
    );
    let (inner_start, inner_end) = (
        keys::data_key(&inner.start_key),
        keys::data_end_key(&inner.end_key),
    );
    let mut ranges = Vec::new();
    if outer_start < inner_start {
        ranges.push((outer_start.clone(), inner_start.min(outer_end.clone())));
    }
    if inner_end < outer_end {
        ranges.push((inner_end.max(outer_start), outer_end));
    }
    ranges
}

/// A peer's storage, owned by its raft-rs `RawNode`.
pub struct PeerStorage<EK: KvEngine, ER: RaftLogEngine> {
    pub raft_log: RaftLogStorage<ER>,
    kv: EK,
    region_id: u64,
    /// The configuration raft starts from: the region's peers as of the applied index (the
    /// data engine's region state is written with the applied index, so the two agree even
    /// when the raft log's own conf state lags behind applied conf changes).
    initial_conf_state: Option<ConfState>,
    snap_state: Arc<Mutex<SnapState>>,
    generator: SnapGenerator<EK>,
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerStorage<EK, ER> {
    /// # Errors
    ///
    /// Raft log read errors.
    pub fn open(
        kv: EK,
        raft: ER,
        region: &metapb::Region,
        generator: SnapGenerator<EK>,
    ) -> Result<Self> {
        Ok(PeerStorage {
            raft_log: RaftLogStorage::open(raft, RegionId(region.id))?,
            kv,
            region_id: region.id,
            initial_conf_state: (!region.peers.is_empty()).then(|| conf_state_from_region(region)),
            snap_state: Arc::default(),
            generator,
        })
    }

    /// Whether a peer with this storage has data: a peer created by a raft message starts with
    /// an empty log until its first snapshot.
    pub fn is_initialized(&self) -> bool {
        self.raft_log.truncated().0 > 0 || self.raft_log.hard_state().commit > 0
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> Storage for PeerStorage<EK, ER> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let mut state = self.raft_log.initial_state()?;
        if let Some(conf_state) = &self.initial_conf_state {
            state.conf_state = conf_state.clone();
        }
        Ok(state)
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.raft_log.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.raft_log.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.raft_log.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.raft_log.last_index()
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<RaftSnapshot> {
        let mut state = self.snap_state.lock();
        match std::mem::take(&mut *state) {
            SnapState::Ready(snapshot) if snapshot.get_metadata().index >= request_index => {
                return Ok(snapshot);
            }
            SnapState::Generating => {
                *state = SnapState::Generating;
                return Err(raft::Error::Store(
                    StorageError::SnapshotTemporarilyUnavailable,
                ));
            }
            SnapState::Ready(_) | SnapState::Idle | SnapState::Failed => {}
        }
        *state = SnapState::Generating;
        let task = GenTask {
            region_id: self.region_id,
            kv: self.kv.clone(),
            slot: self.snap_state.clone(),
        };
        if self.generator.sender.send(task).is_err() {
            *state = SnapState::Failed;
        }
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use engine_memory::MemoryEngine;
    use engine_traits::CF_DEFAULT;
    use raft_log_engine::{RaftEngineConfig, RaftEngineLog};

    use super::*;

    fn region(id: u64, start: &[u8], end: &[u8]) -> metapb::Region {
        metapb::Region {
            id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 1,
                version: 1,
            }),
            peers: vec![metapb::Peer {
                id: id + 100,
                store_id: 1,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn initial_state_starts_at_index_five() {
        let dir = tempfile::tempdir().unwrap();
        let raft = RaftEngineLog::open(&RaftEngineConfig::new(dir.path())).unwrap();
        let kv = MemoryEngine::new();
        let r = region(2, b"", b"");
        let mut batch = kv.write_batch();
        write_initial_apply_state(&mut batch, &r).unwrap();
        batch.write_opt(WriteOptions::default()).unwrap();
        write_initial_raft_state(&raft, &r).unwrap();
        let (generator, _handle) = SnapGenerator::start().unwrap();
        let storage = PeerStorage::open(kv.clone(), raft.clone(), &r, generator).unwrap();
        assert!(storage.is_initialized());
        assert_eq!(storage.first_index().unwrap(), RAFT_INIT_LOG_INDEX + 1);
        assert_eq!(
            storage.term(RAFT_INIT_LOG_INDEX).unwrap(),
            RAFT_INIT_LOG_TERM
        );
        let state = storage.initial_state().unwrap();
        assert_eq!(state.conf_state.voters, vec![102]);
        assert_eq!(load_apply_state(&kv, 2).unwrap().unwrap().applied_index, 5);
        assert_eq!(load_all_region_states(&kv).unwrap().len(), 1);
        // Idempotent.
        write_initial_raft_state(&raft, &r).unwrap();
    }

    /// Writes a snapshot of region 3 over `b..d` (holding `b` and `c`) into an engine that
    /// holds `a`, `bb` and `x`, the peer there holding `replaced`; returns what the engine
    /// holds after.
    fn write_snapshot_over(replaced: Option<&metapb::Region>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let source = MemoryEngine::new();
        let r = region(3, b"b", b"d");
        let mut batch = source.write_batch();
        write_initial_apply_state(&mut batch, &r).unwrap();
        for key in [&b"a"[..], b"b", b"c", b"d"] {
            batch.put_cf(CF_DEFAULT, &keys::data_key(key), key).unwrap();
        }
        batch.write_opt(WriteOptions::default()).unwrap();
        let snapshot = generate_snapshot(&source.snapshot(), 3).unwrap();
        assert_eq!(snapshot.get_metadata().index, RAFT_INIT_LOG_INDEX);

        let target = MemoryEngine::new();
        let mut batch = target.write_batch();
        for key in [&b"a"[..], b"bb", b"x"] {
            batch
                .put_cf(CF_DEFAULT, &keys::data_key(key), b"old")
                .unwrap();
        }
        batch.write_opt(WriteOptions::default()).unwrap();
        assert_eq!(snapshot_region(&snapshot).unwrap(), r);
        let (applied_region, apply_state) =
            write_snapshot_data(&target, &snapshot, replaced).unwrap();
        assert_eq!(applied_region, r);
        assert_eq!(apply_state.applied_index, RAFT_INIT_LOG_INDEX);
        let mut seen = Vec::new();
        target
            .scan(
                CF_DEFAULT,
                keys::DATA_MIN_KEY,
                keys::DATA_MAX_KEY,
                |k, v| {
                    seen.push((keys::origin_key(k).to_vec(), v.to_vec()));
                    Ok(true)
                },
            )
            .unwrap();
        seen
    }

    fn pairs(pairs: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn snapshot_round_trip_replaces_only_the_region() {
        assert_eq!(
            write_snapshot_over(None),
            pairs(&[(b"a", b"old"), (b"b", b"b"), (b"c", b"c"), (b"x", b"old")])
        );
    }

    /// A replica that missed a split gets a snapshot of its narrowed region: the data of the
    /// range it held that the region no longer covers is deleted with the write.
    #[test]
    fn a_snapshot_of_a_narrower_region_deletes_the_rest_of_the_replaced_range() {
        let replaced = region(3, b"a", b"e");
        assert_eq!(
            write_snapshot_over(Some(&replaced)),
            pairs(&[(b"b", b"b"), (b"c", b"c"), (b"x", b"old")])
        );
        let whole = region(3, b"", b"");
        assert_eq!(
            write_snapshot_over(Some(&whole)),
            pairs(&[(b"b", b"b"), (b"c", b"c")])
        );
    }

    #[test]
    fn the_ranges_outside_a_region_end_where_the_outer_one_does() {
        let data = |key: &[u8]| keys::data_key(key);
        assert_eq!(
            ranges_outside(&region(1, b"", b""), &region(1, b"b", b"d")),
            vec![
                (data(b""), data(b"b")),
                (data(b"d"), keys::DATA_MAX_KEY.to_vec())
            ]
        );
        assert_eq!(
            ranges_outside(&region(1, b"b", b"d"), &region(1, b"b", b"d")),
            Vec::<(Vec<u8>, Vec<u8>)>::new()
        );
        assert_eq!(
            ranges_outside(&region(1, b"b", b"m"), &region(1, b"b", b"")),
            Vec::<(Vec<u8>, Vec<u8>)>::new()
        );
        assert_eq!(
            ranges_outside(&region(1, b"m", b"z"), &region(1, b"a", b"c")),
            vec![(data(b"m"), data(b"z"))]
        );
    }
}
