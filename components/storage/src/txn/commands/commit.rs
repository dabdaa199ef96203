//! Commit: the second phase, for keys of one region.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{Error, MvccReader, MvccTxn, Result};
use crate::txn::actions::commit;

#[derive(Debug)]
pub struct Commit {
    pub ctx: kvrpcpb::Context,
    pub keys: Vec<Key>,
    pub start_ts: TimeStamp,
    pub commit_ts: TimeStamp,
}

impl WriteCommand for Commit {
    type Output = ();
    const TAG: &'static str = "commit";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        self.keys.clone()
    }

    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<()>> {
        if self.commit_ts <= self.start_ts {
            return Err(Error::InvalidRequest(format!(
                "commit ts {} must be greater than start ts {}",
                self.commit_ts, self.start_ts
            )));
        }
        let mut txn = MvccTxn::new(self.start_ts);
        let mut reader = MvccReader::new(snapshot);
        for key in self.keys {
            commit(&mut txn, &mut reader, key, self.commit_ts)?;
        }
        Ok(WriteResult::new(txn, ()))
    }
}
