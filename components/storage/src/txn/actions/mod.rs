//! The steps transactional commands share, each a function over an [`MvccTxn`] (what to
//! write) and an [`MvccReader`] (what the snapshot holds), following TiKV's `txn/actions`.
//!
//! | action | used by |
//! |---|---|
//! | [`prewrite`] | Prewrite (2PC, async commit, 1PC; optimistic and pessimistic) |
//! | [`commit`] | Commit, ResolveLock |
//! | [`cleanup`], [`rollback_lock`] | Cleanup, BatchRollback, ResolveLock, CheckTxnStatus |
//! | [`check_txn_status_lock_exists`], [`check_txn_status_missing_lock`] | CheckTxnStatus, Cleanup, CheckSecondaryLocks |
//! | [`acquire_pessimistic_lock`] | PessimisticLock |
//! | [`gc`] | GC |

mod acquire_pessimistic_lock;
mod check_txn_status;
mod cleanup;
mod commit;
mod gc;
mod prewrite;

pub use acquire_pessimistic_lock::{acquire_pessimistic_lock, LockedKey, PessimisticLockOptions};
pub use check_txn_status::{
    check_txn_status_lock_exists, check_txn_status_missing_lock, CheckTxnStatusOptions,
    MissingLockAction, TxnStatus,
};
pub use cleanup::{cleanup, make_rollback, rollback_lock};
pub use commit::commit;
pub use gc::{gc, GcInfo};
pub use prewrite::{
    prewrite, CommitKind, PessimisticAction, PrewriteOutcome, TransactionProperties,
};

use engine_traits::Snapshot;
use txn_types::{Key, TimeStamp, Write, WriteType};

use crate::mvcc::{Error, MvccReader, Result};

/// Fails with AlreadyExist when `key`, whose newest record at or before the read point is
/// `write` (committed at `commit_ts`), has a value: Insert, CheckNotExists and pessimistic locks
/// that assert non-existence call it.
///
/// # Errors
/// [`Error::AlreadyExist`]; engine errors.
pub(crate) fn check_data_constraint<S: Snapshot>(
    reader: &mut MvccReader<S>,
    should_not_exist: bool,
    write: &Write,
    commit_ts: TimeStamp,
    key: &Key,
) -> Result<()> {
    if !should_not_exist || write.write_type == WriteType::Delete {
        return Ok(());
    }
    // A Lock or Rollback record says nothing about the value: look below it.
    let exists = match write.write_type {
        WriteType::Put => true,
        _ => reader.get_write(key, commit_ts.prev())?.is_some(),
    };
    if exists {
        return Err(Error::AlreadyExist { key: key.to_raw()? });
    }
    Ok(())
}
