//! A generic batch system: many small state machines (FSMs) driven by a few
//! poller threads, in the architecture of TiKV's `batch-system`.
//!
//! This crate owns message delivery and scheduling only. It must never
//! depend on raft, engines or any storage crate: the raftstore builds its
//! peer/store FSMs and the apply FSMs on top of it, not the other way round.
//!
//! How a message flows:
//!
//! 1. [`Router::send`] looks the address up (in a per-clone cache, else the
//!    shared address book) and queues the message in the FSM's
//!    [`BasicMailbox`].
//! 2. If the FSM was idle, its [`FsmState`] hands it, exactly once, to the
//!    scheduler: a channel shared by all pollers.
//! 3. A poller fetches a batch of ready FSMs and calls the [`PollHandler`]
//!    hooks: `begin`, `handle_control`, `handle_normal` for each, `end`.
//! 4. An FSM whose mailbox is drained is parked back in its state, with a
//!    re-check that no message slipped in meanwhile. A stopped FSM is
//!    dropped; one that stays busy past its time slice while others wait
//!    goes to the back of the queue.
//!
//! Key types: [`Fsm`], [`FsmState`], [`BasicMailbox`], [`Router`],
//! [`PollHandler`] / [`HandlerBuilder`], [`BatchSystem`] and
//! [`create_system`], [`Config`].

mod batch;
mod config;
mod error;
mod fsm;
mod handler;
mod mailbox;
mod router;
mod scheduler;
mod system;

pub use batch::NormalFsm;
pub use config::Config;
pub use error::{Error, Result, SendError, TrySendError};
pub use fsm::{Fsm, FsmState};
pub use handler::{HandleResult, HandlerBuilder, PollHandler};
pub use mailbox::BasicMailbox;
pub use router::Router;
pub use scheduler::{ControlScheduler, FsmScheduler, NormalScheduler};
pub use system::{create_system, BatchSystem};
