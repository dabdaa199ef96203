//! Rollback: roll back keys of a transaction (`KvBatchRollback`).

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result};
use crate::txn::actions::cleanup;

#[derive(Debug)]
pub struct Rollback {
    pub ctx: kvrpcpb::Context,
    pub keys: Vec<Key>,
    pub start_ts: TimeStamp,
}

impl WriteCommand for Rollback {
    type Output = ();
    const TAG: &'static str = "rollback";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        self.keys.clone()
    }

    /// Rolls back every key, lock or not; fails (writing nothing) if the transaction already
    /// committed on one of them.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<()>> {
        let mut txn = MvccTxn::new(self.start_ts);
        let mut reader = MvccReader::new(snapshot);
        for key in self.keys {
            cleanup(&mut txn, &mut reader, key, TimeStamp::zero())?;
        }
        Ok(WriteResult::new(txn, ()))
    }
}
