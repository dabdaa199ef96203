//! GC: remove versions of keys that no read at or after the safe point can see.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, TimeStamp};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{MvccReader, MvccTxn, Result};
use crate::txn::actions::gc;

/// Collects `keys` (user keys found by a scan of the region's write records).
#[derive(Debug)]
pub struct Gc {
    pub ctx: kvrpcpb::Context,
    pub keys: Vec<Key>,
    pub safe_point: TimeStamp,
}

/// What one GC batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcResult {
    pub found_versions: usize,
    pub deleted_versions: usize,
    /// Bytes of the deletions written.
    pub written_bytes: usize,
    /// Keys whose versions did not all fit in this batch.
    pub unfinished: Vec<Key>,
}

impl WriteCommand for Gc {
    type Output = GcResult;
    const TAG: &'static str = "gc";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    /// GC deletes only versions that nothing can write again, but it latches its keys anyway
    /// so that it never interleaves with a command reading them.
    fn latch_keys(&self) -> Vec<Key> {
        self.keys.clone()
    }

    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        _: WriteContext<'_>,
    ) -> Result<WriteResult<GcResult>> {
        let mut reader = MvccReader::new(snapshot);
        let mut txn = MvccTxn::new(TimeStamp::zero());
        let mut result = GcResult::default();
        for key in self.keys {
            let info = gc(&mut txn, &mut reader, key.clone(), self.safe_point)?;
            result.found_versions += info.found_versions;
            result.deleted_versions += info.deleted_versions;
            if !info.is_completed {
                result.unfinished.push(key);
            }
        }
        result.written_bytes = txn.write_size();
        Ok(WriteResult::new(txn, result))
    }
}
