//! [`MvccReader`]: what one snapshot says about single keys: their lock, their commit and
//! rollback records, and the value visible at a timestamp.

use engine_traits::{
    EngineIterator, IterOptions, SeekKey, Snapshot, CF_DEFAULT, CF_LOCK, CF_WRITE,
};
use txn_types::{Key, Lock, TimeStamp, Value, Write, WriteType};

use super::{Error, Result};

/// What the write column family holds for one transaction on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnCommitRecord {
    /// The transaction's own commit or rollback record.
    SingleRecord { commit_ts: TimeStamp, write: Write },
    /// Another transaction committed at exactly this one's start ts, and its record carries the
    /// overlapped-rollback flag: this transaction rolled back.
    OverlappedRollback { commit_ts: TimeStamp },
    /// No record of the transaction. `overlapped_write` is another transaction's record at
    /// exactly this one's start ts, which a rollback must flag instead of overwriting.
    None { overlapped_write: Option<Write> },
}

/// Reads locks, write records and values from one snapshot. Keeps one write-CF cursor that
/// successive lookups reuse.
pub struct MvccReader<S: Snapshot> {
    snapshot: S,
    write_cursor: Option<S::Iterator>,
}

impl<S: Snapshot> MvccReader<S> {
    pub fn new(snapshot: S) -> Self {
        MvccReader {
            snapshot,
            write_cursor: None,
        }
    }

    pub fn snapshot(&self) -> &S {
        &self.snapshot
    }

    /// The lock on `key`, if any. This is a point read, so a key outside the region fails with
    /// `NotInRange` (a KeyNotInRegion region error for the client).
    ///
    /// # Errors
    /// Engine errors and malformed locks.
    pub fn load_lock(&self, key: &Key) -> Result<Option<Lock>> {
        match self.snapshot.get_value_cf(CF_LOCK, key.as_encoded())? {
            Some(bytes) => Ok(Some(Lock::parse(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The value a Put record (or Put lock) of the transaction at `start_ts` wrote: inline, or
    /// from the default column family.
    ///
    /// # Errors
    /// [`Error::DefaultNotFound`] when the value is missing; engine errors.
    pub fn load_data(
        &self,
        key: &Key,
        start_ts: TimeStamp,
        short_value: Option<Value>,
    ) -> Result<Value> {
        if let Some(value) = short_value {
            return Ok(value);
        }
        let data_key = key.clone().append_ts(start_ts);
        match self
            .snapshot
            .get_value_cf(CF_DEFAULT, data_key.as_encoded())?
        {
            Some(value) => Ok(value),
            None => Err(Error::DefaultNotFound {
                key: key.to_raw()?,
                start_ts,
            }),
        }
    }

    fn write_cursor(&mut self) -> Result<&mut S::Iterator> {
        if self.write_cursor.is_none() {
            // Unbounded: the snapshot keeps iterators inside the region.
            let cursor = self
                .snapshot
                .iterator_opt(CF_WRITE, IterOptions::range(&[], &[]))?;
            self.write_cursor = Some(cursor);
        }
        Ok(self.write_cursor.as_mut().expect("created above"))
    }

    /// Positions the write cursor at the newest record of `key` with commit ts `<= ts` and
    /// returns it.
    fn seek_record(&mut self, key: &Key, ts: TimeStamp) -> Result<Option<(TimeStamp, Write)>> {
        let seek_key = key.clone().append_ts(ts);
        let cursor = self.write_cursor()?;
        if !cursor.seek(SeekKey::Key(seek_key.as_encoded()))? {
            return Ok(None);
        }
        current_record(cursor, key)
    }

    /// Moves the write cursor to the next older record of the same key.
    fn next_record(&mut self, key: &Key) -> Result<Option<(TimeStamp, Write)>> {
        let cursor = self.write_cursor()?;
        if !cursor.next()? {
            return Ok(None);
        }
        current_record(cursor, key)
    }

    /// The newest write record of `key` (of any type) with commit ts `<= ts`.
    ///
    /// # Errors
    /// Engine errors and malformed records.
    pub fn seek_write(&mut self, key: &Key, ts: TimeStamp) -> Result<Option<(TimeStamp, Write)>> {
        self.seek_record(key, ts)
    }

    /// The newest Put visible at `ts`, skipping Lock and Rollback records; `None` when the key
    /// has no value at `ts` (never written, or deleted).
    ///
    /// # Errors
    /// Engine errors and malformed records.
    pub fn get_write(&mut self, key: &Key, ts: TimeStamp) -> Result<Option<(TimeStamp, Write)>> {
        let mut record = self.seek_record(key, ts)?;
        while let Some((commit_ts, write)) = record {
            match write.write_type {
                WriteType::Put => return Ok(Some((commit_ts, write))),
                WriteType::Delete => return Ok(None),
                WriteType::Lock | WriteType::Rollback => record = self.next_record(key)?,
            }
        }
        Ok(None)
    }

    /// The value of `key` visible at `ts`.
    ///
    /// # Errors
    /// As [`MvccReader::get_write`], and [`Error::DefaultNotFound`].
    pub fn get(&mut self, key: &Key, ts: TimeStamp) -> Result<Option<Value>> {
        match self.get_write(key, ts)? {
            Some((_, write)) => Ok(Some(self.load_data(
                key,
                write.start_ts,
                write.short_value,
            )?)),
            None => Ok(None),
        }
    }

    /// Finds what became of the transaction that started at `start_ts` on `key`: its commit
    /// or rollback record, if any. A transaction commits at or after its start, so only records
    /// with commit ts `>= start_ts` are looked at.
    ///
    /// # Errors
    /// Engine errors and malformed records.
    pub fn get_txn_commit_record(
        &mut self,
        key: &Key,
        start_ts: TimeStamp,
    ) -> Result<TxnCommitRecord> {
        let mut overlapped_write = None;
        let mut record = self.seek_record(key, TimeStamp::max())?;
        while let Some((commit_ts, write)) = record {
            if commit_ts < start_ts {
                break;
            }
            if write.start_ts == start_ts {
                return Ok(TxnCommitRecord::SingleRecord { commit_ts, write });
            }
            if commit_ts == start_ts {
                if write.has_overlapped_rollback {
                    return Ok(TxnCommitRecord::OverlappedRollback { commit_ts });
                }
                overlapped_write = Some(write);
            }
            record = self.next_record(key)?;
        }
        Ok(TxnCommitRecord::None { overlapped_write })
    }

    /// Locks in `[start, end)` (encoded keys; empty means unbounded) that `filter` accepts, in
    /// key order, at most `limit` (0: no limit). Returns them and whether more may follow.
    ///
    /// # Errors
    /// Engine errors and malformed locks.
    pub fn scan_locks(
        &self,
        start: &[u8],
        end: &[u8],
        filter: impl Fn(&Lock) -> bool,
        limit: usize,
    ) -> Result<(Vec<(Key, Lock)>, bool)> {
        let mut cursor = self
            .snapshot
            .iterator_opt(CF_LOCK, IterOptions::range(start, end))?;
        let mut valid = cursor.seek(SeekKey::Start)?;
        let mut locks = vec![];
        while valid {
            let lock = Lock::parse(cursor.value())?;
            if filter(&lock) {
                if limit != 0 && locks.len() == limit {
                    return Ok((locks, true));
                }
                locks.push((Key::from_encoded_slice(cursor.key()), lock));
            }
            valid = cursor.next()?;
        }
        Ok((locks, false))
    }
}

/// The record under `cursor` if it belongs to `key`.
fn current_record<I: EngineIterator>(cursor: &I, key: &Key) -> Result<Option<(TimeStamp, Write)>> {
    let (found, commit_ts) = Key::split_on_ts_for(cursor.key())?;
    if found != key.as_encoded() {
        return Ok(None);
    }
    Ok(Some((commit_ts, Write::parse(cursor.value())?)))
}
