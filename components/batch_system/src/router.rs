//! The router: the address book that delivers messages to mailboxes.
//!
//! Normal FSMs are addressed by a `u64` (a region id, for a raftstore). The
//! authoritative book is a map behind one mutex shared by every clone; each
//! clone also keeps a private cache so the common path (a known, open
//! address) takes no lock. Caches are refreshed lazily: a send that finds a
//! closed mailbox in the cache falls back to the shared book.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam::channel::Sender;
use parking_lot::Mutex;
use tracing::{debug, info};

use crate::error::{SendError, TrySendError};
use crate::fsm::Fsm;
use crate::mailbox::BasicMailbox;
use crate::scheduler::{ControlScheduler, FsmTypes, NormalScheduler};

/// Hashes the `u64` addresses with one multiply (the Fx hash step).
///
/// Addresses are ids handed out by the cluster, not attacker-chosen keys,
/// so the DoS resistance of SipHash buys nothing on this hot path.
#[derive(Default, Clone, Copy)]
struct AddrHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(FX_SEED);
    }
}

type MailboxMap<N> = HashMap<u64, BasicMailbox<N>, BuildHasherDefault<AddrHasher>>;

/// Routes messages to normal FSMs by address and to the one control FSM.
///
/// `Clone + Send` but not `Sync`: every clone owns its cache, so give each
/// thread its own clone rather than sharing one.
pub struct Router<N: Fsm, C: Fsm> {
    normals: Arc<Mutex<MailboxMap<N>>>,
    caches: RefCell<MailboxMap<N>>,
    control_box: BasicMailbox<C>,
    normal_scheduler: NormalScheduler<N, C>,
    control_scheduler: ControlScheduler<N, C>,
    shutdown: Arc<AtomicBool>,
}

impl<N: Fsm, C: Fsm> Router<N, C> {
    pub(crate) fn new(control_box: BasicMailbox<C>, sender: Sender<FsmTypes<N, C>>) -> Self {
        Router {
            normals: Arc::default(),
            caches: RefCell::default(),
            control_box,
            normal_scheduler: NormalScheduler::new(sender.clone()),
            control_scheduler: ControlScheduler::new(sender),
            shutdown: Arc::default(),
        }
    }

    /// Returns the scheduler to pass to [`BasicMailbox`] sends, for an FSM
    /// that keeps its own mailbox and sends to itself.
    pub fn normal_scheduler(&self) -> &NormalScheduler<N, C> {
        &self.normal_scheduler
    }

    /// Returns the scheduler for sends to the control mailbox.
    pub fn control_scheduler(&self) -> &ControlScheduler<N, C> {
        &self.control_scheduler
    }

    /// Returns the control FSM's mailbox.
    pub fn control_mailbox(&self) -> &BasicMailbox<C> {
        &self.control_box
    }

    pub(crate) fn shutdown_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shutdown)
    }

    /// Returns true once [`Router::broadcast_shutdown`] has run.
    pub fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Registers `mailbox` at `addr`, closing any mailbox it replaces.
    ///
    /// After shutdown the mailbox is closed at once instead.
    pub fn register(&self, addr: u64, mailbox: BasicMailbox<N>) {
        let replaced = {
            let mut normals = self.normals.lock();
            // Checked under the lock: `broadcast_shutdown` drains the book
            // under it, so no mailbox can slip in after the drain.
            if self.is_shutdown() {
                Some(mailbox)
            } else {
                normals.insert(addr, mailbox)
            }
        };
        self.evict_cached(addr);
        // Closing may drop an idle FSM; do it outside the lock in case its
        // destructor uses the router.
        if let Some(old) = replaced {
            old.close();
        }
    }

    /// Registers many mailboxes under one lock acquisition.
    pub fn register_all(&self, mailboxes: Vec<(u64, BasicMailbox<N>)>) {
        let mut replaced = Vec::new();
        {
            let mut normals = self.normals.lock();
            let closed = self.is_shutdown();
            normals.reserve(mailboxes.len());
            for (addr, mailbox) in mailboxes {
                if closed {
                    replaced.push(mailbox);
                } else if let Some(old) = normals.insert(addr, mailbox) {
                    replaced.push(old);
                }
            }
        }
        if let Ok(mut caches) = self.caches.try_borrow_mut() {
            caches.clear();
        }
        for old in replaced {
            old.close();
        }
    }

    /// Returns the open mailbox at `addr`, if any.
    pub fn mailbox(&self, addr: u64) -> Option<BasicMailbox<N>> {
        if let Some(mailbox) = self.caches.borrow().get(&addr) {
            if mailbox.is_connected() {
                return Some(mailbox.clone());
            }
        }
        let mailbox = self.normals.lock().get(&addr).cloned()?;
        if !mailbox.is_connected() {
            self.forget_closed(addr);
            return None;
        }
        self.cache(addr, mailbox.clone());
        Some(mailbox)
    }

    /// Sends `msg` to the FSM at `addr`, respecting mailbox capacity.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the mailbox is at capacity;
    /// [`TrySendError::Disconnected`] if the address is unknown or its
    /// mailbox is closed. Both carry the message back.
    pub fn send(&self, addr: u64, msg: N::Message) -> Result<(), TrySendError<N::Message>> {
        self.route(addr, msg, |mailbox, msg| {
            mailbox.try_send(msg, &self.normal_scheduler)
        })
    }

    /// Sends `msg` to the FSM at `addr`, ignoring mailbox capacity.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`], carrying the message, if the address is
    /// unknown or its mailbox is closed.
    pub fn force_send(&self, addr: u64, msg: N::Message) -> Result<(), SendError<N::Message>> {
        let result = self.route(addr, msg, |mailbox, msg| {
            mailbox
                .force_send(msg, &self.normal_scheduler)
                .map_err(TrySendError::from)
        });
        match result {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(msg)) => Err(SendError::Disconnected(msg)),
            Err(TrySendError::Full(_)) => unreachable!("force_send ignores capacity"),
        }
    }

    /// Sends `msg` to the control FSM, respecting its mailbox capacity.
    ///
    /// # Errors
    ///
    /// As [`BasicMailbox::try_send`]; fails with `Disconnected` after shutdown.
    pub fn send_control(&self, msg: C::Message) -> Result<(), TrySendError<C::Message>> {
        self.control_box.try_send(msg, &self.control_scheduler)
    }

    /// Sends `msg` to the control FSM, ignoring capacity.
    ///
    /// # Errors
    ///
    /// As [`BasicMailbox::force_send`]; fails after shutdown.
    pub fn force_send_control(&self, msg: C::Message) -> Result<(), SendError<C::Message>> {
        self.control_box.force_send(msg, &self.control_scheduler)
    }

    /// Force-sends a message made by `msg_gen` to every registered FSM;
    /// closed mailboxes are skipped.
    pub fn broadcast_normal(&self, msg_gen: impl FnMut() -> N::Message) {
        self.broadcast_normal_to(|_| true, msg_gen);
    }

    /// As [`Router::broadcast_normal`], to the FSMs whose address `wanted` accepts.
    pub fn broadcast_normal_to(
        &self,
        mut wanted: impl FnMut(u64) -> bool,
        mut msg_gen: impl FnMut() -> N::Message,
    ) {
        let normals = self.normals.lock();
        for (addr, mailbox) in normals.iter() {
            if wanted(*addr) {
                // A closed mailbox simply misses the broadcast.
                let _ = mailbox.force_send(msg_gen(), &self.normal_scheduler);
            }
        }
    }

    /// Removes `addr` from the book and closes its mailbox.
    pub fn close(&self, addr: u64) {
        let removed = self.normals.lock().remove(&addr);
        self.evict_cached(addr);
        if let Some(mailbox) = removed {
            debug!(addr, "closing mailbox");
            mailbox.close();
        }
    }

    /// Returns how many registered normal mailboxes are still open.
    ///
    /// Walks the whole book under its lock; meant for diagnostics and tests.
    pub fn alive_count(&self) -> usize {
        let normals = self.normals.lock();
        normals
            .values()
            .filter(|mailbox| mailbox.is_connected())
            .count()
    }

    /// Marks the router shut down and closes every mailbox, control included.
    ///
    /// Idle FSMs are dropped now; running ones when their poller lets go.
    /// Later sends fail with `Disconnected`.
    pub fn broadcast_shutdown(&self) {
        info!("closing all mailboxes for shutdown");
        let mailboxes: Vec<_> = {
            let mut normals = self.normals.lock();
            self.shutdown.store(true, Ordering::Release);
            normals.drain().map(|(_, mailbox)| mailbox).collect()
        };
        if let Ok(mut caches) = self.caches.try_borrow_mut() {
            caches.clear();
        }
        for mailbox in mailboxes {
            mailbox.close();
        }
        self.control_box.close();
    }

    /// Delivers through this clone's cache, falling back to the shared book.
    ///
    /// `deliver` is the mailbox send to use; only its `Disconnected` result
    /// is interpreted here, as a sign that the address book is stale.
    fn route<F>(
        &self,
        addr: u64,
        msg: N::Message,
        deliver: F,
    ) -> Result<(), TrySendError<N::Message>>
    where
        F: Fn(&BasicMailbox<N>, N::Message) -> Result<(), TrySendError<N::Message>>,
    {
        // A shared borrow only: if a `set_mailbox` hook re-enters this clone,
        // nested shared borrows are fine and cache writes are skipped.
        let msg = {
            let caches = self.caches.borrow();
            match caches.get(&addr) {
                Some(mailbox) => match deliver(mailbox, msg) {
                    Err(TrySendError::Disconnected(msg)) => msg,
                    delivered_or_full => return delivered_or_full,
                },
                None => msg,
            }
        };
        // Missing or stale in the cache; the book may hold a newer mailbox.
        self.evict_cached(addr);
        let Some(mailbox) = self.normals.lock().get(&addr).cloned() else {
            return Err(TrySendError::Disconnected(msg));
        };
        match deliver(&mailbox, msg) {
            Err(TrySendError::Disconnected(msg)) => {
                self.forget_closed(addr);
                Err(TrySendError::Disconnected(msg))
            }
            other => {
                self.cache(addr, mailbox);
                other
            }
        }
    }

    fn cache(&self, addr: u64, mailbox: BasicMailbox<N>) {
        if let Ok(mut caches) = self.caches.try_borrow_mut() {
            caches.insert(addr, mailbox);
        }
    }

    fn evict_cached(&self, addr: u64) {
        if let Ok(mut caches) = self.caches.try_borrow_mut() {
            caches.remove(&addr);
        }
    }

    /// Drops `addr` from the book if its mailbox is closed (e.g. its FSM
    /// stopped), so the book does not keep dead entries forever.
    fn forget_closed(&self, addr: u64) {
        let removed = {
            let mut normals = self.normals.lock();
            match normals.entry(addr) {
                Entry::Occupied(entry) if !entry.get().is_connected() => Some(entry.remove()),
                _ => None,
            }
        };
        drop(removed);
    }
}

impl<N: Fsm, C: Fsm> Clone for Router<N, C> {
    /// Shares the address book; the clone starts with an empty cache.
    fn clone(&self) -> Self {
        Router {
            normals: Arc::clone(&self.normals),
            caches: RefCell::default(),
            control_box: self.control_box.clone(),
            normal_scheduler: self.normal_scheduler.clone(),
            control_scheduler: self.control_scheduler.clone(),
            shutdown: Arc::clone(&self.shutdown),
        }
    }
}
