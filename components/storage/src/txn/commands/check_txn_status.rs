//! CheckTxnStatus: what became of a transaction, decided on its primary key.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result};
use crate::txn::actions::{
    check_txn_status_lock_exists, check_txn_status_missing_lock, CheckTxnStatusOptions,
    MissingLockAction, TxnStatus,
};

#[derive(Debug)]
pub struct CheckTxnStatus {
    pub ctx: kvrpcpb::Context,
    pub primary_key: Key,
    pub lock_ts: TimeStamp,
    pub caller_start_ts: TimeStamp,
    pub current_ts: TimeStamp,
    pub rollback_if_not_exist: bool,
    pub force_sync_commit: bool,
    pub resolving_pessimistic_lock: bool,
    pub verify_is_primary: bool,
}

impl WriteCommand for CheckTxnStatus {
    type Output = TxnStatus;
    const TAG: &'static str = "check_txn_status";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        vec![self.primary_key.clone()]
    }

    /// An expired lock is rolled back, a live one may have its `min_commit_ts` pushed, and a
    /// missing one is looked up in the write records (and, when asked, rolled back).
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        context: WriteContext<'_>,
    ) -> Result<WriteResult<TxnStatus>> {
        // The caller reads at caller_start_ts; pushing min_commit_ts past it is a promise that
        // the transaction commits after the read, so async commit must see the read.
        context
            .concurrency_manager
            .update_max_ts(self.caller_start_ts);
        let mut txn = MvccTxn::new(self.lock_ts);
        let mut reader = MvccReader::new(snapshot);
        let status = match reader.load_lock(&self.primary_key)? {
            Some(lock) if lock.ts == self.lock_ts => {
                let opts = CheckTxnStatusOptions {
                    current_ts: self.current_ts,
                    caller_start_ts: self.caller_start_ts,
                    force_sync_commit: self.force_sync_commit,
                    resolving_pessimistic_lock: self.resolving_pessimistic_lock,
                    verify_is_primary: self.verify_is_primary,
                };
                check_txn_status_lock_exists(&mut txn, &mut reader, self.primary_key, lock, opts)?
            }
            other_lock => check_txn_status_missing_lock(
                &mut txn,
                &mut reader,
                self.primary_key,
                other_lock,
                MissingLockAction::rollback_if(self.rollback_if_not_exist),
                self.resolving_pessimistic_lock,
            )?,
        };
        Ok(WriteResult::new(txn, status))
    }
}
