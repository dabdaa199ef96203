//! Commit one key of a transaction.

use engine_traits::Snapshot;
use txn_types::{Key, LockType, TimeStamp, Write, WriteType};

use crate::mvcc::{Error, MvccReader, MvccTxn, Result, TxnCommitRecord};

/// Commits the transaction's lock on `key` at `commit_ts`: writes the commit record (with the
/// inline value, if any) and removes the lock. A commit that finds the transaction already
/// committed succeeds again; one that finds it rolled back, or finds nothing, fails.
///
/// A pessimistic lock is committed as a `Lock` record, as TiKV does: such a lock is left when
/// a pessimistic rollback got lost, and committing it changes no data.
///
/// # Errors
/// [`Error::CommitTsExpired`] below the lock's `min_commit_ts`; [`Error::TxnLockNotFound`] when
/// the transaction has no lock and no commit record here; engine errors.
pub fn commit<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    key: Key,
    commit_ts: TimeStamp,
) -> Result<()> {
    let lock = match reader.load_lock(&key)? {
        Some(lock) if lock.ts == txn.start_ts => lock,
        _ => {
            return match reader.get_txn_commit_record(&key, txn.start_ts)? {
                TxnCommitRecord::SingleRecord { write, .. }
                    if write.write_type != WriteType::Rollback =>
                {
                    Ok(())
                }
                _ => Err(Error::TxnLockNotFound {
                    start_ts: txn.start_ts,
                    commit_ts,
                    key: key.into_raw()?,
                }),
            };
        }
    };
    if commit_ts < lock.min_commit_ts {
        return Err(Error::CommitTsExpired {
            start_ts: txn.start_ts,
            commit_ts,
            key: key.into_raw()?,
            min_commit_ts: lock.min_commit_ts,
        });
    }
    let lock_type = match lock.lock_type {
        LockType::Pessimistic => LockType::Lock,
        other => other,
    };
    let write = Write::new(
        WriteType::from_lock_type(lock_type),
        txn.start_ts,
        lock.short_value,
    )
    .set_overlapped_rollback(lock.rollback_ts.contains(&commit_ts));
    txn.put_write(key.clone(), commit_ts, &write);
    txn.unlock_key(key);
    Ok(())
}
