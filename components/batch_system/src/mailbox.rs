//! The mailbox: the sending side of an FSM's channel plus its parking slot.

use std::fmt;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crossbeam::channel::Sender;

use crate::error::{SendError, TrySendError};
use crate::fsm::{Fsm, FsmState};
use crate::scheduler::FsmScheduler;

/// Capacity of a mailbox that never reports `Full`.
const UNBOUNDED: usize = usize::MAX;

/// A mailbox owned by exactly one FSM, which receives everything sent to it.
///
/// Sending queues the message and, if the FSM is idle, hands it to the
/// scheduler so a poller will run it. Clones are cheap handles to the same
/// mailbox: the sender, the state and the capacity live behind one `Arc`, so
/// scheduling an FSM costs one reference-count increment.
pub struct BasicMailbox<N: Fsm> {
    inner: Arc<MailboxInner<N>>,
}

struct MailboxInner<N: Fsm> {
    sender: Sender<N::Message>,
    state: FsmState<N>,
    capacity: usize,
}

impl<N: Fsm> BasicMailbox<N> {
    /// Creates an unbounded mailbox; `fsm` must own the matching receiver.
    pub fn new(sender: Sender<N::Message>, fsm: Box<N>) -> Self {
        Self::with_capacity(sender, fsm, UNBOUNDED)
    }

    /// Creates a mailbox whose `try_send` fails once `capacity` messages wait.
    ///
    /// The bound is loose: racing senders may overshoot it slightly, and
    /// `force_send` ignores it. That keeps the check a single length read.
    pub fn with_capacity(sender: Sender<N::Message>, fsm: Box<N>, capacity: usize) -> Self {
        BasicMailbox {
            inner: Arc::new(MailboxInner {
                sender,
                state: FsmState::new(fsm),
                capacity,
            }),
        }
    }

    /// Returns the number of messages waiting in the mailbox.
    pub fn len(&self) -> usize {
        self.inner.sender.len()
    }

    /// Returns true if no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.inner.sender.is_empty()
    }

    /// Returns true until the mailbox is closed.
    pub fn is_connected(&self) -> bool {
        !self.inner.state.is_closed()
    }

    /// Returns true if both handles refer to the same mailbox.
    pub fn same_mailbox(&self, other: &BasicMailbox<N>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Queues `msg` regardless of capacity and schedules the FSM if idle.
    ///
    /// # Errors
    ///
    /// Returns the message in [`SendError::Disconnected`] if the mailbox is
    /// closed or its FSM (the receiver) is gone.
    pub fn force_send<S: FsmScheduler<Fsm = N>>(
        &self,
        msg: N::Message,
        scheduler: &S,
    ) -> Result<(), SendError<N::Message>> {
        if !self.is_connected() {
            return Err(SendError::Disconnected(msg));
        }
        if let Err(err) = self.inner.sender.send(msg) {
            return Err(SendError::Disconnected(err.into_inner()));
        }
        self.inner.state.notify(scheduler, self);
        Ok(())
    }

    /// Queues `msg` unless the mailbox is full, and schedules the FSM if idle.
    ///
    /// # Errors
    ///
    /// Returns the message in [`TrySendError::Full`] when `capacity`
    /// messages are waiting, or in [`TrySendError::Disconnected`] if the
    /// mailbox is closed or its FSM is gone.
    pub fn try_send<S: FsmScheduler<Fsm = N>>(
        &self,
        msg: N::Message,
        scheduler: &S,
    ) -> Result<(), TrySendError<N::Message>> {
        if self.inner.capacity != UNBOUNDED && self.len() >= self.inner.capacity {
            if !self.is_connected() {
                return Err(TrySendError::Disconnected(msg));
            }
            return Err(TrySendError::Full(msg));
        }
        self.force_send(msg, scheduler).map_err(TrySendError::from)
    }

    /// Closes the mailbox: later sends fail and the FSM is dropped, at once if
    /// idle, otherwise when the poller running it lets go of it.
    pub fn close(&self) {
        self.inner.state.clear();
    }

    /// Parks `fsm` unless more than `progress` messages are waiting, in which
    /// case it is returned so the caller keeps running it.
    ///
    /// `progress` is the number of messages the handler chose to leave
    /// queued; anything beyond that arrived while the FSM ran. Messages can
    /// also arrive between the length check and parking, when senders still
    /// see the FSM as notified and do not schedule it; the re-check after
    /// parking catches those (see the fence in [`FsmState::notify`]).
    pub(crate) fn release_or_keep(&self, fsm: Box<N>, progress: usize) -> Option<Box<N>> {
        if self.len() != progress {
            return Some(fsm);
        }
        self.release_and_recheck(fsm, progress)
    }

    /// The second half of `release_or_keep`, split out so tests can drive
    /// the race where a message lands after the first length check.
    fn release_and_recheck(&self, mut fsm: Box<N>, progress: usize) -> Option<Box<N>> {
        drop(fsm.take_mailbox());
        self.inner.state.release(fsm);
        fence(Ordering::SeqCst);
        if self.len() == progress {
            return None;
        }
        // A message slipped in. Either its sender scheduled the FSM already
        // (take fails and the FSM is someone else's now) or we take it back.
        let mut fsm = self.inner.state.take_fsm()?;
        fsm.set_mailbox(self);
        Some(fsm)
    }

    /// Parks `fsm` without looking at the mailbox; used when the batch
    /// system stops or cannot schedule, so nobody would run it anyway.
    pub(crate) fn park(&self, mut fsm: Box<N>) {
        drop(fsm.take_mailbox());
        self.inner.state.release(fsm);
    }
}

impl<N: Fsm> Clone for BasicMailbox<N> {
    fn clone(&self) -> Self {
        BasicMailbox {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<N: Fsm> fmt::Debug for BasicMailbox<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicMailbox")
            .field("len", &self.len())
            .field("connected", &self.is_connected())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::thread;
    use std::time::Duration;

    use crossbeam::channel::{self, Receiver};

    use super::*;

    struct Counter {
        receiver: Receiver<u64>,
        sum: u64,
    }

    impl Fsm for Counter {
        type Message = u64;

        fn is_stopped(&self) -> bool {
            false
        }
    }

    /// Records scheduled FSMs instead of running them.
    #[derive(Default)]
    struct Recorder {
        // Kept boxed: the batch system hands FSMs back to mailboxes as boxes.
        #[allow(clippy::vec_box)]
        scheduled: Mutex<Vec<Box<Counter>>>,
    }

    impl FsmScheduler for Recorder {
        type Fsm = Counter;

        fn schedule(&self, fsm: Box<Counter>, _mailbox: &BasicMailbox<Counter>) {
            self.scheduled.lock().expect("recorder lock").push(fsm);
        }
    }

    fn counter_mailbox(capacity: usize) -> BasicMailbox<Counter> {
        let (sender, receiver) = channel::unbounded();
        let fsm = Box::new(Counter { receiver, sum: 0 });
        BasicMailbox::with_capacity(sender, fsm, capacity)
    }

    #[test]
    fn idle_fsm_is_scheduled_once_per_wakeup() {
        let mailbox = counter_mailbox(UNBOUNDED);
        let recorder = Recorder::default();
        for msg in 0..3 {
            mailbox.force_send(msg, &recorder).expect("open mailbox");
        }
        let fsm = {
            let mut scheduled = recorder.scheduled.lock().expect("recorder lock");
            assert_eq!(scheduled.len(), 1, "three sends, one schedule");
            scheduled.pop().expect("one fsm")
        };
        // Leaving all three queued (progress 3) parks it; a fourth wakes it.
        assert!(mailbox.release_or_keep(fsm, 3).is_none());
        mailbox.force_send(3, &recorder).expect("open mailbox");
        assert_eq!(recorder.scheduled.lock().expect("recorder lock").len(), 1);
    }

    #[test]
    fn release_keeps_fsm_with_unread_messages() {
        let mailbox = counter_mailbox(UNBOUNDED);
        let recorder = Recorder::default();
        mailbox.force_send(7, &recorder).expect("open mailbox");
        let fsm = recorder.scheduled.lock().expect("lock").pop().expect("fsm");
        let fsm = mailbox
            .release_or_keep(fsm, 0)
            .expect("one unread message keeps it");
        assert_eq!(fsm.receiver.try_recv(), Ok(7));
        assert!(mailbox.release_or_keep(fsm, 0).is_none());
    }

    #[test]
    fn message_landing_after_length_check_is_not_lost() {
        let mailbox = counter_mailbox(UNBOUNDED);
        let recorder = Recorder::default();
        mailbox.force_send(1, &recorder).expect("open mailbox");
        let fsm = recorder.scheduled.lock().expect("lock").pop().expect("fsm");
        // The handler saw one message and chose to leave it (progress 1);
        // then a second one lands while the FSM is still notified, so its
        // sender does not schedule it.
        mailbox.force_send(2, &recorder).expect("open mailbox");
        assert!(recorder.scheduled.lock().expect("lock").is_empty());
        let fsm = mailbox
            .release_and_recheck(fsm, 1)
            .expect("the re-check takes the fsm back");
        assert_eq!(fsm.receiver.len(), 2);
        assert!(mailbox.release_or_keep(fsm, 2).is_none());
    }

    #[test]
    fn full_and_closed_mailboxes_return_the_message() {
        let mailbox = counter_mailbox(2);
        let recorder = Recorder::default();
        mailbox.try_send(1, &recorder).expect("room for one");
        mailbox.try_send(2, &recorder).expect("room for two");
        assert_eq!(mailbox.try_send(3, &recorder), Err(TrySendError::Full(3)));
        mailbox
            .force_send(4, &recorder)
            .expect("force ignores capacity");
        mailbox.close();
        assert!(!mailbox.is_connected());
        assert_eq!(
            mailbox.try_send(5, &recorder),
            Err(TrySendError::Disconnected(5))
        );
        assert_eq!(
            mailbox.force_send(6, &recorder),
            Err(SendError::Disconnected(6))
        );
    }

    /// Keeps its own mailbox while scheduled, as a raftstore peer does.
    struct SelfSender {
        mailbox: Option<BasicMailbox<SelfSender>>,
        dropped: Arc<Mutex<bool>>,
    }

    impl Fsm for SelfSender {
        type Message = ();

        fn is_stopped(&self) -> bool {
            false
        }

        fn set_mailbox(&mut self, mailbox: &BasicMailbox<Self>) {
            self.mailbox = Some(mailbox.clone());
        }

        fn take_mailbox(&mut self) -> Option<BasicMailbox<Self>> {
            self.mailbox.take()
        }
    }

    impl Drop for SelfSender {
        fn drop(&mut self) {
            *self.dropped.lock().expect("flag lock") = true;
        }
    }

    #[test]
    fn own_mailbox_is_lent_while_scheduled_and_taken_back_when_parked() {
        struct Keep(Mutex<Option<Box<SelfSender>>>);
        impl FsmScheduler for Keep {
            type Fsm = SelfSender;
            fn schedule(&self, fsm: Box<SelfSender>, _mailbox: &BasicMailbox<SelfSender>) {
                *self.0.lock().expect("keep lock") = Some(fsm);
            }
        }
        let dropped = Arc::new(Mutex::new(false));
        let (sender, _receiver) = channel::unbounded();
        let fsm = Box::new(SelfSender {
            mailbox: None,
            dropped: Arc::clone(&dropped),
        });
        let mailbox = BasicMailbox::new(sender, fsm);
        let keep = Keep(Mutex::new(None));
        mailbox.force_send((), &keep).expect("open mailbox");
        let fsm = keep.0.lock().expect("keep lock").take().expect("scheduled");
        let own = fsm.mailbox.as_ref().expect("mailbox lent on schedule");
        assert!(own.same_mailbox(&mailbox));
        // Progress 1: leave the message queued and park it.
        assert!(mailbox.release_or_keep(fsm, 1).is_none());
        // Had the parked FSM kept its mailbox, this would leak it.
        drop(mailbox);
        assert!(*dropped.lock().expect("flag lock"));
    }

    /// A poller thread drains and releases while senders race it; if a
    /// wakeup were lost the poller would stop seeing the FSM and time out.
    #[test]
    fn no_lost_wakeup_under_racing_senders() {
        const SENDERS: u64 = 4;
        const PER_SENDER: u64 = 20_000;
        let (sched_tx, sched_rx) = channel::unbounded::<Box<Counter>>();
        struct Forward(channel::Sender<Box<Counter>>);
        impl FsmScheduler for Forward {
            type Fsm = Counter;
            fn schedule(&self, fsm: Box<Counter>, _mailbox: &BasicMailbox<Counter>) {
                self.0.send(fsm).expect("poller alive");
            }
        }
        let mailbox = counter_mailbox(UNBOUNDED);
        let poller = {
            let mailbox = mailbox.clone();
            thread::spawn(move || {
                let expected = SENDERS * PER_SENDER;
                let mut received = 0;
                while received < expected {
                    let mut fsm = sched_rx
                        .recv_timeout(Duration::from_secs(30))
                        .expect("a queued message always gets its fsm scheduled");
                    loop {
                        while let Ok(value) = fsm.receiver.try_recv() {
                            fsm.sum += value;
                            received += 1;
                        }
                        match mailbox.release_or_keep(fsm, 0) {
                            Some(kept) => fsm = kept,
                            None => break,
                        }
                    }
                }
                received
            })
        };
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let (mailbox, scheduler) = (mailbox.clone(), Forward(sched_tx.clone()));
                thread::spawn(move || {
                    for value in 0..PER_SENDER {
                        mailbox.force_send(value, &scheduler).expect("open");
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().expect("sender thread");
        }
        assert_eq!(poller.join().expect("poller thread"), SENDERS * PER_SENDER);
    }
}
