//! Transactional write commands, one file each (TiKV's `txn/commands`). A command names the
//! keys it latches, reads an engine snapshot and produces the writes of its effect as one
//! [`WriteResult`]; the [`super::scheduler::Scheduler`] does the latching, the snapshot and the
//! write.

mod acquire_pessimistic_lock;
mod check_secondary_locks;
mod check_txn_status;
mod cleanup;
mod commit;
mod gc;
mod pessimistic_rollback;
mod prewrite;
mod resolve_lock;
mod rollback;
mod txn_heart_beat;

pub use acquire_pessimistic_lock::AcquirePessimisticLock;
pub use check_secondary_locks::{CheckSecondaryLocks, SecondaryLocksStatus};
pub use check_txn_status::CheckTxnStatus;
pub use cleanup::Cleanup;
pub use commit::Commit;
pub use gc::{Gc, GcResult};
pub use pessimistic_rollback::PessimisticRollback;
pub use prewrite::{Prewrite, PrewriteResult};
pub use resolve_lock::{ResolveLock, ResolveLockResult, RESOLVE_LOCK_BATCH_SIZE};
pub use rollback::Rollback;
pub use txn_heart_beat::TxnHeartBeat;

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::Key;

use crate::concurrency_manager::{ConcurrencyManager, KeyHandleGuard};
use crate::kv::Modify;
use crate::mvcc::{MvccTxn, Result};

/// What a command's write phase needs besides the snapshot.
pub struct WriteContext<'a> {
    pub concurrency_manager: &'a ConcurrencyManager,
}

/// The outcome of a command's read phase: the writes to apply, what to answer once they are
/// applied, and in-memory locks to hold until then.
pub struct WriteResult<T> {
    pub modifies: Vec<Modify>,
    pub output: T,
    pub lock_guards: Vec<KeyHandleGuard>,
    /// Keys whose locks the writes remove: their waiters wake once the writes are applied.
    pub released_locks: Vec<Key>,
}

impl<T> WriteResult<T> {
    /// The writes `txn` collected, answered with `output`.
    pub fn new(txn: MvccTxn, output: T) -> Self {
        let (modifies, released_locks) = txn.into_parts();
        WriteResult {
            modifies,
            output,
            lock_guards: vec![],
            released_locks,
        }
    }

    /// Nothing to write.
    pub fn read_only(output: T) -> Self {
        WriteResult {
            modifies: vec![],
            output,
            lock_guards: vec![],
            released_locks: vec![],
        }
    }
}

/// A transactional command that writes.
pub trait WriteCommand: Send + 'static {
    /// What the command answers on success.
    type Output: Send + 'static;
    /// The command's name in logs and metrics (TiKV's tags: `prewrite`, `commit`, ...).
    const TAG: &'static str;

    fn ctx(&self) -> &kvrpcpb::Context;

    /// The keys whose latches the command holds from before its read until its write is
    /// applied.
    fn latch_keys(&self) -> Vec<Key>;

    /// Bytes the command will write, for the scheduler's flow control.
    fn write_bytes(&self) -> usize {
        0
    }

    /// Whether the command computes a commit ts from `max_ts` (async commit, 1PC), which must
    /// then account for reads served by a previous leader.
    fn needs_max_ts_synced(&self) -> bool {
        false
    }

    /// Reads `snapshot` and decides what to write.
    ///
    /// # Errors
    /// The command's MVCC errors; a failing command writes nothing.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        context: WriteContext<'_>,
    ) -> Result<WriteResult<Self::Output>>;
}
