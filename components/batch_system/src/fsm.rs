//! The state machine trait and the slot that parks an idle FSM.
//!
//! An FSM is always in exactly one of two places: parked in its
//! [`FsmState`] (idle, waiting for mail) or owned by the batch system (queued
//! in the scheduler channel or held in a poller's batch). Whoever moves it
//! from the slot to the scheduler is decided by one compare-and-swap, which
//! is what guarantees an FSM is scheduled once and run by one poller at a
//! time.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};

use crate::mailbox::BasicMailbox;
use crate::scheduler::FsmScheduler;

/// A finite state machine driven by the batch system.
///
/// The FSM owns the receiving end of its mailbox channel; the batch system
/// only decides *when* it runs. `Sized` because FSMs travel as `Box<Self>`.
pub trait Fsm: Send + Sized + 'static {
    /// The message type its mailbox carries.
    type Message: Send + 'static;

    /// Returns true once the FSM wants to be removed from the system.
    ///
    /// A stopped FSM's mailbox is closed by the poller; the FSM is dropped
    /// as soon as its mailbox is empty.
    fn is_stopped(&self) -> bool;

    /// Hands the FSM its own mailbox whenever it is scheduled, so that it can
    /// send to itself while it runs. The default ignores it.
    fn set_mailbox(&mut self, _mailbox: &BasicMailbox<Self>) {}

    /// Takes back the mailbox given by [`Fsm::set_mailbox`].
    ///
    /// Called before the FSM is parked: an idle FSM holding its own mailbox
    /// would form a reference cycle through its [`FsmState`] and leak.
    fn take_mailbox(&mut self) -> Option<BasicMailbox<Self>> {
        None
    }
}

/// The FSM is parked in `data` and will be scheduled by the next message.
const IDLE: usize = 0;
/// The FSM is owned by the batch system; senders need not schedule it.
const NOTIFIED: usize = 1;
/// The mailbox is closed; the FSM is dropped instead of parked.
const DROP: usize = 2;

/// The atomic slot that holds an idle FSM.
///
/// Invariants:
/// * `data` only ever holds null or a pointer produced by `Box::into_raw`.
/// * `data` is only read by `swap`, so each non-null pointer is taken out by
///   exactly one thread, which then owns the box exclusively. Memory safety
///   rests on this alone; `status` merely decides who should take it.
/// * Outside the short windows inside these methods, `data` is non-null
///   exactly when `status` is `IDLE`.
pub struct FsmState<N> {
    status: AtomicUsize,
    data: AtomicPtr<N>,
    // Tells the drop checker that the state owns a `Box<N>`.
    _owns: PhantomData<Box<N>>,
}

// SAFETY: the state moves a `Box<N>` between threads but never hands out a
// shared `&N`, so, as with `Mutex<N>`, `N: Send` is enough for both.
unsafe impl<N: Send> Send for FsmState<N> {}
// SAFETY: see the `Send` impl above; all shared access goes through atomics.
unsafe impl<N: Send> Sync for FsmState<N> {}

impl<N> FsmState<N> {
    /// Creates a state with `fsm` parked and idle.
    pub fn new(fsm: Box<N>) -> Self {
        FsmState {
            status: AtomicUsize::new(IDLE),
            data: AtomicPtr::new(Box::into_raw(fsm)),
            _owns: PhantomData,
        }
    }

    /// Returns true once [`FsmState::clear`] has closed the state.
    pub fn is_closed(&self) -> bool {
        self.status.load(Ordering::Acquire) == DROP
    }

    /// Takes the parked FSM if it is idle, marking it notified.
    ///
    /// Returns `None` when the FSM is already owned by the batch system or
    /// the state is closed.
    pub fn take_fsm(&self) -> Option<Box<N>> {
        // A plain load first keeps busy FSMs cheap: many senders notifying a
        // running FSM only read the cache line instead of fighting over it.
        if self.status.load(Ordering::Relaxed) != IDLE {
            return None;
        }
        if self
            .status
            .compare_exchange(IDLE, NOTIFIED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return None;
        }
        let ptr = self.data.swap(ptr::null_mut(), Ordering::AcqRel);
        // Winning the CAS from IDLE means the FSM was parked: `release` stores
        // the pointer before it publishes IDLE.
        assert!(!ptr.is_null(), "fsm state is idle but holds no fsm");
        // SAFETY: `ptr` came from `Box::into_raw` and the swap moved it out of
        // the slot, so no other thread can reach it.
        Some(unsafe { Box::from_raw(ptr) })
    }

    /// Parks `fsm` and marks it idle, or drops it if the state is closed.
    ///
    /// The caller must own the FSM through a prior [`FsmState::take_fsm`]
    /// (or a scheduled `notify`). This alone does not catch messages that
    /// arrived while the FSM was notified; the batch system re-checks the
    /// mailbox after releasing (see `BasicMailbox::release_or_keep`).
    ///
    /// # Panics
    ///
    /// Panics if an FSM is already parked, i.e. on a double release.
    pub fn release(&self, fsm: Box<N>) {
        let previous = self.data.swap(Box::into_raw(fsm), Ordering::AcqRel);
        if !previous.is_null() {
            // SAFETY: the swap moved `previous` out of the slot, so this thread
            // owns it; freeing it keeps the misuse a leak-free panic.
            drop(unsafe { Box::from_raw(previous) });
            panic!("fsm released while another fsm is parked");
        }
        match self
            .status
            .compare_exchange(NOTIFIED, IDLE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {}
            Err(DROP) => {
                // Closed while we owned the FSM: `clear` saw NOTIFIED and left
                // the dropping to us.
                let ptr = self.data.swap(ptr::null_mut(), Ordering::AcqRel);
                if !ptr.is_null() {
                    // SAFETY: moved out of the slot by the swap above.
                    drop(unsafe { Box::from_raw(ptr) });
                }
            }
            Err(status) => panic!("fsm released in unexpected status {status}"),
        }
    }

    /// Closes the state and drops the FSM if it is parked.
    ///
    /// A notified FSM is dropped later by whoever releases it.
    pub fn clear(&self) {
        match self.status.swap(DROP, Ordering::AcqRel) {
            NOTIFIED | DROP => return,
            _ => {}
        }
        let ptr = self.data.swap(ptr::null_mut(), Ordering::AcqRel);
        if !ptr.is_null() {
            // SAFETY: moved out of the slot by the swap above.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

impl<N: Fsm> FsmState<N> {
    /// Schedules the FSM if it is idle; called after a message was queued.
    ///
    /// Exactly one of any number of concurrent notifiers wins the FSM. The
    /// others return at once: the winner, or the poller already running the
    /// FSM, will see their messages.
    pub fn notify<S: FsmScheduler<Fsm = N>>(&self, scheduler: &S, mailbox: &BasicMailbox<N>) {
        // Pairs with the fence in `BasicMailbox::release_or_keep`. The sender
        // queued its message (a store to the channel) and now reads the
        // status; the poller stored IDLE and then reads the channel length.
        // With a SeqCst fence between store and load on both sides, at least
        // one of them sees the other's store, so a message can never sit in a
        // mailbox whose FSM is idle and unscheduled.
        fence(Ordering::SeqCst);
        if let Some(mut fsm) = self.take_fsm() {
            fsm.set_mailbox(mailbox);
            scheduler.schedule(fsm, mailbox);
        }
    }
}

impl<N> Drop for FsmState<N> {
    fn drop(&mut self) {
        let ptr = *self.data.get_mut();
        if !ptr.is_null() {
            // SAFETY: `&mut self` means no other thread can touch the slot,
            // and the pointer came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::thread;

    use super::*;

    /// Counts drops and flags concurrent ownership.
    struct Probe {
        drops: Arc<AtomicUsize>,
        in_use: AtomicBool,
    }

    impl Probe {
        fn boxed(drops: &Arc<AtomicUsize>) -> Box<Probe> {
            Box::new(Probe {
                drops: Arc::clone(drops),
                in_use: AtomicBool::new(false),
            })
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn take_then_release_round_trips() {
        let drops = Arc::new(AtomicUsize::new(0));
        let state = FsmState::new(Probe::boxed(&drops));
        let fsm = state.take_fsm().expect("new state is idle");
        assert!(state.take_fsm().is_none(), "second take must fail");
        state.release(fsm);
        let fsm = state.take_fsm().expect("released state is idle again");
        state.release(fsm);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(state);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "drop frees a parked fsm");
    }

    #[test]
    fn clear_drops_idle_fsm_at_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let state = FsmState::new(Probe::boxed(&drops));
        state.clear();
        assert!(state.is_closed());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(state.take_fsm().is_none());
        drop(state);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "no double free");
    }

    #[test]
    fn clear_while_notified_drops_on_release() {
        let drops = Arc::new(AtomicUsize::new(0));
        let state = FsmState::new(Probe::boxed(&drops));
        let fsm = state.take_fsm().expect("new state is idle");
        state.clear();
        assert_eq!(drops.load(Ordering::SeqCst), 0, "owner still runs it");
        state.release(fsm);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(state.take_fsm().is_none());
        drop(state);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    #[should_panic(expected = "another fsm is parked")]
    fn double_release_panics() {
        let drops = Arc::new(AtomicUsize::new(0));
        let state = FsmState::new(Probe::boxed(&drops));
        state.release(Probe::boxed(&drops));
    }

    /// Many threads race to take and release one FSM, with a closer racing
    /// at the end; the FSM must never be owned twice and be freed once.
    #[test]
    fn racing_takers_own_the_fsm_exclusively() {
        const THREADS: usize = 8;
        const ROUNDS: usize = 20_000;
        let drops = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let takes = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(FsmState::new(Probe::boxed(&drops)));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (state, overlaps) = (state.clone(), overlaps.clone());
                let (takes, finished) = (takes.clone(), finished.clone());
                thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        if let Some(fsm) = state.take_fsm() {
                            if fsm.in_use.swap(true, Ordering::SeqCst) {
                                overlaps.fetch_add(1, Ordering::SeqCst);
                            }
                            takes.fetch_add(1, Ordering::Relaxed);
                            fsm.in_use.store(false, Ordering::SeqCst);
                            state.release(fsm);
                        }
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let closer = {
            let state = state.clone();
            thread::spawn(move || {
                // Close mid-race, or at the latest once every taker is done.
                while takes.load(Ordering::Relaxed) < ROUNDS / 10
                    && finished.load(Ordering::SeqCst) < THREADS
                {
                    thread::yield_now();
                }
                state.clear();
            })
        };
        for worker in workers {
            worker.join().expect("taker thread");
        }
        closer.join().expect("closer thread");
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "cleared exactly once");
        drop(state);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
