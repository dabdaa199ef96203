//! The backend-neutral interface of a multi-raft log store.

use protobuf::Message;
use raft::eraftpb::Entry;
use types::RegionId;

use crate::Result;

/// Per-region metadata records kept beside the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey {
    /// `eraftpb::HardState`: term, vote, commit.
    HardState,
    /// `eraftpb::ConfState`: the voters and learners.
    ConfState,
    /// `eraftpb::SnapshotMetadata`: index and term the log starts after.
    SnapshotMeta,
}

impl MetaKey {
    pub(crate) fn as_bytes(self) -> &'static [u8] {
        match self {
            MetaKey::HardState => b"hard_state",
            MetaKey::ConfState => b"conf_state",
            MetaKey::SnapshotMeta => b"snapshot_meta",
        }
    }
}

/// A multi-raft log store: entries and metadata of many regions, written in batches that
/// may span regions (one synced write per raftstore poll round).
pub trait RaftLogEngine: Clone + Send + Sync + 'static {
    type Batch: RaftLogBatch;

    fn new_batch(&self) -> Self::Batch;

    /// Writes `batch` atomically and leaves it empty. With `sync`, the write is on disk when
    /// this returns.
    fn write(&self, batch: &mut Self::Batch, sync: bool) -> Result<()>;

    /// Appends the entries of `region` in `[low, high)` to `out`, stopping before the total
    /// size would exceed `max_size` (but always at least one entry).
    ///
    /// # Errors
    /// [`crate::Error::MissingEntry`] when an entry of the range is not stored.
    fn fetch_entries(
        &self,
        region: RegionId,
        low: u64,
        high: u64,
        max_size: Option<u64>,
        out: &mut Vec<Entry>,
    ) -> Result<()>;

    /// The stored entry at `index`, if any.
    fn entry(&self, region: RegionId, index: u64) -> Result<Option<Entry>>;

    /// First and last stored entry indexes of `region`, or `None` when it has no entries.
    fn entry_span(&self, region: RegionId) -> Result<Option<(u64, u64)>>;

    /// A metadata record of `region`.
    fn meta<M: Message>(&self, region: RegionId, key: MetaKey) -> Result<Option<M>>;

    /// Drops the entries of `region` below `index`. Not synced: after a crash the dropped
    /// entries may reappear, which is harmless because the compaction point is recorded
    /// (synced) separately in [`MetaKey::SnapshotMeta`].
    fn compact_to(&self, region: RegionId, index: u64) -> Result<()>;

    /// Region ids that have anything stored.
    fn regions(&self) -> Result<Vec<RegionId>>;

    /// Reclaims the space of compacted entries (raft-engine deletes or rewrites stale log
    /// files). Returns regions whose old entries hold files back and should be compacted.
    /// Call periodically; without it the log directory only grows.
    fn purge_expired_files(&self) -> Result<Vec<RegionId>>;
}

/// Mutations of a [`RaftLogEngine`], applied atomically by [`RaftLogEngine::write`].
pub trait RaftLogBatch: Send {
    /// Appends `entries` (consecutive indexes) to `region`'s log, replacing any stored entries
    /// at or after the first index. The caller guarantees there is no gap: the first index is
    /// at most the stored last index plus one (see `RaftLogStorage::append`).
    fn append(&mut self, region: RegionId, entries: &[Entry]) -> Result<()>;

    fn put_meta<M: Message>(&mut self, region: RegionId, key: MetaKey, msg: &M) -> Result<()>;

    /// Removes every entry of `region` (before installing a snapshot, or destroying a peer).
    fn clear_entries(&mut self, region: RegionId) -> Result<()>;

    fn is_empty(&self) -> bool;
}

/// Applies raft-rs's size limit: keeps whole entries while the running total stays within
/// `max_size`, and always keeps the first.
pub(crate) fn within_size(total: u64, next: &Entry, max_size: Option<u64>, kept: usize) -> bool {
    match max_size {
        None => true,
        Some(max) => kept == 0 || total + u64::from(next.compute_size()) <= max,
    }
}
