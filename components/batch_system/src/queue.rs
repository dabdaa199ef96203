//! The pollers' queue of ready FSMs: a crossbeam channel for the items and a sleep of its own
//! for pollers with nothing to do.
//!
//! crossbeam's blocking `recv` spins, then calls `sched_yield` a few times, before it parks.
//! Where busy threads outnumber the cores (two cores running raft pollers, apply pollers, gRPC
//! and raft-engine writers), every yield is a context switch: profiles of the put load found
//! 8% of the stores' CPU in the pollers' yields on their way to sleep. A poller here parks at
//! once on a condition variable, and a sender takes its lock only when some poller sleeps.

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam::channel::{self, Receiver, Sender, TryIter, TryRecvError};
use parking_lot::{Condvar, Mutex};

/// Pollers asleep and senders alive, shared by both ends.
#[derive(Default)]
struct Sleep {
    sleepers: AtomicUsize,
    senders: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// A queue with its first sender and receiver.
pub(crate) fn unbounded<T>() -> (QueueSender<T>, QueueReceiver<T>) {
    let (sender, receiver) = channel::unbounded();
    let sleep = Arc::new(Sleep {
        senders: AtomicUsize::new(1),
        ..Sleep::default()
    });
    (
        QueueSender {
            sender,
            sleep: sleep.clone(),
        },
        QueueReceiver { receiver, sleep },
    )
}

pub(crate) struct QueueSender<T> {
    sender: Sender<T>,
    sleep: Arc<Sleep>,
}

impl<T> QueueSender<T> {
    /// Queues `item`, waking a sleeping receiver if there is one.
    ///
    /// # Errors
    ///
    /// The item back when every receiver is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        self.sender.send(item).map_err(|e| e.into_inner())?;
        // Pairs with the fence in `recv`: either the sleeper's re-check sees the item, or
        // this load sees the sleeper.
        fence(Ordering::SeqCst);
        if self.sleep.sleepers.load(Ordering::Relaxed) > 0 {
            // Taken so that the notification cannot fall between a sleeper's re-check and
            // its wait, which happen under the lock.
            let _guard = self.sleep.lock.lock();
            self.sleep.wake.notify_one();
        }
        Ok(())
    }
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        self.sleep.senders.fetch_add(1, Ordering::Relaxed);
        QueueSender {
            sender: self.sender.clone(),
            sleep: self.sleep.clone(),
        }
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        if self.sleep.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last sender: sleepers must see the queue disconnected.
            let _guard = self.sleep.lock.lock();
            self.sleep.wake.notify_all();
        }
    }
}

pub(crate) struct QueueReceiver<T> {
    receiver: Receiver<T>,
    sleep: Arc<Sleep>,
}

impl<T> Clone for QueueReceiver<T> {
    fn clone(&self) -> Self {
        QueueReceiver {
            receiver: self.receiver.clone(),
            sleep: self.sleep.clone(),
        }
    }
}

/// Every sender is gone and the queue is empty.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Disconnected;

impl<T> QueueReceiver<T> {
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        self.receiver.try_recv()
    }

    /// Items queued now.
    pub(crate) fn len(&self) -> usize {
        self.receiver.len()
    }

    pub(crate) fn try_iter(&self) -> TryIter<'_, T> {
        self.receiver.try_iter()
    }

    /// The next item, sleeping without spinning until one is queued.
    ///
    /// # Errors
    ///
    /// [`Disconnected`] once every sender is gone and nothing is left.
    pub(crate) fn recv(&self) -> Result<T, Disconnected> {
        loop {
            if let Some(result) = self.poll() {
                return result;
            }
            let mut guard = self.sleep.lock.lock();
            self.sleep.sleepers.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let ready = self.poll();
            if ready.is_none() {
                self.sleep.wake.wait(&mut guard);
            }
            self.sleep.sleepers.fetch_sub(1, Ordering::Relaxed);
            if let Some(result) = ready {
                return result;
            }
        }
    }

    /// An item, the end of the queue, or `None` while it is merely empty.
    fn poll(&self) -> Option<Result<T, Disconnected>> {
        match self.receiver.try_recv() {
            Ok(item) => Some(Ok(item)),
            Err(TryRecvError::Disconnected) => Some(Err(Disconnected)),
            Err(TryRecvError::Empty) if self.sleep.senders.load(Ordering::Acquire) == 0 => {
                // The last sender announced its end before dropping its channel half.
                Some(self.receiver.try_recv().map_err(|_| Disconnected))
            }
            Err(TryRecvError::Empty) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Duration;

    use super::*;

    /// Runs `f` on a thread; fails if it does not finish in 60 s (a lost wake-up hangs).
    fn finishes(f: impl FnOnce() + Send + 'static) {
        let (done, finished) = channel::bounded(1);
        thread::spawn(move || {
            f();
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("a receiver slept through a send");
    }

    #[test]
    fn a_sleeping_receiver_wakes_for_an_item() {
        finishes(|| {
            let (sender, receiver) = unbounded();
            let waiter = thread::spawn(move || receiver.recv());
            thread::sleep(Duration::from_millis(50));
            sender.send(7).unwrap();
            assert_eq!(waiter.join().unwrap(), Ok(7));
        });
    }

    /// Two threads hand a token back and forth through two queues, each sleeping between its
    /// turns: any wake-up lost between a re-check and a wait stops the game.
    #[test]
    fn no_wake_up_is_lost() {
        finishes(|| {
            let (ping, pinged) = unbounded::<u32>();
            let (pong, ponged) = unbounded::<u32>();
            let other = thread::spawn(move || {
                while let Ok(n) = pinged.recv() {
                    if pong.send(n + 1).is_err() {
                        break;
                    }
                }
            });
            let mut n = 0;
            for _ in 0..20_000 {
                ping.send(n).unwrap();
                n = ponged.recv().unwrap();
            }
            assert_eq!(n, 20_000);
            drop(ping);
            other.join().unwrap();
        });
    }

    #[test]
    fn many_senders_reach_sleeping_receivers() {
        finishes(|| {
            let (sender, receiver) = unbounded::<u64>();
            let receivers: Vec<_> = (0..3)
                .map(|_| {
                    let receiver = receiver.clone();
                    thread::spawn(move || {
                        let mut sum = 0;
                        while let Ok(n) = receiver.recv() {
                            sum += n;
                        }
                        sum
                    })
                })
                .collect();
            let senders: Vec<_> = (0..4)
                .map(|_| {
                    let sender = sender.clone();
                    thread::spawn(move || {
                        for n in 1..=10_000 {
                            sender.send(n).unwrap();
                            if n % 1000 == 0 {
                                thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            for s in senders {
                s.join().unwrap();
            }
            drop(sender);
            let total: u64 = receivers.into_iter().map(|r| r.join().unwrap()).sum();
            assert_eq!(total, 4 * 10_000 * 10_001 / 2);
        });
    }

    #[test]
    fn the_last_sender_ends_a_sleep() {
        finishes(|| {
            let (sender, receiver) = unbounded::<u8>();
            let waiter = thread::spawn(move || receiver.recv());
            thread::sleep(Duration::from_millis(50));
            drop(sender);
            assert_eq!(waiter.join().unwrap(), Err(Disconnected));
        });
    }
}
