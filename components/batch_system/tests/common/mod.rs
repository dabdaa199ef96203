//! A test FSM, control FSM and handler that record what the batch system
//! does to them, plus a counter tests can wait on without sleeping.

#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use batch_system::{
    create_system, BasicMailbox, BatchSystem, Config, Fsm, HandleResult, HandlerBuilder, NormalFsm,
    PollHandler, Router,
};
use crossbeam::channel::{self, Receiver, Sender};

/// Upper bound for any wait; only reached when the system is broken.
pub const WAIT: Duration = Duration::from_secs(60);

/// A counter that threads can wait on reaching a value.
#[derive(Default)]
pub struct Counter {
    value: Mutex<u64>,
    changed: Condvar,
}

impl Counter {
    pub fn add(&self, delta: u64) {
        let mut value = self.value.lock().expect("counter lock");
        *value += delta;
        self.changed.notify_all();
    }

    pub fn get(&self) -> u64 {
        *self.value.lock().expect("counter lock")
    }

    /// Waits until the counter reaches `target`; false on timeout.
    pub fn wait_for(&self, target: u64) -> bool {
        let value = self.value.lock().expect("counter lock");
        let (value, _) = self
            .changed
            .wait_timeout_while(value, WAIT, |value| *value < target)
            .expect("counter lock");
        *value >= target
    }
}

/// What the FSMs and handlers observed, shared by a whole test.
#[derive(Default)]
pub struct Stats {
    /// Normal messages handled.
    pub handled: Counter,
    /// Calls of `handle_normal`.
    pub handle_calls: Counter,
    /// Control messages handled.
    pub control_handled: Counter,
    /// Times an FSM was found already in use when a poller entered it.
    pub overlaps: AtomicUsize,
    /// Sequence numbers that arrived out of order.
    pub order_errors: AtomicUsize,
    /// Occupied slots `end` was called with.
    pub end_slots: AtomicUsize,
    /// Calls of `end`.
    pub ends: AtomicUsize,
    pub handler_drops: Counter,
    pub fsm_drops: Counter,
    /// Names of the threads whose handlers were dropped.
    pub poller_names: Mutex<BTreeSet<String>>,
}

pub enum Msg {
    /// The `seq`-th message (from 1) of sender `sender`.
    Seq {
        sender: usize,
        seq: u64,
    },
    Noop,
    Report(Sender<Report>),
    Stop,
}

/// An FSM's answer to `Msg::Report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub generation: u64,
    /// Last sequence number seen per sender.
    pub last_seq: Vec<u64>,
    pub handled: u64,
}

pub struct TestFsm {
    receiver: Receiver<Msg>,
    /// Tells apart FSMs registered at the same address.
    generation: u64,
    stopped: bool,
    /// Set while a poller is inside `handle_normal` for this FSM.
    in_use: AtomicBool,
    last_seq: Vec<u64>,
    handled: u64,
    /// Handle one message per round and always ask to keep processing.
    pub always_busy: bool,
    /// While true, handle nothing and leave every message queued.
    pub defer: Option<Arc<AtomicBool>>,
    stats: Arc<Stats>,
}

impl TestFsm {
    pub fn new(receiver: Receiver<Msg>, generation: u64, stats: &Arc<Stats>) -> Self {
        TestFsm {
            receiver,
            generation,
            stopped: false,
            in_use: AtomicBool::new(false),
            last_seq: Vec::new(),
            handled: 0,
            always_busy: false,
            defer: None,
            stats: Arc::clone(stats),
        }
    }

    fn on_message(&mut self, msg: Msg) {
        match msg {
            Msg::Seq { sender, seq } => {
                if self.last_seq.len() <= sender {
                    self.last_seq.resize(sender + 1, 0);
                }
                if seq != self.last_seq[sender] + 1 {
                    self.stats.order_errors.fetch_add(1, Ordering::SeqCst);
                }
                self.last_seq[sender] = seq;
            }
            Msg::Noop => {}
            Msg::Report(reply) => {
                let report = Report {
                    generation: self.generation,
                    last_seq: self.last_seq.clone(),
                    handled: self.handled,
                };
                let _ = reply.send(report);
            }
            Msg::Stop => self.stopped = true,
        }
        self.handled += 1;
    }
}

impl Fsm for TestFsm {
    type Message = Msg;

    fn is_stopped(&self) -> bool {
        self.stopped
    }
}

impl Drop for TestFsm {
    fn drop(&mut self) {
        self.stats.fsm_drops.add(1);
    }
}

/// Creates a mailbox owning a fresh FSM; `tune` adjusts the FSM first.
pub fn fsm_mailbox(
    stats: &Arc<Stats>,
    generation: u64,
    tune: impl FnOnce(&mut TestFsm),
) -> BasicMailbox<TestFsm> {
    let (sender, receiver) = channel::unbounded();
    let mut fsm = TestFsm::new(receiver, generation, stats);
    tune(&mut fsm);
    BasicMailbox::new(sender, Box::new(fsm))
}

pub enum ControlMsg {
    Ping(Sender<()>),
}

pub struct TestControl {
    receiver: Receiver<ControlMsg>,
}

impl Fsm for TestControl {
    type Message = ControlMsg;

    fn is_stopped(&self) -> bool {
        false
    }
}

pub struct TestHandler {
    stats: Arc<Stats>,
    skip_end: bool,
    /// Yield inside `handle_normal` to widen race windows.
    yield_inside: bool,
}

impl PollHandler<TestFsm, TestControl> for TestHandler {
    fn begin(&mut self, _batch_size: usize) {}

    fn handle_control(&mut self, control: &mut TestControl) -> Option<usize> {
        while let Ok(ControlMsg::Ping(reply)) = control.receiver.try_recv() {
            self.stats.control_handled.add(1);
            let _ = reply.send(());
        }
        Some(0)
    }

    fn handle_normal(&mut self, fsm: &mut TestFsm) -> HandleResult {
        self.stats.handle_calls.add(1);
        if fsm.in_use.swap(true, Ordering::SeqCst) {
            self.stats.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        if self.yield_inside {
            thread::yield_now();
        }
        let result = self.drain(fsm);
        fsm.in_use.store(false, Ordering::SeqCst);
        result
    }

    fn end(&mut self, normals: &mut [Option<NormalFsm<TestFsm>>]) {
        let occupied = normals.iter().filter(|slot| slot.is_some()).count();
        self.stats.end_slots.fetch_add(occupied, Ordering::SeqCst);
        self.stats.ends.fetch_add(1, Ordering::SeqCst);
    }
}

impl TestHandler {
    fn drain(&mut self, fsm: &mut TestFsm) -> HandleResult {
        if fsm
            .defer
            .as_ref()
            .is_some_and(|defer| defer.load(Ordering::SeqCst))
        {
            return HandleResult::StopAt {
                progress: fsm.receiver.len(),
                skip_end: self.skip_end,
            };
        }
        let limit = if fsm.always_busy { 1 } else { usize::MAX };
        let mut handled = 0;
        while handled < limit {
            let Ok(msg) = fsm.receiver.try_recv() else {
                break;
            };
            fsm.on_message(msg);
            handled += 1;
        }
        if handled > 0 {
            self.stats.handled.add(handled as u64);
        }
        if fsm.always_busy {
            return HandleResult::KeepProcessing;
        }
        HandleResult::StopAt {
            progress: 0,
            skip_end: self.skip_end,
        }
    }
}

impl Drop for TestHandler {
    /// Runs on the poller thread as it exits, so it records that thread.
    fn drop(&mut self) {
        let name = thread::current().name().unwrap_or("unnamed").to_owned();
        self.stats
            .poller_names
            .lock()
            .expect("names lock")
            .insert(name);
        self.stats.handler_drops.add(1);
    }
}

#[derive(Clone)]
pub struct TestBuilder {
    pub stats: Arc<Stats>,
    pub skip_end: bool,
    pub yield_inside: bool,
}

impl TestBuilder {
    pub fn new(stats: &Arc<Stats>) -> Self {
        TestBuilder {
            stats: Arc::clone(stats),
            skip_end: false,
            yield_inside: false,
        }
    }
}

impl HandlerBuilder<TestFsm, TestControl> for TestBuilder {
    type Handler = TestHandler;

    fn build(&mut self) -> TestHandler {
        TestHandler {
            stats: Arc::clone(&self.stats),
            skip_end: self.skip_end,
            yield_inside: self.yield_inside,
        }
    }
}

pub type TestRouter = Router<TestFsm, TestControl>;
pub type TestSystem = BatchSystem<TestFsm, TestControl>;

/// Creates a system that is not yet spawned.
pub fn new_system(config: &Config) -> (TestRouter, TestSystem) {
    let (sender, receiver) = channel::unbounded();
    create_system(config, sender, Box::new(TestControl { receiver }))
}

/// Creates and spawns a system with `pool_size` pollers named `test-*`.
pub fn start_system(config: &Config, builder: TestBuilder) -> (TestRouter, TestSystem) {
    let (router, mut system) = new_system(config);
    system.spawn("test", builder).expect("spawn pollers");
    (router, system)
}

/// Registers FSMs at addresses `0..count`, generation 0.
pub fn register_fsms(router: &TestRouter, stats: &Arc<Stats>, count: u64) {
    let mailboxes = (0..count)
        .map(|addr| (addr, fsm_mailbox(stats, 0, |_| {})))
        .collect();
    router.register_all(mailboxes);
}

/// Asks the FSM at `addr` for its report.
pub fn report(router: &TestRouter, addr: u64) -> Report {
    let (reply, answer) = channel::bounded(1);
    router
        .send(addr, Msg::Report(reply))
        .unwrap_or_else(|err| panic!("fsm {addr} unreachable: {err}"));
    answer
        .recv_timeout(WAIT)
        .unwrap_or_else(|err| panic!("fsm {addr} did not report: {err}"))
}
