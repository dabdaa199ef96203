//! The transaction scheduler (TiKV's `txn/scheduler.rs`): runs write commands one key-set at a
//! time.
//!
//! For each command: flow control (refuse with ServerIsBusy once the bytes of in-flight writes
//! pass `scheduler-pending-write-threshold`), the latches of its keys, an engine snapshot, the
//! command's read phase, then its writes as one `async_write`. Latches and in-memory locks are
//! held until the write is applied, so the next command on the same keys sees its effect.
//! Requests parked on the locks the write released are woken then (see
//! [`crate::lock_manager`]); a pessimistic lock request that meets a lock is parked before
//! its latches go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use kvproto::errorpb;
use txn_types::{Key, TimeStamp};

use super::commands::{WriteCommand, WriteContext};
use crate::concurrency_manager::ConcurrencyManager;
use crate::kv::{Engine, WriteData};
use crate::latch::Latches;
use crate::lock_manager::{LockManager, Parked};
use crate::{metrics, mvcc, Error, Result};

/// Runs [`WriteCommand`]s. Cheap to clone; clones share latches and flow control.
#[derive(Clone)]
pub struct Scheduler<E: Engine> {
    engine: E,
    latches: Arc<Latches>,
    concurrency_manager: ConcurrencyManager,
    lock_manager: LockManager,
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
        lock_manager: LockManager,
        pending_write_threshold: usize,
    ) -> Self {
        Scheduler {
            engine,
            latches,
            concurrency_manager,
            lock_manager,
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
        self.execute(cmd, |_| None::<()>)
            .await
            .map_err(|(error, _)| error)
    }

    /// Runs `cmd`, a pessimistic lock request of `start_ts`; if it fails on another
    /// transaction's lock, parks it on that key before releasing the latches, so that the
    /// lock's release wakes it.
    ///
    /// # Errors
    /// As [`Scheduler::run`], with the parked request for a lock.
    pub(crate) async fn run_or_park<C: WriteCommand>(
        &self,
        cmd: C,
        start_ts: TimeStamp,
    ) -> std::result::Result<C::Output, (Error, Option<Parked>)> {
        self.execute(cmd, |error| match error {
            Error::Mvcc(mvcc::Error::KeyIsLocked(info)) => {
                Some(self.lock_manager.park(&Key::from_raw(&info.key), start_ts))
            }
            _ => None,
        })
        .await
    }

    /// Runs `cmd`; `on_error` sees a failed command's error while its latches are held. Counts
    /// and times it by its tag.
    async fn execute<C: WriteCommand, P>(
        &self,
        cmd: C,
        on_error: impl FnOnce(&Error) -> Option<P>,
    ) -> std::result::Result<C::Output, (Error, Option<P>)> {
        let started = Instant::now();
        let result = self.execute_inner(cmd, on_error).await;
        metrics::COMMAND_DURATION
            .with_label_values(&[C::TAG])
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn execute_inner<C: WriteCommand, P>(
        &self,
        cmd: C,
        on_error: impl FnOnce(&Error) -> Option<P>,
    ) -> std::result::Result<C::Output, (Error, Option<P>)> {
        let _pending = self.admit(cmd.write_bytes()).map_err(|e| {
            metrics::TOO_BUSY.with_label_values(&[C::TAG]).inc();
            (e, None)
        })?;
        let ctx = cmd.ctx().clone();
        let mut keys: Vec<Vec<u8>> = cmd
            .latch_keys()
            .into_iter()
            .map(|k| k.into_encoded())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let waiting = Instant::now();
        let _latches = self.latches.acquire(keys.iter().map(Vec::as_slice)).await;
        metrics::LATCH_WAIT_DURATION
            .with_label_values(&[C::TAG])
            .observe(waiting.elapsed().as_secs_f64());
        let snapshot = self
            .engine
            .async_snapshot(&ctx)
            .await
            .map_err(|e| (e.into(), None))?;
        if cmd.needs_max_ts_synced() {
            self.concurrency_manager
                .ensure_max_ts_synced()
                .await
                .map_err(|e| (max_ts_not_synced(e), None))?;
        }
        let context = WriteContext {
            concurrency_manager: &self.concurrency_manager,
        };
        let result = match cmd.process_write(snapshot, context) {
            Ok(result) => result,
            Err(e) => {
                let error = Error::from(e);
                let parked = on_error(&error);
                return Err((error, parked));
            }
        };
        if !result.modifies.is_empty() {
            self.engine
                .async_write(&ctx, WriteData::new(result.modifies))
                .await
                .map_err(|e| (e.into(), None))?;
        }
        // In-memory locks may go only now that the engine has the locks.
        drop(result.lock_guards);
        self.lock_manager.wake_up(&result.released_locks);
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
