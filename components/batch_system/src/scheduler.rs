//! Schedulers: how a woken FSM reaches the pollers.
//!
//! Normal and control FSMs share one FIFO channel, so a poller blocks on a
//! single receiver and a rescheduled hot FSM queues behind everything that
//! was already waiting.

use crossbeam::channel::Sender;
use tracing::debug;

use crate::fsm::Fsm;
use crate::mailbox::BasicMailbox;

/// Hands FSMs that have mail to whoever will run them.
pub trait FsmScheduler {
    /// The kind of FSM this scheduler queues.
    type Fsm: Fsm;

    /// Queues `fsm`, which a notify just took out of `mailbox`'s idle slot.
    fn schedule(&self, fsm: Box<Self::Fsm>, mailbox: &BasicMailbox<Self::Fsm>);
}

/// An item in the pollers' channel.
pub(crate) enum FsmTypes<N: Fsm, C: Fsm> {
    /// A normal FSM with the mailbox it must be released to.
    Normal {
        fsm: Box<N>,
        mailbox: BasicMailbox<N>,
    },
    /// The control FSM; its mailbox is the router's control box.
    Control(Box<C>),
    /// Wakes one blocked poller so it notices the shutdown.
    Empty,
}

/// Queues normal FSMs for the pollers.
pub struct NormalScheduler<N: Fsm, C: Fsm> {
    sender: Sender<FsmTypes<N, C>>,
}

impl<N: Fsm, C: Fsm> NormalScheduler<N, C> {
    pub(crate) fn new(sender: Sender<FsmTypes<N, C>>) -> Self {
        NormalScheduler { sender }
    }

    /// Puts a hot FSM back at the tail of the channel. It stays notified:
    /// the batch system still owns it, it just waits its turn.
    pub(crate) fn reschedule(&self, fsm: Box<N>, mailbox: BasicMailbox<N>) {
        if let Err(err) = self.sender.send(FsmTypes::Normal { fsm, mailbox }) {
            park_unscheduled(err.into_inner());
        }
    }

    /// Sends one wake-up per poller so blocked pollers see the shutdown.
    pub(crate) fn wake_pollers(&self, count: usize) {
        for _ in 0..count {
            // Failure means no poller is left to wake.
            let _ = self.sender.send(FsmTypes::Empty);
        }
    }
}

impl<N: Fsm, C: Fsm> FsmScheduler for NormalScheduler<N, C> {
    type Fsm = N;

    fn schedule(&self, fsm: Box<N>, mailbox: &BasicMailbox<N>) {
        let item = FsmTypes::Normal {
            fsm,
            mailbox: mailbox.clone(),
        };
        if let Err(err) = self.sender.send(item) {
            park_unscheduled(err.into_inner());
        }
    }
}

impl<N: Fsm, C: Fsm> Clone for NormalScheduler<N, C> {
    fn clone(&self) -> Self {
        NormalScheduler {
            sender: self.sender.clone(),
        }
    }
}

/// Queues the control FSM for the pollers.
pub struct ControlScheduler<N: Fsm, C: Fsm> {
    sender: Sender<FsmTypes<N, C>>,
}

impl<N: Fsm, C: Fsm> ControlScheduler<N, C> {
    pub(crate) fn new(sender: Sender<FsmTypes<N, C>>) -> Self {
        ControlScheduler { sender }
    }
}

impl<N: Fsm, C: Fsm> FsmScheduler for ControlScheduler<N, C> {
    type Fsm = C;

    fn schedule(&self, fsm: Box<C>, mailbox: &BasicMailbox<C>) {
        if let Err(err) = self.sender.send(FsmTypes::Control(fsm)) {
            if let FsmTypes::Control(fsm) = err.into_inner() {
                debug!("batch system is gone; parking control fsm");
                mailbox.park(fsm);
            }
        }
    }
}

impl<N: Fsm, C: Fsm> Clone for ControlScheduler<N, C> {
    fn clone(&self) -> Self {
        ControlScheduler {
            sender: self.sender.clone(),
        }
    }
}

/// Parks an FSM the channel refused because every poller and the system are
/// gone. Dropping it instead would leave its state notified with no FSM.
fn park_unscheduled<N: Fsm, C: Fsm>(item: FsmTypes<N, C>) {
    if let FsmTypes::Normal { fsm, mailbox } = item {
        debug!("batch system is gone; parking fsm");
        mailbox.park(fsm);
    }
}
