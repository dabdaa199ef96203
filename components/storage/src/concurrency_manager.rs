//! The concurrency manager (TiKV's `concurrency_manager`): what an async-commit or 1PC
//! transaction needs so that a read never misses it.
//!
//! Such a transaction does not take its commit ts from PD: it commits at the largest
//! `min_commit_ts` its prewrites computed. For snapshot isolation, every read at ts `T` that ran
//! before the prewrite must be below that commit ts, and every read that runs after it must see
//! the lock. Two things give that:
//!
//! * **`max_ts`**: every transactional read raises it to its read ts *before* it looks at data;
//!   a prewrite computes `min_commit_ts > max_ts`.
//! * **in-memory locks**: between computing `min_commit_ts` and the lock reaching the engine,
//!   the lock sits in a table that reads check after raising `max_ts`. The prewrite reads
//!   `max_ts` and publishes its lock under the table's mutex, so a read either raised `max_ts`
//!   before (and the commit ts lands above it) or finds the lock.
//!
//! Guards ([`KeyHandleGuard`]) remove their key from the table when dropped, which the
//! scheduler does once the command's write is applied.
//!
//! `max_ts` only covers reads this store served. When one of its peers becomes leader, reads
//! the previous leader served are unknown here, so before the next async-commit or 1PC prewrite
//! the manager raises `max_ts` to a fresh PD timestamp ([`MaxTsSource`]), which is above every
//! timestamp read before the leader changed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use txn_types::{Key, Lock, TimeStamp};

use crate::kv::BoxFuture;

/// What tells a store that its peers became leaders, and gives it timestamps past every read
/// served before (PD's TSO).
pub trait MaxTsSource: Send + Sync + 'static {
    /// A number that grows each time a peer of this store becomes leader.
    fn leader_epoch(&self) -> u64;

    /// A fresh timestamp from PD.
    fn fetch_ts(&self) -> BoxFuture<Result<TimeStamp, String>>;
}

/// Shared by every read and write of a store. Cheap to clone.
#[derive(Clone, Default)]
pub struct ConcurrencyManager {
    max_ts: Arc<AtomicU64>,
    lock_table: Arc<Mutex<BTreeMap<Key, Option<Lock>>>>,
    source: Option<Arc<dyn MaxTsSource>>,
    /// The leader epoch `max_ts` was last brought past a PD timestamp at.
    synced_epoch: Arc<AtomicU64>,
}

impl ConcurrencyManager {
    /// A manager whose `max_ts` starts at `latest_ts`, for a store whose leaders never change
    /// (tests).
    pub fn new(latest_ts: TimeStamp) -> Self {
        let manager = ConcurrencyManager::default();
        manager.update_max_ts(latest_ts);
        manager
    }

    /// A manager whose `max_ts` starts at `latest_ts` and follows leader changes of `source`.
    pub fn with_source(latest_ts: TimeStamp, source: Arc<dyn MaxTsSource>) -> Self {
        let manager = ConcurrencyManager {
            synced_epoch: Arc::new(AtomicU64::new(source.leader_epoch())),
            source: Some(source),
            ..ConcurrencyManager::default()
        };
        manager.update_max_ts(latest_ts);
        manager
    }

    /// Brings `max_ts` past a fresh PD timestamp if a peer of this store became leader since
    /// the last time; async-commit and 1PC prewrites call it after taking their snapshot (so
    /// the leader change that let them in is counted).
    ///
    /// # Errors
    /// The source's error (PD unreachable).
    pub async fn ensure_max_ts_synced(&self) -> Result<(), String> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let epoch = source.leader_epoch();
        if epoch <= self.synced_epoch.load(Ordering::SeqCst) {
            return Ok(());
        }
        let ts = source.fetch_ts().await?;
        self.update_max_ts(ts);
        self.synced_epoch.fetch_max(epoch, Ordering::SeqCst);
        Ok(())
    }

    /// Raises `max_ts` to `ts` (a read at `ts` is about to run). `TimeStamp::max()` is
    /// ignored: such reads want the latest committed data and promise nothing about commit ts.
    pub fn update_max_ts(&self, ts: TimeStamp) {
        if !ts.is_max() {
            self.max_ts.fetch_max(ts.into_inner(), Ordering::SeqCst);
        }
    }

    pub fn max_ts(&self) -> TimeStamp {
        TimeStamp::new(self.max_ts.load(Ordering::SeqCst))
    }

    /// Registers `key` in the lock table; the caller holds the key's latch, so no other writer
    /// holds a guard on it.
    pub fn lock_key(&self, key: &Key) -> KeyHandleGuard {
        self.lock_table.lock().insert(key.clone(), None);
        KeyHandleGuard {
            manager: self.clone(),
            key: key.clone(),
        }
    }

    /// Calls `check` with the in-memory lock of `key`, if one is published.
    ///
    /// # Errors
    /// Whatever `check` returns.
    pub fn read_key_check<E>(
        &self,
        key: &Key,
        check: impl FnOnce(&Lock) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.lock_table.lock().get(key) {
            Some(Some(lock)) => check(lock),
            _ => Ok(()),
        }
    }

    /// Calls `check` with every in-memory lock in `[start, end)` (encoded keys; an empty `end`
    /// is unbounded), in key order, stopping at its first error.
    ///
    /// # Errors
    /// Whatever `check` returns.
    pub fn read_range_check<E>(
        &self,
        start: &Key,
        end: Option<&Key>,
        mut check: impl FnMut(&Key, &Lock) -> Result<(), E>,
    ) -> Result<(), E> {
        let table = self.lock_table.lock();
        for (key, lock) in table.range(start.clone()..) {
            if end.is_some_and(|end| key >= end) {
                break;
            }
            if let Some(lock) = lock {
                check(key, lock)?;
            }
        }
        Ok(())
    }

    /// The number of keys in the lock table (for tests and metrics).
    pub fn lock_table_len(&self) -> usize {
        self.lock_table.lock().len()
    }
}

/// A key registered in the lock table; dropping it removes the key.
pub struct KeyHandleGuard {
    manager: ConcurrencyManager,
    key: Key,
}

impl KeyHandleGuard {
    /// Publishes a lock on the guarded key whose `min_commit_ts` is computed from the current
    /// `max_ts` by `make_lock`, atomically with respect to readers' checks. Returns the lock.
    pub fn publish_lock(&self, make_lock: impl FnOnce(TimeStamp) -> Lock) -> Lock {
        let mut table = self.manager.lock_table.lock();
        let lock = make_lock(self.manager.max_ts());
        table.insert(self.key.clone(), Some(lock.clone()));
        lock
    }
}

impl Drop for KeyHandleGuard {
    fn drop(&mut self) {
        self.manager.lock_table.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use txn_types::LockType;

    use super::*;

    #[test]
    fn max_ts_only_rises_and_ignores_max() {
        let manager = ConcurrencyManager::new(TimeStamp::new(10));
        manager.update_max_ts(TimeStamp::new(5));
        assert_eq!(manager.max_ts(), TimeStamp::new(10));
        manager.update_max_ts(TimeStamp::new(20));
        manager.update_max_ts(TimeStamp::max());
        assert_eq!(manager.max_ts(), TimeStamp::new(20));
    }

    struct Leaders {
        epoch: AtomicU64,
        fetches: AtomicU64,
    }

    impl MaxTsSource for Leaders {
        fn leader_epoch(&self) -> u64 {
            self.epoch.load(Ordering::SeqCst)
        }

        fn fetch_ts(&self) -> BoxFuture<Result<TimeStamp, String>> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(TimeStamp::new(500)) })
        }
    }

    #[test]
    fn a_leader_change_brings_max_ts_past_pd() {
        let leaders = Arc::new(Leaders {
            epoch: AtomicU64::new(3),
            fetches: AtomicU64::new(0),
        });
        let manager = ConcurrencyManager::with_source(TimeStamp::new(10), leaders.clone());
        futures::executor::block_on(manager.ensure_max_ts_synced()).unwrap();
        assert_eq!(manager.max_ts(), TimeStamp::new(10), "no leader change yet");
        leaders.epoch.store(4, Ordering::SeqCst);
        futures::executor::block_on(manager.ensure_max_ts_synced()).unwrap();
        assert_eq!(manager.max_ts(), TimeStamp::new(500));
        futures::executor::block_on(manager.ensure_max_ts_synced()).unwrap();
        assert_eq!(leaders.fetches.load(Ordering::SeqCst), 1, "once per change");
    }

    #[test]
    fn published_locks_are_seen_until_the_guard_drops() {
        let manager = ConcurrencyManager::new(TimeStamp::new(100));
        let key = Key::from_raw(b"k");
        let guard = manager.lock_key(&key);
        // Registered but not yet published: readers pass.
        manager.read_key_check(&key, |_| Err(())).unwrap();
        let lock = guard.publish_lock(|max_ts| {
            Lock::new(LockType::Put, b"k".to_vec(), TimeStamp::new(50), 3000)
                .with_min_commit_ts(max_ts.next())
        });
        assert_eq!(lock.min_commit_ts, TimeStamp::new(101));
        let seen = manager.read_key_check(&key, |lock| Err(lock.min_commit_ts));
        assert_eq!(seen, Err(TimeStamp::new(101)));
        let in_range = manager.read_range_check(&Key::from_raw(b"a"), None, |_, _| Err(()));
        assert!(in_range.is_err());
        let past_end =
            manager.read_range_check(&Key::from_raw(b"a"), Some(&Key::from_raw(b"b")), |_, _| {
                Err(())
            });
        assert!(past_end.is_ok());
        drop(guard);
        assert_eq!(manager.lock_table_len(), 0);
        manager.read_key_check(&key, |_| Err(())).unwrap();
    }
}
