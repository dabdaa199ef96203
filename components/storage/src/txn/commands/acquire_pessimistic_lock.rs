//! AcquirePessimisticLock: lock keys of a pessimistic transaction before it writes them.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp, Value};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result};
use crate::txn::actions::{acquire_pessimistic_lock, PessimisticLockOptions};

#[derive(Clone, Debug)]
pub struct AcquirePessimisticLock {
    pub ctx: kvrpcpb::Context,
    /// Each key, and whether it must have no value (an `insert`).
    pub keys: Vec<(Key, bool)>,
    /// The raw primary key.
    pub primary: Vec<u8>,
    pub start_ts: TimeStamp,
    pub for_update_ts: TimeStamp,
    pub lock_ttl: u64,
    pub min_commit_ts: TimeStamp,
    pub return_values: bool,
    pub check_existence: bool,
    pub lock_only_if_exists: bool,
    /// Take the lock even over another transaction's commit newer than `for_update_ts`,
    /// returning the newest value (the service sets it for requests that return values).
    pub allow_lock_with_conflict: bool,
}

impl WriteCommand for AcquirePessimisticLock {
    /// Each key's value at `for_update_ts` (when values or existence were asked for).
    type Output = Vec<Option<Value>>;
    const TAG: &'static str = "acquire_pessimistic_lock";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        self.keys.iter().map(|(key, _)| key.clone()).collect()
    }

    /// All or nothing: the first key that cannot be locked fails the request, and nothing is
    /// written.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        context: WriteContext<'_>,
    ) -> Result<WriteResult<Vec<Option<Value>>>> {
        // Pessimistic transactions read at for_update_ts.
        context
            .concurrency_manager
            .update_max_ts(self.for_update_ts);
        let opts = PessimisticLockOptions {
            primary: &self.primary,
            for_update_ts: self.for_update_ts,
            lock_ttl: self.lock_ttl,
            min_commit_ts: self.min_commit_ts,
            need_value: self.return_values,
            need_check_existence: self.check_existence,
            lock_only_if_exists: self.lock_only_if_exists,
            allow_lock_with_conflict: self.allow_lock_with_conflict,
        };
        let mut txn = MvccTxn::new(self.start_ts);
        let mut reader = MvccReader::new(snapshot);
        let mut values = Vec::with_capacity(self.keys.len());
        for (key, should_not_exist) in self.keys {
            let locked =
                acquire_pessimistic_lock(&mut txn, &mut reader, key, should_not_exist, &opts)?;
            if let Some(conflict_ts) = locked.locked_with_conflict_ts {
                // The value was read as of that commit: an async-commit or 1PC commit of this
                // transaction must land above it.
                context.concurrency_manager.update_max_ts(conflict_ts);
            }
            values.push(locked.value);
        }
        Ok(WriteResult::new(txn, values))
    }
}
