//! ResolveLock: commit or roll back the locks of finished transactions in a region.

use std::collections::HashMap;

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result};
use crate::txn::actions::{cleanup, commit};

/// Most locks one ResolveLock write handles; a region with more is resolved in several.
pub const RESOLVE_LOCK_BATCH_SIZE: usize = 256;

/// Resolves the locks on `keys` (found by a lock scan of the region, or named by the client)
/// whose transaction is in `txn_status` (start ts → commit ts, zero for rolled back).
#[derive(Debug)]
pub struct ResolveLock {
    pub ctx: kvrpcpb::Context,
    pub txn_status: HashMap<TimeStamp, TimeStamp>,
    pub keys: Vec<Key>,
}

/// How many locks one batch resolved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResolveLockResult {
    pub resolved: usize,
}

impl WriteCommand for ResolveLock {
    type Output = ResolveLockResult;
    const TAG: &'static str = "resolve_lock";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        self.keys.clone()
    }

    /// Looks at each key's lock again under the latches: a lock that is gone, or belongs to a
    /// transaction not being resolved, is skipped.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<ResolveLockResult>> {
        let mut reader = MvccReader::new(snapshot);
        let mut result = WriteResult::read_only(ResolveLockResult { resolved: 0 });
        for key in self.keys {
            let Some(lock) = reader.load_lock(&key)? else {
                continue;
            };
            let Some(&commit_ts) = self.txn_status.get(&lock.ts) else {
                continue;
            };
            let mut txn = MvccTxn::new(lock.ts);
            if commit_ts.is_zero() {
                cleanup(&mut txn, &mut reader, key, TimeStamp::zero())?;
            } else {
                commit(&mut txn, &mut reader, key, commit_ts)?;
            }
            let (modifies, released) = txn.into_parts();
            result.modifies.extend(modifies);
            result.released_locks.extend(released);
            result.output.resolved += 1;
        }
        Ok(result)
    }
}
