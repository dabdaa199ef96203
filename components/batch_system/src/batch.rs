//! The poller: the loop each batch-system thread runs.
//!
//! A poller fetches up to `max_batch_size` ready FSMs from the shared
//! channel, lets its handler process them as one batch, then decides for
//! each FSM whether to park it (mailbox drained), keep it (more mail), drop
//! it (stopped) or send it to the back of the queue (hot for too long while
//! others wait).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use crate::fsm::Fsm;
use crate::handler::{HandleResult, PollHandler};
use crate::mailbox::BasicMailbox;
use crate::scheduler::{FsmTypes, NormalScheduler};

/// A normal FSM held in a poller's batch, with its mailbox.
///
/// Dereferences to the FSM.
pub struct NormalFsm<N: Fsm> {
    fsm: Box<N>,
    mailbox: BasicMailbox<N>,
    /// When this poller fetched it; its time slice starts here.
    fetched_at: Instant,
    /// The `progress` of this round's `StopAt`, or `None` to keep it.
    progress: Option<usize>,
}

impl<N: Fsm> NormalFsm<N> {
    fn new(fsm: Box<N>, mailbox: BasicMailbox<N>, fetched_at: Instant) -> Self {
        NormalFsm {
            fsm,
            mailbox,
            fetched_at,
            progress: None,
        }
    }

    /// Returns the FSM's mailbox.
    pub fn mailbox(&self) -> &BasicMailbox<N> {
        &self.mailbox
    }

    /// Parks the FSM if its mailbox holds just `progress` messages.
    fn release_or_keep(self, progress: usize) -> Option<Self> {
        let NormalFsm {
            fsm,
            mailbox,
            fetched_at,
            ..
        } = self;
        let fsm = mailbox.release_or_keep(fsm, progress)?;
        Some(NormalFsm::new(fsm, mailbox, fetched_at))
    }

    /// Closes the mailbox of a stopped FSM and drops the FSM once no
    /// message is left for the handler to answer.
    fn remove_or_keep(self) -> Option<Self> {
        self.mailbox.close();
        if self.mailbox.is_empty() {
            return None;
        }
        Some(self)
    }
}

impl<N: Fsm> Deref for NormalFsm<N> {
    type Target = N;

    fn deref(&self) -> &N {
        &self.fsm
    }
}

impl<N: Fsm> DerefMut for NormalFsm<N> {
    fn deref_mut(&mut self) -> &mut N {
        &mut self.fsm
    }
}

/// The FSMs one poller is working on.
struct Batch<N: Fsm, C: Fsm> {
    /// `None` marks an FSM parked during the round; compacted at its end.
    normals: Vec<Option<NormalFsm<N>>>,
    control: Option<Box<C>>,
}

impl<N: Fsm, C: Fsm> Batch<N, C> {
    fn with_capacity(capacity: usize) -> Self {
        Batch {
            normals: Vec::with_capacity(capacity),
            control: None,
        }
    }

    fn len(&self) -> usize {
        self.normals.len() + usize::from(self.control.is_some())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a fetched item; returns false for the shutdown wake-up.
    fn push(&mut self, item: FsmTypes<N, C>, now: Instant) -> bool {
        match item {
            FsmTypes::Normal { fsm, mailbox } => {
                self.normals.push(Some(NormalFsm::new(fsm, mailbox, now)));
            }
            FsmTypes::Control(control) => {
                debug_assert!(self.control.is_none(), "one control fsm per system");
                self.control = Some(control);
            }
            FsmTypes::Empty => return false,
        }
        true
    }

    /// Parks everything on exit; closed mailboxes drop their FSMs instead.
    fn park_all(&mut self, control_box: &BasicMailbox<C>) {
        for normal in self.normals.drain(..).flatten() {
            normal.mailbox.park(normal.fsm);
        }
        if let Some(control) = self.control.take() {
            control_box.park(control);
        }
    }
}

/// One poller thread's loop state.
pub(crate) struct Poller<N: Fsm, C: Fsm> {
    receiver: Receiver<FsmTypes<N, C>>,
    scheduler: NormalScheduler<N, C>,
    control_box: BasicMailbox<C>,
    shutdown: Arc<AtomicBool>,
    max_batch_size: usize,
    reschedule_duration: Duration,
}

/// What a poller needs from its system, bundled to keep `new` readable.
pub(crate) struct PollerContext<N: Fsm, C: Fsm> {
    pub(crate) receiver: Receiver<FsmTypes<N, C>>,
    pub(crate) scheduler: NormalScheduler<N, C>,
    pub(crate) control_box: BasicMailbox<C>,
    pub(crate) shutdown: Arc<AtomicBool>,
}

impl<N: Fsm, C: Fsm> Poller<N, C> {
    pub(crate) fn new(
        context: PollerContext<N, C>,
        max_batch_size: usize,
        reschedule_duration: Duration,
    ) -> Self {
        Poller {
            receiver: context.receiver,
            scheduler: context.scheduler,
            control_box: context.control_box,
            shutdown: context.shutdown,
            max_batch_size,
            reschedule_duration,
        }
    }

    /// Runs rounds until shutdown, then parks whatever is left in the batch.
    pub(crate) fn run<H: PollHandler<N, C>>(&self, handler: &mut H) {
        let mut batch = Batch::with_capacity(self.max_batch_size);
        // Fetching after every round, not only when the batch empties, lets
        // newly woken FSMs join while hot ones are still being worked on.
        while self.fetch_batch(&mut batch, handler) {
            self.poll_round(&mut batch, handler);
            if self.shutdown.load(Ordering::Acquire) {
                break;
            }
        }
        batch.park_all(&self.control_box);
    }

    /// Tops the batch up to `max_batch_size`, blocking only when it is
    /// empty. Returns false when the poller should stop.
    fn fetch_batch<H: PollHandler<N, C>>(&self, batch: &mut Batch<N, C>, handler: &mut H) -> bool {
        if batch.is_empty() {
            let item = match self.receiver.try_recv() {
                Ok(item) => item,
                Err(_) => {
                    // Truly idle: let the handler flush before we sleep.
                    handler.pause();
                    match self.receiver.recv() {
                        Ok(item) => item,
                        Err(_) => return false,
                    }
                }
            };
            if !batch.push(item, Instant::now()) {
                return false;
            }
        }
        // One clock read per fetch, shared by everything fetched with it.
        let mut now = None;
        while batch.len() < self.max_batch_size {
            let Ok(item) = self.receiver.try_recv() else {
                break;
            };
            if !batch.push(item, *now.get_or_insert_with(Instant::now)) {
                return false;
            }
        }
        true
    }

    fn poll_round<H: PollHandler<N, C>>(&self, batch: &mut Batch<N, C>, handler: &mut H) {
        handler.begin(batch.len());
        self.poll_control(batch, handler);
        for slot in &mut batch.normals {
            let Some(normal) = slot.as_mut() else {
                continue;
            };
            match handler.handle_normal(&mut normal.fsm) {
                HandleResult::KeepProcessing => normal.progress = None,
                HandleResult::StopAt {
                    progress,
                    skip_end: true,
                } if !normal.is_stopped() => {
                    // Nothing for `end` to do: park it now, leaving a hole.
                    *slot = slot
                        .take()
                        .and_then(|normal| normal.release_or_keep(progress));
                }
                HandleResult::StopAt { progress, .. } => normal.progress = Some(progress),
            }
        }
        handler.light_end(&mut batch.normals);
        handler.end(&mut batch.normals);
        self.settle_normals(batch);
    }

    fn poll_control<H: PollHandler<N, C>>(&self, batch: &mut Batch<N, C>, handler: &mut H) {
        let Some(mut control) = batch.control.take() else {
            return;
        };
        let result = handler.handle_control(&mut control);
        batch.control = if control.is_stopped() {
            self.control_box.close();
            // Like a normal FSM, it lingers until its mail is answered.
            (!self.control_box.is_empty()).then_some(control)
        } else if let Some(progress) = result {
            self.control_box.release_or_keep(control, progress)
        } else {
            Some(control)
        };
    }

    /// Parks, drops, keeps or reschedules each normal FSM after `end`.
    fn settle_normals(&self, batch: &mut Batch<N, C>) {
        // Rescheduling only helps when FSMs wait that the batch cannot take
        // in; otherwise the next fetch picks them up anyway.
        let room = self.max_batch_size.saturating_sub(batch.len());
        let now_if_crowded = (self.receiver.len() > room).then(Instant::now);
        // Walking backwards, `swap_remove` only ever moves an FSM that was
        // already settled into the freed index.
        for index in (0..batch.normals.len()).rev() {
            let kept = batch.normals[index].take().and_then(|normal| {
                if normal.is_stopped() {
                    normal.remove_or_keep()
                } else if let Some(progress) = normal.progress {
                    normal.release_or_keep(progress)
                } else {
                    Some(normal)
                }
            });
            match kept {
                Some(normal) if self.slice_used_up(&normal, now_if_crowded) => {
                    batch.normals.swap_remove(index);
                    self.scheduler.reschedule(normal.fsm, normal.mailbox);
                }
                Some(normal) => batch.normals[index] = Some(normal),
                None => {
                    batch.normals.swap_remove(index);
                }
            }
        }
    }

    fn slice_used_up(&self, normal: &NormalFsm<N>, now: Option<Instant>) -> bool {
        now.is_some_and(|now| {
            now.saturating_duration_since(normal.fetched_at) >= self.reschedule_duration
        })
    }
}
