//! The transaction scheduler (TiKV's `txn/scheduler.rs`): runs write commands one key-set at a
//! time.
//!
//! For each command: flow control (refuse with ServerIsBusy once the bytes of in-flight writes
//! pass `scheduler-pending-write-threshold`), the latches of its keys, an engine snapshot, the
//! command's read phase, then its writes as one `async_write`. Latches and in-memory locks are
//! held until the write is applied, so the next command on the same keys sees its effect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kvproto::errorpb;

use super::commands::{WriteCommand, WriteContext};
use crate::concurrency_manager::ConcurrencyManager;
use crate::kv::{Engine, WriteData};
use crate::latch::Latches;
use crate::{Error, Result};

/// Runs [`WriteCommand`]s. Cheap to clone; clones share latches and flow control.
#[derive(Clone)]
pub struct Scheduler<E: Engine> {
    engine: E,
    latches: Arc<Latches>,
    concurrency_manager: ConcurrencyManager,
    pending_write_bytes: Arc<AtomicUsize>,
    pending_write_threshold: usize,
}

/// TiKV's answer when a new leader cannot learn how far reads went before it.
fn max_ts_not_synced(reason: String) -> Error {
    Error::from(errorpb::Error {
        message: format!("max timestamp not synced: {reason}"),
        max_timestamp_not_synced: Some(errorpb::MaxTimestampNotSynced {}),
        ..Default::default()
    })
}

/// Counts a command's bytes as pending until dropped.
struct PendingWrite {
    counter: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl<E: Engine> Scheduler<E> {
    pub fn new(
        engine: E,
        latches: Arc<Latches>,
        concurrency_manager: ConcurrencyManager,
        pending_write_threshold: usize,
    ) -> Self {
        Scheduler {
            engine,
            latches,
            concurrency_manager,
            pending_write_bytes: Arc::new(AtomicUsize::new(0)),
            pending_write_threshold,
        }
    }

    /// Runs `cmd` and returns its output once its writes are applied.
    ///
    /// # Errors
    /// ServerIsBusy (a region error) past the pending-write threshold; the command's own
    /// errors (nothing is written then); region and engine errors of the snapshot or write.
    pub async fn run<C: WriteCommand>(&self, cmd: C) -> Result<C::Output> {
        let _pending = self.admit(cmd.write_bytes())?;
        let ctx = cmd.ctx().clone();
        let mut keys: Vec<Vec<u8>> = cmd
            .latch_keys()
            .into_iter()
            .map(|k| k.into_encoded())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let _latches = self.latches.acquire(keys.iter().map(Vec::as_slice)).await;
        let snapshot = self.engine.async_snapshot(&ctx).await?;
        if cmd.needs_max_ts_synced() {
            self.concurrency_manager
                .ensure_max_ts_synced()
                .await
                .map_err(max_ts_not_synced)?;
        }
        let context = WriteContext {
            concurrency_manager: &self.concurrency_manager,
        };
        let result = cmd.process_write(snapshot, context)?;
        if !result.modifies.is_empty() {
            self.engine
                .async_write(&ctx, WriteData::new(result.modifies))
                .await?;
        }
        // In-memory locks may go only now that the engine has the locks.
        drop(result.lock_guards);
        Ok(result.output)
    }

    /// Counts `bytes` as pending, or refuses when the threshold is already reached.
    fn admit(&self, bytes: usize) -> Result<PendingWrite> {
        let before = self.pending_write_bytes.fetch_add(bytes, Ordering::SeqCst);
        let pending = PendingWrite {
            counter: self.pending_write_bytes.clone(),
            bytes,
        };
        if before > 0 && before + bytes > self.pending_write_threshold {
            return Err(Error::from(errorpb::Error {
                message: "scheduler is busy".into(),
                server_is_busy: Some(errorpb::ServerIsBusy {
                    reason: "scheduler is busy: too many pending writes".into(),
                    backoff_ms: 100,
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
        Ok(pending)
    }
}
