//! Take a pessimistic lock on one key.

use engine_traits::Snapshot;
use txn_types::{Key, Lock, LockType, TimeStamp, Value, WriteType};

use super::check_data_constraint;
use crate::mvcc::{Error, MvccReader, MvccTxn, Result, TxnCommitRecord, WriteConflictReason};

/// What one pessimistic lock request asks for.
#[derive(Clone, Debug)]
pub struct PessimisticLockOptions<'a> {
    /// The raw primary key of the transaction.
    pub primary: &'a [u8],
    pub for_update_ts: TimeStamp,
    pub lock_ttl: u64,
    pub min_commit_ts: TimeStamp,
    /// Return the key's value (as of `for_update_ts`).
    pub need_value: bool,
    /// Return whether the key has a value.
    pub need_check_existence: bool,
    /// Take the lock only if the key has a value.
    pub lock_only_if_exists: bool,
    /// A commit of another transaction newer than `for_update_ts` is no conflict: the lock is
    /// taken anyway and the value returned is the newest (TiKV's lock with conflict).
    pub allow_lock_with_conflict: bool,
}

/// What locking one key found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedKey {
    /// The key's value, when the options ask for the value or its existence.
    pub value: Option<Value>,
    /// The commit newer than `for_update_ts` the lock was taken over: the value was read as of
    /// it, so async-commit timestamps must count a read there.
    pub locked_with_conflict_ts: Option<TimeStamp>,
}

/// Locks `key` for the transaction at `txn.start_ts`, or raises the `for_update_ts` of the lock
/// it already holds. Returns the key's value at `for_update_ts` (the newest, with
/// `allow_lock_with_conflict`) when the options ask for the value or its existence (`None`
/// otherwise, and for a key without value).
///
/// # Errors
/// [`Error::KeyIsLocked`] (another transaction's lock: the caller may wait and retry),
/// [`Error::WriteConflict`] (a commit newer than `for_update_ts`: retry with a newer one),
/// [`Error::PessimisticLockRolledBack`], [`Error::AlreadyExist`] (`should_not_exist`),
/// [`Error::LockTypeNotMatch`]; engine errors.
pub fn acquire_pessimistic_lock<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    key: Key,
    should_not_exist: bool,
    opts: &PessimisticLockOptions<'_>,
) -> Result<LockedKey> {
    let start_ts = txn.start_ts;
    let want_value = opts.need_value || opts.need_check_existence || opts.lock_only_if_exists;
    if let Some(mut lock) = reader.load_lock(&key)? {
        if lock.ts != start_ts {
            let raw_key = key.into_raw()?;
            return Err(Error::KeyIsLocked(Box::new(lock.into_lock_info(raw_key))));
        }
        if lock.lock_type != LockType::Pessimistic {
            return Err(Error::LockTypeNotMatch {
                start_ts,
                key: key.into_raw()?,
                lock_type: lock.lock_type,
            });
        }
        // Nothing commits on a locked key: the newest value is the one the lock was taken
        // with, even if that was over a newer commit.
        let read_ts = match opts.allow_lock_with_conflict {
            true => TimeStamp::max(),
            false => opts.for_update_ts,
        };
        let value = match want_value {
            true => reader.get(&key, read_ts)?,
            false => None,
        };
        if lock.for_update_ts < opts.for_update_ts {
            lock.for_update_ts = opts.for_update_ts;
            lock.ttl = lock.ttl.max(opts.lock_ttl);
            txn.put_lock(key, &lock);
        }
        return Ok(LockedKey {
            value,
            locked_with_conflict_ts: None,
        });
    }

    let mut value = None;
    let mut locked_with_conflict_ts = None;
    if let Some((commit_ts, write)) = reader.seek_write(&key, TimeStamp::max())? {
        if commit_ts > opts.for_update_ts
            && opts.allow_lock_with_conflict
            && !finished_here(reader, &key, start_ts)?
        {
            locked_with_conflict_ts = Some(commit_ts);
        }
        // Pessimistic transactions read at for_update_ts: anything committed after it means the
        // client must read again with a newer one.
        if commit_ts > opts.for_update_ts && locked_with_conflict_ts.is_none() {
            return Err(Error::WriteConflict {
                start_ts,
                conflict_start_ts: write.start_ts,
                conflict_commit_ts: commit_ts,
                key: key.into_raw()?,
                primary: opts.primary.to_vec(),
                reason: WriteConflictReason::PessimisticRetry,
            });
        }
        let rolled_back = if commit_ts == start_ts {
            write.is_rollback()
        } else if commit_ts > start_ts {
            matches!(reader.seek_write(&key, start_ts)?,
                Some((older_ts, older)) if older_ts == start_ts && older.is_rollback())
        } else {
            false
        };
        if rolled_back {
            return Err(Error::PessimisticLockRolledBack {
                start_ts,
                key: key.into_raw()?,
            });
        }
        check_data_constraint(reader, should_not_exist, &write, commit_ts, &key)?;
        if want_value {
            value = match write.write_type {
                WriteType::Put => {
                    Some(reader.load_data(&key, write.start_ts, write.short_value)?)
                }
                WriteType::Delete => None,
                WriteType::Lock | WriteType::Rollback => reader.get(&key, commit_ts.prev())?,
            };
        }
    }
    if opts.lock_only_if_exists && value.is_none() {
        return Ok(LockedKey::default());
    }
    let lock = Lock::new(
        LockType::Pessimistic,
        opts.primary.to_vec(),
        start_ts,
        opts.lock_ttl,
    )
    .with_for_update_ts(opts.for_update_ts)
    .with_min_commit_ts(opts.min_commit_ts);
    txn.put_lock(key, &lock);
    Ok(LockedKey {
        value,
        locked_with_conflict_ts,
    })
}

/// Whether the transaction already committed or rolled back on `key`: a late lock request of
/// a finished transaction must not lock over its own outcome.
fn finished_here<S: Snapshot>(
    reader: &mut MvccReader<S>,
    key: &Key,
    start_ts: TimeStamp,
) -> Result<bool> {
    Ok(!matches!(
        reader.get_txn_commit_record(key, start_ts)?,
        TxnCommitRecord::None { .. }
    ))
}
