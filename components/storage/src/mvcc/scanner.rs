//! [`Scanner`]: snapshot-isolated range reads (`KvScan`), forward or backward.
//!
//! The scanner walks the lock and write column families side by side, one user key at a time:
//! a user key appears in the lock CF as `enc(key)` and in the write CF as `enc(key) + ts` for
//! each version. For each key it checks the lock (as a point read does) and then looks up the
//! version visible at the read timestamp with an [`MvccReader`].

use engine_traits::{EngineIterator, IterOptions, SeekKey, Snapshot, CF_LOCK, CF_WRITE};
use txn_types::{Key, TimeStamp, Value};

use super::{Error, MvccReader, Result};

/// Which way a scan walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanMode {
    Forward,
    Backward,
}

/// A range scan at a timestamp. Each [`Scanner::read_next`] returns the next key that has a value
/// (or a blocking lock, as an error; the scan can go on after it).
pub struct Scanner<S: Snapshot> {
    reader: MvccReader<S>,
    ts: TimeStamp,
    mode: ScanMode,
    key_only: bool,
    bypass_locks: Vec<u64>,
    check_locks: bool,
    lock_cursor: S::Iterator,
    write_cursor: S::Iterator,
}

impl<S: Snapshot> Scanner<S> {
    /// A scan of the encoded range `[lower, upper)` (empty bounds are unbounded; the snapshot
    /// keeps it inside the region).
    ///
    /// # Errors
    /// Engine errors.
    pub fn new(
        snapshot: S,
        ts: TimeStamp,
        mode: ScanMode,
        lower: &[u8],
        upper: &[u8],
    ) -> Result<Self> {
        let opts = IterOptions::range(lower, upper);
        let mut lock_cursor = snapshot.iterator_opt(CF_LOCK, opts.clone())?;
        let mut write_cursor = snapshot.iterator_opt(CF_WRITE, opts)?;
        match mode {
            ScanMode::Forward => {
                lock_cursor.seek(SeekKey::Start)?;
                write_cursor.seek(SeekKey::Start)?;
            }
            ScanMode::Backward => {
                lock_cursor.seek_for_prev(SeekKey::End)?;
                write_cursor.seek_for_prev(SeekKey::End)?;
            }
        }
        Ok(Scanner {
            reader: MvccReader::new(snapshot),
            ts,
            mode,
            key_only: false,
            bypass_locks: vec![],
            check_locks: true,
            lock_cursor,
            write_cursor,
        })
    }

    #[must_use]
    pub fn key_only(mut self, key_only: bool) -> Self {
        self.key_only = key_only;
        self
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

    /// The next raw key with a value visible at the read timestamp, and the value (empty when
    /// keys only); `None` at the end of the range.
    ///
    /// # Errors
    /// [`Error::KeyIsLocked`] for a key under a blocking lock (calling `read_next` again moves on);
    /// engine errors; malformed data.
    pub fn read_next(&mut self) -> Result<Option<(Vec<u8>, Value)>> {
        loop {
            let write_key = match self.write_cursor.valid()? {
                true => Some(Key::split_on_ts_for(self.write_cursor.key())?.0.to_vec()),
                false => None,
            };
            let lock_key = match self.lock_cursor.valid()? {
                true => Some(self.lock_cursor.key().to_vec()),
                false => None,
            };
            let current = match (write_key.as_ref(), lock_key.as_ref()) {
                (None, None) => return Ok(None),
                (Some(key), None) | (None, Some(key)) => key.clone(),
                (Some(write), Some(lock)) => match self.mode {
                    ScanMode::Forward => write.min(lock).clone(),
                    ScanMode::Backward => write.max(lock).clone(),
                },
            };
            let lock = if lock_key.as_ref() == Some(&current) {
                let lock = txn_types::Lock::parse(self.lock_cursor.value())?;
                self.step_lock()?;
                Some(lock)
            } else {
                None
            };
            let has_versions = write_key.as_ref() == Some(&current);
            if has_versions {
                self.skip_versions(&current)?;
            }
            let key = Key::from_encoded(current);
            let raw_key = key.to_raw()?;
            if let Some(lock) = lock {
                if self.check_locks && lock.blocks_read(&raw_key, self.ts, &self.bypass_locks) {
                    return Err(Error::KeyIsLocked(Box::new(lock.into_lock_info(raw_key))));
                }
            }
            if !has_versions {
                continue;
            }
            let Some((_, write)) = self.reader.get_write(&key, self.ts)? else {
                continue;
            };
            let value = match self.key_only {
                true => vec![],
                false => self
                    .reader
                    .load_data(&key, write.start_ts, write.short_value)?,
            };
            return Ok(Some((raw_key, value)));
        }
    }

    /// Moves the lock cursor one key on.
    fn step_lock(&mut self) -> Result<()> {
        match self.mode {
            ScanMode::Forward => self.lock_cursor.next()?,
            ScanMode::Backward => self.lock_cursor.prev()?,
        };
        Ok(())
    }

    /// Moves the write cursor past every version of `key` (an encoded key without timestamp).
    fn skip_versions(&mut self, key: &[u8]) -> Result<()> {
        match self.mode {
            // Every version of `key` is `key + 8 bytes`, so they all lie before the key's
            // prefix successor, and no other user key's versions do.
            ScanMode::Forward => match prefix_successor(key) {
                // Nothing sorts after the key's versions: the scan is over.
                successor if successor.is_empty() => {
                    self.write_cursor.seek(SeekKey::End)?;
                    self.write_cursor.next()?
                }
                successor => self.write_cursor.seek(SeekKey::Key(&successor))?,
            },
            // ... and all after `key` itself.
            ScanMode::Backward => self.write_cursor.seek_for_prev(SeekKey::Key(key))?,
        };
        Ok(())
    }
}

/// The smallest byte string greater than every string that starts with `prefix`, or an empty
/// string (unbounded) when there is none.
fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return next;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn prefix_successor_carries() {
        assert_eq!(prefix_successor(b"ab"), b"ac");
        assert_eq!(prefix_successor(&[1, 0xff]), [2]);
        assert_eq!(prefix_successor(&[0xff, 0xff]), Vec::<u8>::new());
    }
}
