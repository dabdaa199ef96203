//! The queues of pessimistic lock requests parked on a lock, per key (TiKV's waiter manager).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use parking_lot::Mutex;
use txn_types::TimeStamp;

/// Why a parked request may run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeUp {
    /// Wait this long before retrying: zero for the first waiter of a released lock, the
    /// wake-up delay for the others, so that the first gets the lock.
    pub after: Duration,
}

struct Queued {
    id: u64,
    start_ts: TimeStamp,
    sender: oneshot::Sender<WakeUp>,
}

/// Parked requests by the encoded key they wait on.
#[derive(Default)]
pub(crate) struct WaitQueues {
    queues: Mutex<HashMap<Vec<u8>, Vec<Queued>>>,
    /// Requests parked now, so that releasing a lock nobody waits for (nearly every commit)
    /// does not take the queues' mutex. A request is parked, and its key's waiters woken,
    /// under the key's latch, so a release never misses a count for its own key.
    parked: AtomicUsize,
    next_id: AtomicU64,
}

impl WaitQueues {
    /// Parks a request of `start_ts` on `key` until [`WaitQueues::wake`] of that key.
    pub(crate) fn push(self: &Arc<Self>, key: Vec<u8>, start_ts: TimeStamp) -> Parked {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.parked.fetch_add(1, Ordering::SeqCst);
        self.queues
            .lock()
            .entry(key.clone())
            .or_default()
            .push(Queued {
                id,
                start_ts,
                sender,
            });
        Parked {
            queues: self.clone(),
            key,
            id,
            receiver,
        }
    }

    /// Wakes every request parked on `key`: the oldest transaction at once, the others after
    /// `delay`. Returns how many were woken.
    pub(crate) fn wake(&self, key: &[u8], delay: Duration) -> usize {
        if self.parked.load(Ordering::SeqCst) == 0 {
            return 0;
        }
        let Some(mut waiters) = self.queues.lock().remove(key) else {
            return 0;
        };
        self.parked.fetch_sub(waiters.len(), Ordering::SeqCst);
        waiters.sort_by_key(|w| w.start_ts);
        let count = waiters.len();
        for (i, waiter) in waiters.into_iter().enumerate() {
            let after = match i {
                0 => Duration::ZERO,
                _ => delay,
            };
            // A waiter that gave up meanwhile dropped its receiver.
            let _ = waiter.sender.send(WakeUp { after });
        }
        count
    }

    /// Requests parked now.
    pub(crate) fn len(&self) -> usize {
        self.parked.load(Ordering::SeqCst)
    }

    fn remove(&self, key: &[u8], id: u64) {
        let mut queues = self.queues.lock();
        if let Some(waiters) = queues.get_mut(key) {
            let before = waiters.len();
            waiters.retain(|w| w.id != id);
            self.parked
                .fetch_sub(before - waiters.len(), Ordering::SeqCst);
            if waiters.is_empty() {
                queues.remove(key);
            }
        }
    }
}

/// A parked request; leaves its queue when dropped.
pub(crate) struct Parked {
    queues: Arc<WaitQueues>,
    key: Vec<u8>,
    id: u64,
    receiver: oneshot::Receiver<WakeUp>,
}

impl Parked {
    /// Waits for the wake-up, or `None` once `timeout` passes.
    pub(crate) async fn wait(&mut self, timeout: Duration) -> Option<WakeUp> {
        match tokio::time::timeout(timeout, &mut self.receiver).await {
            Ok(Ok(wake_up)) => Some(wake_up),
            // The sender is dropped only after sending, or with the queues.
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.queues.remove(&self.key, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_waiter_wakes_first_and_the_others_after_the_delay() {
        let queues = Arc::new(WaitQueues::default());
        let mut young = queues.push(b"k".to_vec(), 20.into());
        let mut old = queues.push(b"k".to_vec(), 10.into());
        let mut other_key = queues.push(b"j".to_vec(), 5.into());
        assert_eq!(queues.len(), 3);
        let delay = Duration::from_millis(20);
        assert_eq!(queues.wake(b"k", delay), 2);
        let first = old.wait(Duration::from_secs(1)).await.unwrap();
        assert_eq!(first.after, Duration::ZERO);
        assert_eq!(
            young.wait(Duration::from_secs(1)).await.unwrap().after,
            delay
        );
        assert_eq!(other_key.wait(Duration::from_millis(10)).await, None);
        drop(other_key);
        assert_eq!(queues.len(), 0);
    }
}
