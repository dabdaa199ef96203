//! One region's raft log as raft-rs's [`Storage`].

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::RwLock;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use types::RegionId;

use crate::engine::{MetaKey, RaftLogBatch, RaftLogEngine};
use crate::metrics;
use crate::{Error, Result};

/// What the storage keeps in memory of the log's metadata; equal to what is on disk after a
/// write returns, except after a visible staged append (see [`EntryCache::unwritten_from`]).
#[derive(Clone, Debug, Default)]
struct State {
    hard_state: HardState,
    conf_state: ConfState,
    /// The compaction point: the log holds entries after `index` only; `term` is kept so that
    /// `term(first_index - 1)` stays answerable, as raft requires.
    truncated: SnapshotMetadata,
    last_index: u64,
    last_term: u64,
}

impl State {
    fn first_index(&self) -> u64 {
        self.truncated.index + 1
    }
}

/// Most entries the cache of one region keeps, in bytes of entry data; older entries beyond
/// it are dropped even if not applied yet (a stalled apply must not grow memory without bound).
const ENTRY_CACHE_MAX_BYTES: u64 = 4 << 20;

/// The newest entries of the log, in memory (TiKV's entry cache): contiguous and ending at
/// `State::last_index` when not empty. Reads at or after its first index never touch the
/// engine, so the leader's commit check (`term` of the new commit index), the committed entries
/// handed to apply and the appends to followers do not read back (and decompress) what was
/// just written. The peer trims it as entries are applied ([`RaftLogStorage::compact_cache_to`]).
#[derive(Debug, Default)]
struct EntryCache {
    entries: VecDeque<Entry>,
    /// Sum of the entries' data and context lengths.
    bytes: u64,
    /// First index of the entries of a visible staged append whose batch is not written yet:
    /// the engine's entries from there on are stale or missing, so these are never trimmed
    /// before [`RaftLogStorage::finish_append`].
    unwritten_from: Option<u64>,
}

fn entry_bytes(entry: &Entry) -> u64 {
    (entry.data.len() + entry.context.len()) as u64
}

impl EntryCache {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.index)
    }

    fn get(&self, index: u64) -> Option<&Entry> {
        let first = self.first_index()?;
        index
            .checked_sub(first)
            .and_then(|offset| self.entries.get(offset as usize))
    }

    /// Adds entries just appended to the log, replacing the cached tail they overwrite.
    fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first().map(|e| e.index) else {
            return;
        };
        while self.entries.back().is_some_and(|e| e.index >= first) {
            let dropped = self.entries.pop_back().expect("back exists");
            self.bytes -= entry_bytes(&dropped);
        }
        if self.entries.back().is_some_and(|e| e.index + 1 != first) {
            self.clear();
        }
        for entry in entries {
            self.bytes += entry_bytes(entry);
            self.entries.push_back(entry.clone());
        }
        while self.bytes > ENTRY_CACHE_MAX_BYTES && self.trim_front(u64::MAX) {}
    }

    /// Drops entries before `index`, keeping unwritten ones.
    fn compact_to(&mut self, index: u64) {
        while self.trim_front(index) {}
    }

    /// Drops the first entry if it is before `index` and written; says whether it did.
    fn trim_front(&mut self, index: u64) -> bool {
        let limit = self.unwritten_from.map_or(index, |u| u.min(index));
        if self.first_index().is_none_or(|first| first >= limit) {
            return false;
        }
        let dropped = self.entries.pop_front().expect("front exists");
        self.bytes -= entry_bytes(&dropped);
        true
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// The state and the entry cache, under one lock.
#[derive(Debug, Default)]
struct Inner {
    state: State,
    cache: EntryCache,
}

/// The raft log of one region on a shared [`RaftLogEngine`]. Clones share the cached state.
///
/// Error contract of the [`Storage`] methods (what raft-rs expects, plus our choice where it
/// would panic):
/// - an index at or below the compaction point yields `StorageError::Compacted`;
/// - an index above the last one yields `StorageError::Unavailable` (raft-rs's own
///   `MemStorage` panics for `entries` with `high > last_index + 1`; we return the error);
/// - a snapshot older than the requested index yields `SnapshotTemporarilyUnavailable`.
#[derive(Clone)]
pub struct RaftLogStorage<E: RaftLogEngine> {
    region: RegionId,
    engine: E,
    inner: Arc<RwLock<Inner>>,
}

/// A set of changes to one region's log, persisted in one batch.
#[derive(Default)]
struct Changes<'a> {
    /// Install this compaction point (a snapshot): all entries are removed first.
    snapshot: Option<&'a SnapshotMetadata>,
    entries: &'a [Entry],
    hard_state: Option<&'a HardState>,
    conf_state: Option<&'a ConfState>,
}

impl<E: RaftLogEngine> RaftLogStorage<E> {
    /// Loads the region's state from `engine`. A region with nothing stored starts empty:
    /// first index 1, last index 0.
    ///
    /// # Errors
    /// Backend read errors and corrupt metadata.
    pub fn open(engine: E, region: RegionId) -> Result<Self> {
        let mut state = State {
            hard_state: engine.meta(region, MetaKey::HardState)?.unwrap_or_default(),
            conf_state: engine.meta(region, MetaKey::ConfState)?.unwrap_or_default(),
            truncated: engine
                .meta(region, MetaKey::SnapshotMeta)?
                .unwrap_or_default(),
            ..State::default()
        };
        state.last_index = state.truncated.index;
        state.last_term = state.truncated.term;
        if let Some((_, last)) = engine.entry_span(region)? {
            if last > state.truncated.index {
                let entry = engine.entry(region, last)?;
                let entry = entry.ok_or(Error::MissingEntry {
                    region,
                    index: last,
                })?;
                state.last_index = last;
                state.last_term = entry.term;
            }
        }
        Ok(RaftLogStorage {
            region,
            engine,
            inner: Arc::new(RwLock::new(Inner {
                state,
                cache: EntryCache::default(),
            })),
        })
    }

    pub fn region(&self) -> RegionId {
        self.region
    }

    pub fn hard_state(&self) -> HardState {
        self.inner.read().state.hard_state.clone()
    }

    pub fn conf_state(&self) -> ConfState {
        self.inner.read().state.conf_state.clone()
    }

    /// The compaction point: index and term the log starts after.
    pub fn truncated(&self) -> (u64, u64) {
        let state = &self.inner.read().state;
        (state.truncated.index, state.truncated.term)
    }

    /// Persists what a raft `Ready` asks for: new entries (replacing any conflicting tail) and
    /// the hard state, in one write.
    ///
    /// # Errors
    /// [`Error::NonContiguous`] when the entries would leave a gap after the stored log or
    /// overwrite its compacted part; backend errors.
    pub fn append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<()> {
        self.write(
            Changes {
                entries,
                hard_state,
                ..Changes::default()
            },
            sync,
        )
    }

    pub fn set_hard_state(&self, hard_state: &HardState) -> Result<()> {
        self.write(
            Changes {
                hard_state: Some(hard_state),
                ..Changes::default()
            },
            true,
        )
    }

    pub fn set_conf_state(&self, conf_state: &ConfState) -> Result<()> {
        self.write(
            Changes {
                conf_state: Some(conf_state),
                ..Changes::default()
            },
            true,
        )
    }

    /// Installs a snapshot's metadata: drops every entry, moves the compaction point to the
    /// snapshot and adopts its configuration; the commit index moves up to it. The snapshot's
    /// data belongs to the state machine and is applied by the caller.
    ///
    /// # Errors
    /// `StorageError::SnapshotOutOfDate` (wrapped in [`raft::Error`]) when the snapshot is
    /// older than the compaction point.
    pub fn apply_snapshot(&self, meta: &SnapshotMetadata) -> raft::Result<()> {
        let mut hard_state = {
            let state = &self.inner.read().state;
            if meta.index < state.truncated.index {
                return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
            }
            state.hard_state.clone()
        };
        hard_state.term = hard_state.term.max(meta.term);
        hard_state.commit = hard_state.commit.max(meta.index);
        let changes = Changes {
            snapshot: Some(meta),
            hard_state: Some(&hard_state),
            conf_state: meta.conf_state.as_ref(),
            ..Changes::default()
        };
        Ok(self.write(changes, true)?)
    }

    /// Drops entries before `compact_index`, so that it becomes the first index. Compacting
    /// to or below the current first index does nothing.
    ///
    /// # Errors
    /// `StorageError::Unavailable` when `compact_index` is beyond `last_index + 1`.
    pub fn compact(&self, compact_index: u64) -> raft::Result<()> {
        let truncated = {
            let inner = self.inner.read();
            let state = &inner.state;
            if compact_index <= state.first_index() {
                return Ok(());
            }
            if compact_index > state.last_index + 1 {
                return Err(raft::Error::Store(StorageError::Unavailable));
            }
            let mut truncated = state.truncated.clone();
            truncated.index = compact_index - 1;
            truncated.term = self.term_of(&inner, compact_index - 1)?;
            truncated.set_conf_state(state.conf_state.clone());
            truncated
        };
        let mut batch = self.engine.new_batch();
        batch.put_meta(self.region, MetaKey::SnapshotMeta, &truncated)?;
        self.engine.write(&mut batch, true)?;
        {
            let mut inner = self.inner.write();
            inner.state.truncated = truncated;
            inner.cache.compact_to(compact_index);
        }
        self.engine.compact_to(self.region, compact_index)?;
        Ok(())
    }

    /// Drops cached entries before `index` (the peer passes its applied index plus one): they
    /// are read from the engine from then on, if at all.
    pub fn compact_cache_to(&self, index: u64) {
        self.inner.write().cache.compact_to(index);
    }

    /// Adds a ready's entries and hard state to `batch`, a write shared with other regions
    /// (group commit: one synced write per raftstore poll round). The storage answers from
    /// the old state until [`RaftLogStorage::finish_append`] is called after the batch is
    /// written; raft-rs keeps the entries in its unstable log until then.
    ///
    /// # Errors
    /// As [`RaftLogStorage::append`].
    pub fn stage_append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        batch: &mut E::Batch,
    ) -> Result<StagedAppend> {
        let mut staged = self.stage_append_hidden(entries, hard_state, batch)?;
        staged.entries = entries.to_vec();
        Ok(staged)
    }

    fn stage_append_hidden(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        batch: &mut E::Batch,
    ) -> Result<StagedAppend> {
        // Most readies of an awake, idle region (heartbeats, ticks) persist nothing.
        if !entries.is_empty() || hard_state.is_some() {
            let inner = self.inner.read();
            let changes = Changes {
                entries,
                hard_state,
                ..Changes::default()
            };
            self.stage(&inner.state, changes, batch)?;
        }
        Ok(StagedAppend {
            last: entries.last().map(|e| (e.index, e.term)),
            hard_state: hard_state.cloned(),
            entries: Vec::new(),
        })
    }

    /// As [`RaftLogStorage::stage_append`], but the entries are readable at once, before the
    /// batch is written: raft-rs's `advance_append_async`, used when another thread writes
    /// the batch, drops them from its unstable log and reads them from here. At most one
    /// such append may be unfinished.
    ///
    /// # Errors
    /// As [`RaftLogStorage::append`].
    pub fn stage_append_visible(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        batch: &mut E::Batch,
    ) -> Result<StagedAppend> {
        let staged = self.stage_append_hidden(entries, hard_state, batch)?;
        if let Some((index, term)) = staged.last {
            let mut inner = self.inner.write();
            inner.cache.append(entries);
            inner.cache.unwritten_from = entries.first().map(|e| e.index);
            inner.state.last_index = index;
            inner.state.last_term = term;
        }
        Ok(staged)
    }

    /// Makes a staged append visible, once the batch it was staged into is written.
    pub fn finish_append(&self, staged: StagedAppend) {
        let mut inner = self.inner.write();
        inner.cache.append(&staged.entries);
        inner.cache.unwritten_from = None;
        if let Some((index, term)) = staged.last {
            inner.state.last_index = index;
            inner.state.last_term = term;
        }
        if let Some(hard_state) = staged.hard_state {
            inner.state.hard_state = hard_state;
        }
    }

    fn write(&self, changes: Changes<'_>, sync: bool) -> Result<()> {
        let mut inner = self.inner.write();
        let mut batch = self.engine.new_batch();
        let (snapshot, entries) = (changes.snapshot.is_some(), changes.entries);
        let next = self.stage(&inner.state, changes, &mut batch)?;
        self.engine.write(&mut batch, sync)?;
        inner.state = next;
        if snapshot {
            inner.cache.clear();
        }
        inner.cache.append(entries);
        Ok(())
    }

    /// Adds `changes` to `batch` and returns the state they lead to from `state`.
    fn stage(&self, state: &State, changes: Changes<'_>, batch: &mut E::Batch) -> Result<State> {
        let region = self.region;
        let mut next = state.clone();
        if let Some(meta) = changes.snapshot {
            batch.clear_entries(region)?;
            batch.put_meta(region, MetaKey::SnapshotMeta, meta)?;
            next.truncated = meta.clone();
            next.last_index = meta.index;
            next.last_term = meta.term;
        }
        if let (Some(first), Some(last)) = (changes.entries.first(), changes.entries.last()) {
            if first.index < next.first_index() || first.index > next.last_index + 1 {
                let (log_first, log_last) = (next.first_index(), next.last_index);
                return Err(Error::NonContiguous {
                    region,
                    first: first.index,
                    log_first,
                    log_last,
                });
            }
            batch.append(region, changes.entries)?;
            next.last_index = last.index;
            next.last_term = last.term;
        }
        if let Some(hard_state) = changes.hard_state {
            batch.put_meta(region, MetaKey::HardState, hard_state)?;
            next.hard_state = hard_state.clone();
        }
        if let Some(conf_state) = changes.conf_state {
            batch.put_meta(region, MetaKey::ConfState, conf_state)?;
            next.conf_state = conf_state.clone();
        }
        Ok(next)
    }

    /// The term of the entry at `idx`, with the lock held.
    fn term_of(&self, inner: &Inner, idx: u64) -> raft::Result<u64> {
        let state = &inner.state;
        if idx == state.truncated.index {
            return Ok(state.truncated.term);
        }
        if idx < state.truncated.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > state.last_index {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if idx == state.last_index {
            return Ok(state.last_term);
        }
        if let Some(entry) = inner.cache.get(idx) {
            metrics::ENTRY_CACHE_HITS.inc();
            return Ok(entry.term);
        }
        metrics::ENTRY_CACHE_MISSES.inc();
        match self.engine.entry(self.region, idx)? {
            Some(entry) => Ok(entry.term),
            None => Err(Error::MissingEntry {
                region: self.region,
                index: idx,
            }
            .into()),
        }
    }
}

/// An append staged into a shared batch, to be made visible with
/// [`RaftLogStorage::finish_append`] once the batch is written.
#[must_use = "a staged append is visible only once finished"]
#[derive(Debug)]
pub struct StagedAppend {
    /// The new last index and term, when entries were staged.
    last: Option<(u64, u64)>,
    hard_state: Option<HardState>,
    /// Entries to cache once written (empty when they were cached at staging).
    entries: Vec<Entry>,
}

/// Removes everything stored for `region`, entries and metadata, so that a new peer of the
/// region can start from an empty log (after the old one was destroyed).
///
/// # Errors
/// Backend errors.
pub fn clear_region<E: RaftLogEngine>(engine: &E, region: RegionId) -> Result<()> {
    let mut batch = engine.new_batch();
    batch.clear_entries(region)?;
    batch.put_meta(region, MetaKey::HardState, &HardState::default())?;
    batch.put_meta(region, MetaKey::ConfState, &ConfState::default())?;
    batch.put_meta(region, MetaKey::SnapshotMeta, &SnapshotMetadata::default())?;
    engine.write(&mut batch, true)
}

impl<E: RaftLogEngine> Storage for RaftLogStorage<E> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let state = &self.inner.read().state;
        Ok(RaftState::new(
            state.hard_state.clone(),
            state.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let inner = self.inner.read();
        if low < inner.state.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > inner.state.last_index + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut entries = Vec::with_capacity(high.saturating_sub(low) as usize);
        let max_size = max_size.into().filter(|m| *m != raft::NO_LIMIT);
        // The cache ends at the last index: below its first index the engine answers.
        let stored_high = inner
            .cache
            .first_index()
            .map_or(high, |f| f.min(high))
            .max(low);
        if low < stored_high {
            metrics::ENTRY_CACHE_MISSES.inc();
            self.engine
                .fetch_entries(self.region, low, stored_high, max_size, &mut entries)?;
            if entries.len() < (stored_high - low) as usize {
                return Ok(entries);
            }
        } else {
            metrics::ENTRY_CACHE_HITS.inc();
        }
        let mut total: u64 = entries.iter().map(|e| u64::from(e.compute_size())).sum();
        for index in stored_high..high {
            let entry = inner.cache.get(index).ok_or(Error::MissingEntry {
                region: self.region,
                index,
            })?;
            if !crate::engine::within_size(total, entry, max_size, entries.len()) {
                break;
            }
            total += u64::from(entry.compute_size());
            entries.push(entry.clone());
        }
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.term_of(&self.inner.read(), idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.inner.read().state.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.inner.read().state.last_index)
    }

    /// Returns the metadata of a snapshot at the commit index with the current configuration.
    /// The data is empty: the state machine (raftstore) fills it in.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let inner = self.inner.read();
        let commit = inner.state.hard_state.commit;
        if commit < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let term = self.term_of(&inner, commit)?;
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = commit;
        meta.term = term;
        meta.set_conf_state(inner.state.conf_state.clone());
        Ok(snapshot)
    }
}
