//! TxnHeartBeat: keep a transaction's primary lock alive.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{Error, MvccReader, MvccTxn, Result};

#[derive(Debug)]
pub struct TxnHeartBeat {
    pub ctx: kvrpcpb::Context,
    pub primary_key: Key,
    pub start_ts: TimeStamp,
    pub advise_ttl: u64,
}

impl WriteCommand for TxnHeartBeat {
    /// The lock's TTL after the heartbeat.
    type Output = u64;
    const TAG: &'static str = "txn_heart_beat";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        vec![self.primary_key.clone()]
    }

    /// Raises the TTL of the transaction's lock (prewritten or pessimistic) to `advise_ttl`
    /// if it is lower; a TTL is never lowered.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<u64>> {
        let mut txn = MvccTxn::new(self.start_ts);
        let reader = MvccReader::new(snapshot);
        match reader.load_lock(&self.primary_key)? {
            Some(mut lock) if lock.ts == self.start_ts => {
                if lock.ttl < self.advise_ttl {
                    lock.ttl = self.advise_ttl;
                    txn.put_lock(self.primary_key, &lock);
                }
                Ok(WriteResult::new(txn, lock.ttl))
            }
            _ => Err(Error::TxnNotFound {
                start_ts: self.start_ts,
                key: self.primary_key.into_raw()?,
            }),
        }
    }
}
