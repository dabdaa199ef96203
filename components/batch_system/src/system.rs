//! The batch system: creating it, starting its pollers, stopping them.

use std::panic;
use std::thread::{self, JoinHandle};

use crossbeam::channel::{self, Receiver, Sender};
use tracing::{error, info};

use crate::batch::{Poller, PollerContext};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsm::Fsm;
use crate::handler::HandlerBuilder;
use crate::mailbox::BasicMailbox;
use crate::router::Router;
use crate::scheduler::FsmTypes;

/// A pool of poller threads driving normal FSMs `N` and one control FSM `C`.
///
/// Dropping the system shuts it down.
pub struct BatchSystem<N: Fsm, C: Fsm> {
    /// Set while pollers run; names their threads `{prefix}-{index}`.
    name_prefix: Option<String>,
    router: Router<N, C>,
    receiver: Receiver<FsmTypes<N, C>>,
    config: Config,
    workers: Vec<JoinHandle<()>>,
}

/// Creates a batch system and the router that feeds it.
///
/// `control_sender` must be the sending half of the channel whose receiver
/// `control_fsm` owns. Nothing runs until [`BatchSystem::spawn`].
pub fn create_system<N: Fsm, C: Fsm>(
    config: &Config,
    control_sender: Sender<C::Message>,
    control_fsm: Box<C>,
) -> (Router<N, C>, BatchSystem<N, C>) {
    let control_box = BasicMailbox::new(control_sender, control_fsm);
    let (sender, receiver) = channel::unbounded();
    let router = Router::new(control_box, sender);
    let system = BatchSystem {
        name_prefix: None,
        router: router.clone(),
        receiver,
        config: config.clone(),
        workers: Vec::new(),
    };
    (router, system)
}

impl<N: Fsm, C: Fsm> BatchSystem<N, C> {
    /// Starts `pool_size` poller threads named `{name_prefix}-{index}`, each
    /// with a handler from `builder`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a bad config, [`Error::AlreadyStarted`]
    /// if pollers already run, [`Error::SpawnThread`] if a thread cannot be
    /// started (threads started before it keep running until `shutdown`).
    pub fn spawn<B>(&mut self, name_prefix: impl Into<String>, mut builder: B) -> Result<()>
    where
        B: HandlerBuilder<N, C>,
        B::Handler: Send + 'static,
    {
        self.config.validate()?;
        if let Some(running) = &self.name_prefix {
            return Err(Error::AlreadyStarted {
                name_prefix: running.clone(),
            });
        }
        let name_prefix = name_prefix.into();
        // Set before spawning so a partial start can still be shut down.
        self.name_prefix = Some(name_prefix.clone());
        for index in 0..self.config.pool_size {
            let name = format!("{name_prefix}-{index}");
            let mut handler = builder.build();
            let poller = self.new_poller();
            let spawned = thread::Builder::new()
                .name(name.clone())
                .spawn(move || poller.run(&mut handler));
            match spawned {
                Ok(worker) => self.workers.push(worker),
                Err(source) => return Err(Error::SpawnThread { name, source }),
            }
        }
        info!(
            name_prefix,
            pool_size = self.config.pool_size,
            "batch system started"
        );
        Ok(())
    }

    fn new_poller(&self) -> Poller<N, C> {
        let context = PollerContext {
            receiver: self.receiver.clone(),
            scheduler: self.router.normal_scheduler().clone(),
            control_box: self.router.control_mailbox().clone(),
            shutdown: self.router.shutdown_flag(),
        };
        Poller::new(
            context,
            self.config.max_batch_size,
            self.config.reschedule_duration,
        )
    }

    /// Closes every mailbox, stops the pollers and joins their threads.
    ///
    /// Idempotent. FSMs are dropped (messages still queued go with them);
    /// every handler is dropped on its own thread before this returns.
    ///
    /// # Panics
    ///
    /// Re-raises the panic of a poller thread that panicked, unless the
    /// caller is already unwinding.
    pub fn shutdown(&mut self) {
        self.router.broadcast_shutdown();
        let Some(name_prefix) = self.name_prefix.take() else {
            return;
        };
        info!(name_prefix, "stopping batch system");
        // The flag stops busy pollers after their round; blocked ones need
        // a wake-up each.
        self.router
            .normal_scheduler()
            .wake_pollers(self.workers.len());
        let mut first_panic = None;
        for worker in self.workers.drain(..) {
            let name = worker.thread().name().unwrap_or_default().to_owned();
            if let Err(payload) = worker.join() {
                error!(thread = name, "poller thread panicked");
                first_panic.get_or_insert(payload);
            }
        }
        // FSMs still queued will never run. Park them now, which drops them
        // since their mailboxes are closed, instead of keeping them alive
        // until the system itself is dropped.
        for item in self.receiver.try_iter() {
            match item {
                FsmTypes::Normal { fsm, mailbox } => mailbox.park(fsm),
                FsmTypes::Control(control) => self.router.control_mailbox().park(control),
                FsmTypes::Empty => {}
            }
        }
        info!(name_prefix, "batch system stopped");
        if let Some(payload) = first_panic {
            if !thread::panicking() {
                panic::resume_unwind(payload);
            }
        }
    }
}

impl<N: Fsm, C: Fsm> Drop for BatchSystem<N, C> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
