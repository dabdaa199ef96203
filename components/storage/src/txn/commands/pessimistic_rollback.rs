//! PessimisticRollback: release pessimistic locks of a transaction.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, LockType, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result};

#[derive(Debug)]
pub struct PessimisticRollback {
    pub ctx: kvrpcpb::Context,
    pub keys: Vec<Key>,
    pub start_ts: TimeStamp,
    pub for_update_ts: TimeStamp,
}

impl WriteCommand for PessimisticRollback {
    type Output = ();
    const TAG: &'static str = "pessimistic_rollback";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        self.keys.clone()
    }

    /// Removes each key's pessimistic lock of the transaction taken at or before
    /// `for_update_ts`; prewritten locks, other transactions' locks and missing locks are left
    /// alone, without error. No rollback record is written.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<()>> {
        let mut txn = MvccTxn::new(self.start_ts);
        let reader = MvccReader::new(snapshot);
        for key in self.keys {
            if let Some(lock) = reader.load_lock(&key)? {
                if lock.lock_type == LockType::Pessimistic
                    && lock.ts == self.start_ts
                    && lock.for_update_ts <= self.for_update_ts
                {
                    txn.unlock_key(key);
                }
            }
        }
        Ok(WriteResult::new(txn, ()))
    }
}
