//! Rolling back one key of a transaction.

use engine_traits::Snapshot;
use txn_types::{Key, Lock, LockType, TimeStamp, Write};

use super::check_txn_status::{check_txn_status_missing_lock, MissingLockAction, TxnStatus};
use crate::mvcc::{Error, MvccReader, MvccTxn, Result, TxnCommitRecord};

/// Rolls back the transaction's lock on `key`, or leaves a rollback record where it has none
/// yet, so that a late prewrite cannot succeed. Rollbacks are always protected (TiKV lets
/// client-requested ones be collapsed, and then skips flagging a commit record of another
/// transaction at the same ts; this store keeps the stronger guarantee).
///
/// With a non-zero `current_ts`, a lock that has not outlived its TTL is not rolled back: the
/// caller gets `KeyIsLocked` instead.
///
/// # Errors
/// [`Error::KeyIsLocked`] for a live lock; [`Error::Committed`] when the transaction already
/// committed on this key; engine errors.
pub fn cleanup<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    key: Key,
    current_ts: TimeStamp,
) -> Result<()> {
    match reader.load_lock(&key)? {
        Some(lock) if lock.ts == txn.start_ts => {
            if !current_ts.is_zero() && !lock.is_expired(current_ts) {
                let raw_key = key.into_raw()?;
                return Err(Error::KeyIsLocked(Box::new(lock.into_lock_info(raw_key))));
            }
            rollback_lock(txn, reader, key, &lock)
        }
        other_lock => {
            let action = MissingLockAction::ProtectedRollback;
            let status =
                check_txn_status_missing_lock(txn, reader, key.clone(), other_lock, action, false)?;
            match status {
                TxnStatus::Committed { commit_ts } => Err(Error::Committed {
                    start_ts: txn.start_ts,
                    commit_ts,
                    key: key.into_raw()?,
                }),
                _ => Ok(()),
            }
        }
    }
}

/// Removes the transaction's `lock` on `key` and its prewritten value, and writes a protected
/// rollback record. (TiKV may write collapsible rollbacks here and collapse them later; this
/// store always protects them, which only keeps a few more records until GC.)
///
/// # Errors
/// Engine errors.
pub fn rollback_lock<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    key: Key,
    lock: &Lock,
) -> Result<()> {
    let overlapped_write = match reader.get_txn_commit_record(&key, txn.start_ts)? {
        TxnCommitRecord::None { overlapped_write } => overlapped_write,
        // The transaction's record is already there (it can only be a rollback: a commit
        // removes the lock in the same write); nothing to add.
        TxnCommitRecord::SingleRecord { .. } | TxnCommitRecord::OverlappedRollback { .. } => {
            txn.unlock_key(key);
            return Ok(());
        }
    };
    if lock.lock_type == LockType::Put && lock.short_value.is_none() {
        txn.delete_value(key.clone(), lock.ts);
    }
    if let Some(write) = make_rollback(txn.start_ts, true, overlapped_write) {
        txn.put_write(key.clone(), txn.start_ts, &write);
    }
    txn.unlock_key(key);
    Ok(())
}

/// The record that marks the transaction at `start_ts` rolled back: a rollback record, or,
/// when another transaction committed at exactly `start_ts` (`overlapped_write`), that record
/// with the overlapped-rollback flag. `None` when nothing needs writing (an unprotected rollback
/// that collides with a commit record).
pub fn make_rollback(
    start_ts: TimeStamp,
    protected: bool,
    overlapped_write: Option<Write>,
) -> Option<Write> {
    match overlapped_write {
        Some(write) if protected => Some(write.set_overlapped_rollback(true)),
        Some(_) => None,
        None => Some(Write::new_rollback(start_ts, protected)),
    }
}
