//! CheckSecondaryLocks: the status of an async-commit transaction, from its secondary keys.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, LockType, TimeStamp, WriteType};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result, TxnCommitRecord};
use crate::txn::actions::make_rollback;

#[derive(Debug)]
pub struct CheckSecondaryLocks {
    pub ctx: kvrpcpb::Context,
    pub keys: Vec<Key>,
    pub start_ts: TimeStamp,
}

/// What the secondaries say.
#[derive(Debug, PartialEq, Eq)]
pub enum SecondaryLocksStatus {
    /// Every key still holds a prewrite lock of the transaction (returned, in key order).
    Locked(Vec<kvrpcpb::LockInfo>),
    Committed(TimeStamp),
    /// Some key was never prewritten (now it never will be) or was rolled back.
    RolledBack,
}

impl WriteCommand for CheckSecondaryLocks {
    type Output = SecondaryLocksStatus;
    const TAG: &'static str = "check_secondary_locks";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        self.keys.clone()
    }

    /// For each key: a prewrite lock is reported; a pessimistic lock, or no trace at all, is
    /// rolled back with a protected rollback record (so the prewrite can never land and the
    /// transaction can never be found committed); a commit record decides at once.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<SecondaryLocksStatus>> {
        let mut txn = MvccTxn::new(self.start_ts);
        let mut reader = MvccReader::new(snapshot);
        let mut locks = vec![];
        for key in self.keys {
            let lock = reader.load_lock(&key)?;
            let rollback_overlapped = match lock {
                Some(lock) if lock.ts == self.start_ts => {
                    if lock.lock_type != LockType::Pessimistic {
                        locks.push(lock.into_lock_info(key.to_raw()?));
                        continue;
                    }
                    txn.unlock_key(key.clone());
                    match reader.get_txn_commit_record(&key, self.start_ts)? {
                        TxnCommitRecord::None { overlapped_write } => overlapped_write,
                        _ => None,
                    }
                }
                _ => match reader.get_txn_commit_record(&key, self.start_ts)? {
                    TxnCommitRecord::SingleRecord { commit_ts, write } => {
                        if write.write_type == WriteType::Rollback {
                            return Ok(WriteResult::new(txn, SecondaryLocksStatus::RolledBack));
                        }
                        return Ok(WriteResult::new(
                            txn,
                            SecondaryLocksStatus::Committed(commit_ts),
                        ));
                    }
                    TxnCommitRecord::OverlappedRollback { .. } => {
                        return Ok(WriteResult::new(txn, SecondaryLocksStatus::RolledBack));
                    }
                    TxnCommitRecord::None { overlapped_write } => overlapped_write,
                },
            };
            if let Some(write) = make_rollback(self.start_ts, true, rollback_overlapped) {
                txn.put_write(key, self.start_ts, &write);
            }
            return Ok(WriteResult::new(txn, SecondaryLocksStatus::RolledBack));
        }
        Ok(WriteResult::new(txn, SecondaryLocksStatus::Locked(locks)))
    }
}
