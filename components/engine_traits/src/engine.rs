//! Engines and snapshots.

use crate::{CfName, Iterable, Peekable, Result, WriteBatch};

/// A consistent, immutable view of an engine at one point in time. Cheap to clone; later writes
/// to the engine are never visible through it.
pub trait Snapshot: Peekable + Iterable + Clone + Send + Sync + 'static {}

/// Approximate size and key count of a key range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeStats {
    pub size: u64,
    pub keys: u64,
}

/// A local key-value engine with named column families.
pub trait KvEngine: Peekable + Iterable + Clone + Send + Sync + 'static {
    type Snapshot: Snapshot;
    type WriteBatch: WriteBatch;

    fn snapshot(&self) -> Self::Snapshot;
    fn write_batch(&self) -> Self::WriteBatch;

    /// Approximate bytes and keys stored in `[start, end)` of `cf` (an empty `end` means
    /// unbounded). Used by split checks, so precision within a small factor is enough.
    fn approximate_range_stats(&self, cf: CfName, start: &[u8], end: &[u8]) -> Result<RangeStats>;

    /// Persists everything written so far, including unsynced writes.
    fn sync(&self) -> Result<()>;

    /// Flushes in-memory data to disk files (makes size estimates current). No-op in memory.
    fn flush(&self) -> Result<()>;

    /// Compacts `[start, end)` of `cf` (empty bounds are open), rewriting it without deleted
    /// and overwritten entries; with `bottommost`, the last level too. No-op in memory.
    fn compact_range(&self, cf: CfName, start: &[u8], end: &[u8], bottommost: bool) -> Result<()>;
}
