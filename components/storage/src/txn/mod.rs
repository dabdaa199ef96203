//! The transactional half of storage: Percolator over MVCC (TiKV's `storage/txn`).
//!
//! * [`TxnStorage`]: snapshot reads (`get`, `batch_get`, `scan`, `scan_lock`) and the entry
//!   point of write commands;
//! * [`commands`]: one file per write command, run by the [`scheduler`];
//! * [`actions`]: the steps commands share (prewrite, commit, cleanup, check_txn_status, ...);
//! * [`service`]: `kvrpcpb` transactional requests → commands → responses.
//!
//! Reads raise the concurrency manager's `max_ts` and check its in-memory locks before they
//! take a snapshot, so that an async-commit or 1PC transaction prewriting at the same time
//! either commits above the read or is seen by it (see [`crate::concurrency_manager`]).

pub mod actions;
pub mod commands;
pub mod scheduler;
pub mod service;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_traits::{EngineIterator, IterOptions, Iterable, SeekKey, CF_WRITE};
use futures::channel::oneshot;
use futures::future::{self, Either};
use kvproto::deadlock::{DeadlockResponse, WaitForEntry};
use kvproto::kvrpcpb;
use txn_types::{Key, Lock, TimeStamp, Value};

use crate::api_version::ApiVersion;
use crate::concurrency_manager::ConcurrencyManager;
use crate::kv::{Engine, Modify, WriteData};
use crate::latch::Latches;
use crate::lock_manager::{key_hash, DeadlockCallback, LockManager, Parked, WakeUp};
use crate::mvcc::{self, MvccReader, PointGetter, ScanMode, Scanner};
use crate::{Error, Result, StorageConfig};
use commands::{
    AcquirePessimisticLock, Gc, GcResult, ResolveLock, WriteCommand, RESOLVE_LOCK_BATCH_SIZE,
};
use scheduler::Scheduler;

/// A key and its value, or the error (a lock) that stopped reading it.
pub type KvPairResult = mvcc::Result<(Vec<u8>, Value)>;

/// How a GC pass over a region goes easy on foreground writes (`[gc]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcOptions {
    /// Most keys one GC write handles. Default 512, as in TiKV.
    pub batch_keys: usize,
    /// GC writes per second at most, in bytes; 0 is unlimited. Default 0.
    pub max_write_bytes_per_sec: u64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            batch_keys: 512,
            max_write_bytes_per_sec: 0,
        }
    }
}

/// Transactional commands over an [`Engine`]. Cheap to clone; clones share the scheduler.
#[derive(Clone)]
pub struct TxnStorage<E: Engine> {
    engine: E,
    config: StorageConfig,
    scheduler: Scheduler<E>,
    concurrency_manager: ConcurrencyManager,
    lock_manager: LockManager,
}

impl<E: Engine> TxnStorage<E> {
    pub(crate) fn new(
        engine: E,
        config: StorageConfig,
        latches: Arc<Latches>,
        concurrency_manager: ConcurrencyManager,
        lock_manager: LockManager,
    ) -> Self {
        let scheduler = Scheduler::new(
            engine.clone(),
            latches,
            concurrency_manager.clone(),
            lock_manager.clone(),
            config.scheduler_pending_write_threshold,
        );
        TxnStorage {
            engine,
            config,
            scheduler,
            concurrency_manager,
            lock_manager,
        }
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    pub fn concurrency_manager(&self) -> &ConcurrencyManager {
        &self.concurrency_manager
    }

    pub fn lock_manager(&self) -> &LockManager {
        &self.lock_manager
    }

    /// Runs a write command through the scheduler.
    ///
    /// # Errors
    /// As [`Scheduler::run`].
    pub async fn sched<C: WriteCommand>(&self, cmd: C) -> Result<C::Output> {
        self.scheduler.run(cmd).await
    }

    /// Takes pessimistic locks, waiting up to `wait_timeout` (TiKV's encoding, see
    /// [`LockManager::wait_timeout`]) for another transaction's lock to go; a request woken
    /// by the release runs again. (With `allow_lock_with_conflict`, a commit newer than
    /// `for_update_ts`, such as the released lock's, is no conflict.)
    ///
    /// # Errors
    /// `Deadlock` at once when the wait would close a cycle of waiting transactions (unless
    /// `is_first_lock`: a transaction holding no lock cannot be in one); the lock
    /// (`KeyIsLocked`) when the wait times out; the command's other errors.
    pub async fn acquire_pessimistic_lock(
        &self,
        cmd: AcquirePessimisticLock,
        wait_timeout: i64,
        is_first_lock: bool,
    ) -> Result<Vec<Option<Value>>> {
        let Some(timeout) = self.lock_manager.wait_timeout(wait_timeout) else {
            return self.sched(cmd).await;
        };
        let deadline = Instant::now() + timeout;
        loop {
            let start_ts = cmd.start_ts;
            let (error, parked) = match self.scheduler.run_or_park(cmd.clone(), start_ts).await {
                Ok(values) => return Ok(values),
                Err((error, Some(parked))) => (error, parked),
                Err((error, None)) => return Err(error),
            };
            let Error::Mvcc(mvcc::Error::KeyIsLocked(lock)) = &error else {
                return Err(error);
            };
            let entry = WaitForEntry {
                txn: start_ts.into_inner(),
                wait_for_txn: lock.lock_version,
                key_hash: key_hash(&lock.key),
                key: lock.key.clone(),
                resource_group_tag: cmd.ctx.resource_group_tag.clone(),
                wait_time: 0,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let woken = match self
                .wait_for_lock(parked, &entry, remaining, !is_first_lock)
                .await
            {
                Ok(woken) => woken,
                Err(cycle) => {
                    // As TiKV reports it: the cycle's other edges, then this one.
                    let mut wait_chain = cycle.wait_chain;
                    wait_chain.push(entry);
                    return Err(mvcc::Error::Deadlock {
                        start_ts,
                        lock_ts: lock.lock_version.into(),
                        lock_key: lock.key.clone(),
                        deadlock_key_hash: cycle.deadlock_key_hash,
                        wait_chain,
                    }
                    .into());
                }
            };
            let Some(wake_up) = woken else {
                return Err(error);
            };
            if !wake_up.after.is_zero() {
                tokio::time::sleep(wake_up.after).await;
            }
        }
    }

    /// Waits up to `timeout` for the parked request's wake-up (`None`: timed out), reporting
    /// the wait to the deadlock detector if `detect`; the cycle if the wait would close one.
    async fn wait_for_lock(
        &self,
        mut parked: Parked,
        entry: &WaitForEntry,
        timeout: Duration,
        detect: bool,
    ) -> std::result::Result<Option<WakeUp>, DeadlockResponse> {
        let (deadlock_tx, mut deadlock_rx) = oneshot::channel();
        // Ends the reported wait however this future ends, dropped by a gone client included.
        let _reported = detect.then(|| {
            let on_deadlock = Box::new(move |cycle| {
                let _ = deadlock_tx.send(cycle);
            });
            ReportedWait::report(&self.lock_manager, entry.clone(), on_deadlock)
        });
        let wait = std::pin::pin!(parked.wait(timeout));
        match future::select(wait, &mut deadlock_rx).await {
            Either::Left((woken, _)) => Ok(woken),
            Either::Right((Ok(cycle), _)) => Err(cycle),
            // Detection gave no answer: wait for the lock alone.
            Either::Right((Err(_), wait)) => Ok(wait.await),
        }
    }

    /// The value of `key` as of `start_ts`.
    ///
    /// # Errors
    /// `KeyIsLocked` (as [`Error::Mvcc`]) for a blocking lock; region errors; bad keys.
    pub async fn get(
        &self,
        ctx: &kvrpcpb::Context,
        key: Vec<u8>,
        start_ts: TimeStamp,
    ) -> Result<Option<Value>> {
        ApiVersion::from_context(ctx)?.check_txn_key("kv_get", &key)?;
        let bypass = ctx.resolved_locks.clone();
        let check_locks = !is_read_committed(ctx);
        self.concurrency_manager.update_max_ts(start_ts);
        if check_locks {
            self.check_memory_lock(&Key::from_raw(&key), &key, start_ts, &bypass)?;
        }
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let mut getter = PointGetter::new(snapshot, start_ts)
            .bypass_locks(bypass)
            .read_committed(!check_locks);
        Ok(getter.get(&key)?)
    }

    /// The values of `keys` as of `start_ts`, in request order, leaving out keys without a
    /// value; a locked key comes back as its error.
    ///
    /// # Errors
    /// As [`TxnStorage::get`], except that locks found in the engine are per key.
    pub async fn batch_get(
        &self,
        ctx: &kvrpcpb::Context,
        keys: Vec<Vec<u8>>,
        start_ts: TimeStamp,
    ) -> Result<Vec<KvPairResult>> {
        let api = ApiVersion::from_context(ctx)?;
        for key in &keys {
            api.check_txn_key("kv_batch_get", key)?;
        }
        let bypass = ctx.resolved_locks.clone();
        let check_locks = !is_read_committed(ctx);
        self.concurrency_manager.update_max_ts(start_ts);
        if check_locks {
            for key in &keys {
                self.check_memory_lock(&Key::from_raw(key), key, start_ts, &bypass)?;
            }
        }
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let mut getter = PointGetter::new(snapshot, start_ts)
            .bypass_locks(bypass)
            .read_committed(!check_locks);
        let mut pairs = Vec::with_capacity(keys.len());
        for key in keys {
            match getter.get(&key) {
                Ok(Some(value)) => pairs.push(Ok((key, value))),
                Ok(None) => {}
                Err(e @ mvcc::Error::KeyIsLocked(_)) => pairs.push(Err(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(pairs)
    }

    /// Up to `limit` keys with values as of `start_ts` in a range, clipped to the region:
    /// forward `[start_key, end_key)` ascending, or with `reverse` `[end_key, start_key)`
    /// descending (the client swaps the bounds). Empty bounds are unbounded. A locked key comes
    /// back as its error and counts towards the limit.
    ///
    /// # Errors
    /// As [`TxnStorage::get`].
    #[allow(clippy::too_many_arguments)]
    pub async fn scan(
        &self,
        ctx: &kvrpcpb::Context,
        start_key: Vec<u8>,
        end_key: Vec<u8>,
        limit: usize,
        start_ts: TimeStamp,
        key_only: bool,
        reverse: bool,
    ) -> Result<Vec<KvPairResult>> {
        let api = ApiVersion::from_context(ctx)?;
        api.check_txn_bound("kv_scan", &start_key)?;
        api.check_txn_bound("kv_scan", &end_key)?;
        let (lower, upper) = match reverse {
            true => (end_key, start_key),
            false => (start_key, end_key),
        };
        let lower = encode_bound(&lower);
        let upper = encode_bound(&upper);
        if limit == 0 || (!upper.is_empty() && lower >= upper) {
            return Ok(vec![]);
        }
        let bypass = ctx.resolved_locks.clone();
        let check_locks = !is_read_committed(ctx);
        self.concurrency_manager.update_max_ts(start_ts);
        if check_locks {
            let end = (!upper.is_empty()).then(|| Key::from_encoded(upper.clone()));
            self.concurrency_manager.read_range_check(
                &Key::from_encoded(lower.clone()),
                end.as_ref(),
                |key, lock| check_lock(key, lock, start_ts, &bypass),
            )?;
        }
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let mode = match reverse {
            true => ScanMode::Backward,
            false => ScanMode::Forward,
        };
        let mut scanner = Scanner::new(snapshot, start_ts, mode, &lower, &upper)?
            .key_only(key_only)
            .bypass_locks(bypass)
            .read_committed(!check_locks);
        let mut pairs = vec![];
        while pairs.len() < limit {
            match scanner.read_next() {
                Ok(Some(pair)) => pairs.push(Ok(pair)),
                Ok(None) => break,
                Err(e @ mvcc::Error::KeyIsLocked(_)) => pairs.push(Err(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(pairs)
    }

    /// Locks of every type with `ts <= max_ts` in `[start_key, end_key)` (clipped to the
    /// region), in key order, at most `limit` (0: no limit).
    ///
    /// # Errors
    /// Region errors; bad keys; malformed locks.
    pub async fn scan_lock(
        &self,
        ctx: &kvrpcpb::Context,
        max_ts: TimeStamp,
        start_key: Vec<u8>,
        end_key: Vec<u8>,
        limit: usize,
    ) -> Result<Vec<kvrpcpb::LockInfo>> {
        let api = ApiVersion::from_context(ctx)?;
        api.check_txn_bound("kv_scan_lock", &start_key)?;
        api.check_txn_bound("kv_scan_lock", &end_key)?;
        // Readers of locks (GC, cleanup) promise nothing about later commits, but a lock scan
        // at max_ts must not miss a concurrent async-commit prewrite below it.
        self.concurrency_manager.update_max_ts(max_ts);
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let reader = MvccReader::new(snapshot);
        let (locks, _) = reader.scan_locks(
            &encode_bound(&start_key),
            &encode_bound(&end_key),
            |lock| lock.ts <= max_ts,
            limit,
        )?;
        locks
            .into_iter()
            .map(|(key, lock)| Ok(lock.into_lock_info(key.into_raw().map_err(mvcc::Error::from)?)))
            .collect()
    }

    /// Commits or rolls back every lock in the region whose transaction is in `txn_status`
    /// (start ts → commit ts, zero for rolled back), or only the locks on `keys` when given.
    ///
    /// # Errors
    /// Region errors; a commit below a lock's `min_commit_ts`.
    pub async fn resolve_lock(
        &self,
        ctx: &kvrpcpb::Context,
        txn_status: HashMap<TimeStamp, TimeStamp>,
        keys: Option<Vec<Key>>,
    ) -> Result<()> {
        if let Some(keys) = keys {
            for chunk in keys.chunks(RESOLVE_LOCK_BATCH_SIZE) {
                let cmd = ResolveLock {
                    ctx: ctx.clone(),
                    txn_status: txn_status.clone(),
                    keys: chunk.to_vec(),
                };
                self.sched(cmd).await?;
            }
            return Ok(());
        }
        let mut start = vec![];
        loop {
            let snapshot = self.engine.async_snapshot(ctx).await?;
            let reader = MvccReader::new(snapshot);
            let (locks, has_remain) = reader.scan_locks(
                &start,
                &[],
                |lock| txn_status.contains_key(&lock.ts),
                RESOLVE_LOCK_BATCH_SIZE,
            )?;
            let Some((last, _)) = locks.last() else {
                return Ok(());
            };
            start = next_key(last.as_encoded());
            let cmd = ResolveLock {
                ctx: ctx.clone(),
                txn_status: txn_status.clone(),
                keys: locks.into_iter().map(|(key, _)| key).collect(),
            };
            self.sched(cmd).await?;
            if !has_remain {
                return Ok(());
            }
        }
    }

    /// Removes, in the region, every version no read at or after `safe_point` can see, in
    /// writes of at most `options.batch_keys` keys, paced to `options.max_write_bytes_per_sec`.
    ///
    /// # Errors
    /// Region errors; malformed records.
    pub async fn gc(
        &self,
        ctx: &kvrpcpb::Context,
        safe_point: TimeStamp,
        options: GcOptions,
    ) -> Result<GcResult> {
        let mut total = GcResult::default();
        let mut start = vec![];
        let batch_keys = options.batch_keys.max(1);
        loop {
            let snapshot = self.engine.async_snapshot(ctx).await?;
            let (mut keys, next) = scan_user_keys(&snapshot, &start, batch_keys)?;
            // A key with more old versions than one write holds is collected over several.
            while !keys.is_empty() {
                let cmd = Gc {
                    ctx: ctx.clone(),
                    keys,
                    safe_point,
                };
                let result = self.sched(cmd).await?;
                total.found_versions += result.found_versions;
                total.deleted_versions += result.deleted_versions;
                total.written_bytes += result.written_bytes;
                keys = result.unfinished;
                if options.max_write_bytes_per_sec > 0 && result.written_bytes > 0 {
                    let secs = result.written_bytes as f64 / options.max_write_bytes_per_sec as f64;
                    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                }
            }
            match next {
                Some(next) => start = next,
                None => return Ok(total),
            }
        }
    }

    /// Deletes every version, lock and value in `[start_key, end_key)` through raft (TiKV's
    /// `KvDeleteRange`, used by TiDB after dropping a table). `notify_only` does nothing.
    ///
    /// # Errors
    /// Region errors; bad keys.
    pub async fn delete_range(
        &self,
        ctx: &kvrpcpb::Context,
        start_key: Vec<u8>,
        end_key: Vec<u8>,
        notify_only: bool,
    ) -> Result<()> {
        let api = ApiVersion::from_context(ctx)?;
        api.check_txn_bound("kv_delete_range", &start_key)?;
        api.check_txn_bound("kv_delete_range", &end_key)?;
        let (start, end) = (encode_bound(&start_key), encode_bound(&end_key));
        if notify_only || (!end.is_empty() && start >= end) {
            return Ok(());
        }
        let modifies = engine_traits::DATA_CFS
            .iter()
            .map(|&cf| Modify::DeleteRange {
                cf,
                start: start.clone(),
                end: end.clone(),
            })
            .collect();
        self.engine
            .async_write(ctx, WriteData::new(modifies))
            .await?;
        Ok(())
    }

    /// Physically deletes every version, lock and value in `[start_key, end_key)` on this
    /// store, without raft (TiKV's `UnsafeDestroyRange`; clients send it to every store).
    ///
    /// # Errors
    /// Bad keys; [`Error::InvalidRange`]; engine errors.
    pub async fn unsafe_destroy_range(
        &self,
        ctx: &kvrpcpb::Context,
        start_key: Vec<u8>,
        end_key: Vec<u8>,
    ) -> Result<()> {
        let api = ApiVersion::from_context(ctx)?;
        api.check_txn_bound("unsafe_destroy_range", &start_key)?;
        api.check_txn_bound("unsafe_destroy_range", &end_key)?;
        let (start, end) = (encode_bound(&start_key), encode_bound(&end_key));
        if !end.is_empty() && start > end {
            return Err(Error::InvalidRange);
        }
        self.engine.unsafe_destroy_range(start, end).await?;
        Ok(())
    }

    /// Fails with `KeyIsLocked` when an in-memory lock on `key` blocks a read at `ts`.
    fn check_memory_lock(
        &self,
        key: &Key,
        raw_key: &[u8],
        ts: TimeStamp,
        bypass: &[u64],
    ) -> Result<()> {
        self.concurrency_manager.read_key_check(key, |lock| {
            if lock.blocks_read(raw_key, ts, bypass) {
                return Err(Error::from(mvcc::Error::KeyIsLocked(Box::new(
                    lock.clone().into_lock_info(raw_key.to_vec()),
                ))));
            }
            Ok(())
        })
    }
}

fn check_lock(key: &Key, lock: &Lock, ts: TimeStamp, bypass: &[u64]) -> Result<()> {
    let raw_key = key.to_raw().map_err(mvcc::Error::from)?;
    if lock.blocks_read(&raw_key, ts, bypass) {
        return Err(
            mvcc::Error::KeyIsLocked(Box::new(lock.clone().into_lock_info(raw_key))).into(),
        );
    }
    Ok(())
}

fn is_read_committed(ctx: &kvrpcpb::Context) -> bool {
    ctx.isolation_level == kvrpcpb::IsolationLevel::Rc as i32
}

/// A wait reported to the deadlock detector, withdrawn when dropped.
struct ReportedWait<'a> {
    lock_manager: &'a LockManager,
    entry: WaitForEntry,
}

impl<'a> ReportedWait<'a> {
    fn report(
        lock_manager: &'a LockManager,
        entry: WaitForEntry,
        on_deadlock: DeadlockCallback,
    ) -> Self {
        lock_manager.detector().detect(entry.clone(), on_deadlock);
        ReportedWait {
            lock_manager,
            entry,
        }
    }
}

impl Drop for ReportedWait<'_> {
    fn drop(&mut self) {
        // A wait refused as a deadlock left no edge; the clean-up is then a no-op.
        self.lock_manager
            .detector()
            .clean_up_wait_for(self.entry.clone());
    }
}

/// The encoded form of a range bound; empty stays empty (unbounded).
fn encode_bound(raw: &[u8]) -> Vec<u8> {
    match raw.is_empty() {
        true => vec![],
        false => Key::from_raw(raw).into_encoded(),
    }
}

/// The smallest key after `key`.
fn next_key(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Up to `limit` distinct user keys (encoded, without timestamps) of the write column family
/// from `start` on, and where the next batch starts (`None` at the end of the region).
fn scan_user_keys<S: Iterable>(
    snapshot: &S,
    start: &[u8],
    limit: usize,
) -> Result<(Vec<Key>, Option<Vec<u8>>)> {
    let mut cursor = snapshot.iterator_opt(CF_WRITE, IterOptions::range(start, &[]))?;
    let mut valid = cursor.seek(SeekKey::Start)?;
    let mut keys: Vec<Key> = vec![];
    while valid {
        let (user_key, _) = Key::split_on_ts_for(cursor.key()).map_err(mvcc::Error::from)?;
        if keys.last().is_none_or(|last| last.as_encoded() != user_key) {
            if keys.len() == limit {
                return Ok((keys, Some(user_key.to_vec())));
            }
            keys.push(Key::from_encoded_slice(user_key));
        }
        valid = cursor.next()?;
    }
    Ok((keys, None))
}
