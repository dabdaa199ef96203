//! What became of a transaction, as seen on its primary key.

use engine_traits::Snapshot;
use txn_types::{Key, Lock, LockType, TimeStamp, WriteType};

use super::cleanup::{make_rollback, rollback_lock};
use crate::mvcc::{Error, MvccReader, MvccTxn, Result, TxnCommitRecord};

/// The status CheckTxnStatus (and the commands built on it) report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// A rollback record was already there.
    RolledBack,
    /// The lock outlived its TTL and was rolled back now.
    TtlExpire,
    /// There was no trace of the transaction; a rollback record was written.
    LockNotExist,
    Committed {
        commit_ts: TimeStamp,
    },
    /// The lock is alive; `min_commit_ts_pushed` says readers at the caller's ts may ignore it.
    Uncommitted {
        lock: Lock,
        min_commit_ts_pushed: bool,
    },
    /// An expired pessimistic lock was removed (no rollback record).
    PessimisticRollBack,
    /// No lock while resolving a pessimistic lock: nothing was done.
    LockNotExistDoNothing,
}

/// What to do when the transaction left no trace on the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingLockAction {
    ProtectedRollback,
    ReturnError,
}

impl MissingLockAction {
    /// CheckTxnStatus's choice: roll back (protected) only when asked to.
    pub fn rollback_if(rollback_if_not_exist: bool) -> Self {
        match rollback_if_not_exist {
            true => MissingLockAction::ProtectedRollback,
            false => MissingLockAction::ReturnError,
        }
    }
}

/// Options of CheckTxnStatus.
#[derive(Clone, Copy, Debug)]
pub struct CheckTxnStatusOptions {
    pub current_ts: TimeStamp,
    pub caller_start_ts: TimeStamp,
    pub force_sync_commit: bool,
    pub resolving_pessimistic_lock: bool,
    pub verify_is_primary: bool,
}

/// The status of a transaction whose lock `lock` is on its primary key `primary_key`:
/// an expired lock is rolled back, a live one may get its `min_commit_ts` pushed past the
/// caller's start ts, an async-commit lock is left alone.
///
/// # Errors
/// [`Error::PrimaryMismatch`] when `verify_is_primary` and the key is not the lock's primary;
/// engine errors.
pub fn check_txn_status_lock_exists<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    primary_key: Key,
    mut lock: Lock,
    opts: CheckTxnStatusOptions,
) -> Result<TxnStatus> {
    if opts.verify_is_primary && !primary_key.is_encoded_from(&lock.primary) {
        let raw_key = primary_key.into_raw()?;
        return Err(Error::PrimaryMismatch(Box::new(
            lock.into_lock_info(raw_key),
        )));
    }
    // An async-commit transaction may be committed by its secondaries alone: only the
    // secondaries tell (CheckSecondaryLocks), so the primary lock is never rolled back or
    // pushed here, unless the client gave up on async commit.
    if lock.use_async_commit && !opts.force_sync_commit {
        return Ok(TxnStatus::Uncommitted {
            lock,
            min_commit_ts_pushed: false,
        });
    }
    if lock.is_expired(opts.current_ts) {
        if opts.resolving_pessimistic_lock && lock.lock_type == LockType::Pessimistic {
            txn.unlock_key(primary_key);
            return Ok(TxnStatus::PessimisticRollBack);
        }
        rollback_lock(txn, reader, primary_key, &lock)?;
        return Ok(TxnStatus::TtlExpire);
    }
    // A lock with min_commit_ts 0 is not pushed (its transaction commits at a TSO anyway).
    let caller = opts.caller_start_ts;
    if !lock.min_commit_ts.is_zero() && !caller.is_max() && caller >= lock.min_commit_ts {
        lock.min_commit_ts = caller.next().max(opts.current_ts);
        txn.put_lock(primary_key, &lock);
    }
    // Once min_commit_ts is past the caller's start ts, the caller may read around every lock
    // of the transaction. A read at the maximum ts (a point get of the latest value) may too.
    let min_commit_ts_pushed =
        (!caller.is_zero() && lock.min_commit_ts > caller) || caller.is_max();
    Ok(TxnStatus::Uncommitted {
        lock,
        min_commit_ts_pushed,
    })
}

/// The status of a transaction that has no lock on `primary_key` (`mismatch_lock` is another
/// transaction's lock there, if any): committed or rolled back per its record, or, with no
/// record, as `action` says: an error, or a rollback record that stops a late prewrite.
///
/// # Errors
/// [`Error::TxnNotFound`] with [`MissingLockAction::ReturnError`] and no record; engine errors.
pub fn check_txn_status_missing_lock<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    primary_key: Key,
    mismatch_lock: Option<Lock>,
    action: MissingLockAction,
    resolving_pessimistic_lock: bool,
) -> Result<TxnStatus> {
    match reader.get_txn_commit_record(&primary_key, txn.start_ts)? {
        TxnCommitRecord::SingleRecord { commit_ts, write } => {
            if write.write_type == WriteType::Rollback {
                Ok(TxnStatus::RolledBack)
            } else {
                Ok(TxnStatus::Committed { commit_ts })
            }
        }
        TxnCommitRecord::OverlappedRollback { .. } => Ok(TxnStatus::RolledBack),
        TxnCommitRecord::None { overlapped_write } => {
            if action == MissingLockAction::ReturnError {
                return Err(Error::TxnNotFound {
                    start_ts: txn.start_ts,
                    key: primary_key.into_raw()?,
                });
            }
            if resolving_pessimistic_lock {
                return Ok(TxnStatus::LockNotExistDoNothing);
            }
            if let (Some(lock), None) = (mismatch_lock, &overlapped_write) {
                mark_rollback_on_mismatching_lock(txn, &primary_key, lock);
            }
            if let Some(write) = make_rollback(txn.start_ts, true, overlapped_write) {
                txn.put_write(primary_key, txn.start_ts, &write);
            }
            Ok(TxnStatus::LockNotExist)
        }
    }
}

/// Another transaction's async-commit `lock` sits on the key where this transaction is being
/// rolled back. That transaction computes its commit ts, which may turn out to be exactly this
/// transaction's start ts, where the rollback record lives: remember the ts in the lock, so its
/// commit record then carries the overlapped-rollback flag instead of erasing the rollback.
fn mark_rollback_on_mismatching_lock(txn: &mut MvccTxn, key: &Key, mut lock: Lock) {
    // TSO timestamps are unique, so only a computed (async commit) commit ts can collide, and
    // only at or above the lock's min_commit_ts.
    if !lock.use_async_commit || txn.start_ts < lock.min_commit_ts {
        return;
    }
    lock.rollback_ts.push(txn.start_ts);
    txn.put_lock(key.clone(), &lock);
}
