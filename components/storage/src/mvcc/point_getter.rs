//! [`PointGetter`]: snapshot-isolated reads of single keys (`KvGet`, `KvBatchGet`).

use engine_traits::Snapshot;
use txn_types::{Key, TimeStamp, Value};

use super::{Error, MvccReader, Result};

/// Reads keys as of `ts`: the newest committed Put at or before `ts`, unless a lock of a
/// transaction that may commit at or before `ts` is on the key (see
/// `txn_types::Lock::blocks_read`), which fails the read with `KeyIsLocked`.
pub struct PointGetter<S: Snapshot> {
    reader: MvccReader<S>,
    ts: TimeStamp,
    /// Transactions whose locks the reader knows not to matter (`Context.resolved_locks`).
    bypass_locks: Vec<u64>,
    /// Read-committed reads ignore locks.
    check_locks: bool,
}

impl<S: Snapshot> PointGetter<S> {
    pub fn new(snapshot: S, ts: TimeStamp) -> Self {
        PointGetter {
            reader: MvccReader::new(snapshot),
            ts,
            bypass_locks: vec![],
            check_locks: true,
        }
    }

    #[must_use]
    pub fn bypass_locks(mut self, bypass_locks: Vec<u64>) -> Self {
        self.bypass_locks = bypass_locks;
        self
    }

    /// Read committed: skip the lock check.
    #[must_use]
    pub fn read_committed(mut self, read_committed: bool) -> Self {
        self.check_locks = !read_committed;
        self
    }

    /// The value of `raw_key` as of the read timestamp.
    ///
    /// # Errors
    /// [`Error::KeyIsLocked`] for a blocking lock; engine errors (a key outside the region);
    /// malformed data.
    pub fn get(&mut self, raw_key: &[u8]) -> Result<Option<Value>> {
        let key = Key::from_raw(raw_key);
        // Always a point read of the lock column family: it also checks the key is in the region.
        let lock = self.reader.load_lock(&key)?;
        if let Some(lock) = lock {
            if self.check_locks && lock.blocks_read(raw_key, self.ts, &self.bypass_locks) {
                return Err(Error::KeyIsLocked(Box::new(
                    lock.into_lock_info(raw_key.to_vec()),
                )));
            }
        }
        self.reader.get(&key, self.ts)
    }
}
