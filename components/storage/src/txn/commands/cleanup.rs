//! Cleanup: roll back one key of a transaction whose lock expired (`KvCleanup`).

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result};
use crate::txn::actions::cleanup;

#[derive(Debug)]
pub struct Cleanup {
    pub ctx: kvrpcpb::Context,
    pub key: Key,
    pub start_ts: TimeStamp,
    /// A live lock (not expired at this ts) is reported, not rolled back; 0 rolls back anyway.
    pub current_ts: TimeStamp,
}

impl WriteCommand for Cleanup {
    type Output = ();
    const TAG: &'static str = "cleanup";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        vec![self.key.clone()]
    }

    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<()>> {
        let mut txn = MvccTxn::new(self.start_ts);
        let mut reader = MvccReader::new(snapshot);
        cleanup(&mut txn, &mut reader, self.key, self.current_ts)?;
        Ok(WriteResult::new(txn, ()))
    }
}
