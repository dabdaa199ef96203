//! Atomic write batches.

use crate::{CfName, Result};

/// Mutations that can be buffered into a batch.
pub trait Mutable {
    fn put_cf(&mut self, cf: CfName, key: &[u8], value: &[u8]) -> Result<()>;
    fn delete_cf(&mut self, cf: CfName, key: &[u8]) -> Result<()>;
    /// Deletes every key in `[start, end)`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidRange`] when `end` is empty or before `start`: an engine has no
    /// largest key, so callers that mean "to the end" pass the end of their own key space.
    fn delete_range_cf(&mut self, cf: CfName, start: &[u8], end: &[u8]) -> Result<()>;
}

/// Options of a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Sync the write-ahead log before returning: the write then survives a machine crash.
    pub sync: bool,
}

/// A batch of mutations applied atomically: after a crash either all of it is visible or none.
/// Mutations apply in the order they were added.
pub trait WriteBatch: Mutable + Send {
    /// Applies the batch and leaves it empty, ready for reuse.
    fn write_opt(&mut self, opts: WriteOptions) -> Result<()>;
    /// Number of mutations buffered.
    fn count(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.count() == 0
    }
    /// Approximate bytes buffered (keys plus values).
    fn data_size(&self) -> usize;
    fn clear(&mut self);
}
