//! Pessimistic lock waiting and deadlock detection (TiKV's lock manager).
//!
//! A pessimistic lock request that meets another transaction's lock does not bounce back to
//! the client: the scheduler parks it on the key, still holding the key's latch so that the
//! lock's release cannot slip in unseen, and reports the wait to the [`DeadlockDetector`].
//! The command that releases the lock (commit, rollback, pessimistic rollback, resolve, a
//! 1PC commit) wakes the key's waiters once its write is applied: the oldest transaction at
//! once, the others `wake-up-delay-duration` later, and each runs its request again. A wait
//! that would close a cycle answers `Deadlock` at once; one that outlasts its timeout answers
//! the lock, as before, for the client to resolve.

pub mod deadlock;
mod waiter;

use std::sync::Arc;
use std::time::Duration;

use txn_types::{Key, TimeStamp};

pub use deadlock::{key_hash, DeadlockCallback, DeadlockDetector, LocalDetector, WaitForGraph};
pub(crate) use waiter::Parked;
use waiter::WaitQueues;
pub use waiter::WakeUp;

/// TiKV's default `wait-for-lock-timeout`: 1 s.
pub const DEFAULT_WAIT_FOR_LOCK_TIMEOUT: Duration = Duration::from_secs(1);
/// TiKV's default `wake-up-delay-duration`: 20 ms.
pub const DEFAULT_WAKE_UP_DELAY: Duration = Duration::from_millis(20);

/// Settings of lock waiting (`[pessimistic-txn]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockWaitConfig {
    /// The longest a request waits for a lock; also the ceiling of a request's own
    /// `wait_timeout`. Default 1 s.
    pub wait_for_lock_timeout: Duration,
    /// How long the other waiters of a released lock wait after the first is woken, so that
    /// the first gets the lock. Default 20 ms.
    pub wake_up_delay_duration: Duration,
}

impl Default for LockWaitConfig {
    fn default() -> Self {
        LockWaitConfig {
            wait_for_lock_timeout: DEFAULT_WAIT_FOR_LOCK_TIMEOUT,
            wake_up_delay_duration: DEFAULT_WAKE_UP_DELAY,
        }
    }
}

/// The store's parked requests and its way to the deadlock detector. Cheap to clone.
#[derive(Clone)]
pub struct LockManager {
    queues: Arc<WaitQueues>,
    detector: Arc<dyn DeadlockDetector>,
    config: LockWaitConfig,
}

impl LockManager {
    pub fn new(config: LockWaitConfig, detector: Arc<dyn DeadlockDetector>) -> Self {
        LockManager {
            queues: Arc::default(),
            detector,
            config,
        }
    }

    /// A lock manager that detects deadlocks among this process's waits only (one store).
    pub fn local(config: LockWaitConfig) -> Self {
        let detector = LocalDetector::new(config.wait_for_lock_timeout);
        Self::new(config, Arc::new(detector))
    }

    pub fn config(&self) -> &LockWaitConfig {
        &self.config
    }

    /// How long a request sent with `wait_timeout` (milliseconds, TiKV's encoding) may wait:
    /// negative is not at all, zero the configured timeout, positive at most that.
    pub fn wait_timeout(&self, wait_timeout: i64) -> Option<Duration> {
        let ceiling = self.config.wait_for_lock_timeout;
        match wait_timeout {
            n if n < 0 => None,
            0 => Some(ceiling),
            n => Some(Duration::from_millis(n as u64).min(ceiling)),
        }
    }

    /// Requests parked now.
    pub fn waiting(&self) -> usize {
        self.queues.len()
    }

    pub(crate) fn detector(&self) -> &dyn DeadlockDetector {
        self.detector.as_ref()
    }

    /// Parks a request of `start_ts` on `key`. Call it while holding the key's latch.
    pub(crate) fn park(&self, key: &Key, start_ts: TimeStamp) -> Parked {
        self.queues.push(key.as_encoded().to_vec(), start_ts)
    }

    /// Wakes the requests parked on `keys`, whose locks a write just released.
    pub(crate) fn wake_up(&self, keys: &[Key]) {
        for key in keys {
            self.queues
                .wake(key.as_encoded(), self.config.wake_up_delay_duration);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_waits_at_most_the_configured_timeout() {
        let manager = LockManager::local(LockWaitConfig::default());
        assert_eq!(manager.wait_timeout(-1), None);
        assert_eq!(manager.wait_timeout(0), Some(Duration::from_secs(1)));
        assert_eq!(manager.wait_timeout(300), Some(Duration::from_millis(300)));
        assert_eq!(manager.wait_timeout(5000), Some(Duration::from_secs(1)));
    }
}
