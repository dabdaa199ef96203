//! Delivers small messages to 10,000 FSMs through the batch system and, side
//! by side, through one tokio task per FSM fed by a `tokio::sync::mpsc`
//! channel: what a Rust user would otherwise reach for.
//!
//! Each round sends `MSGS_PER_FSM` `u64`s to every FSM from the bench thread
//! and waits until all of them are handled. Both sides use two worker
//! threads (the machine has two cores) and count handled messages the same
//! way: one shared atomic add per wake-up, not per message.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use batch_system::{
    create_system, BasicMailbox, BatchSystem, Config, Fsm, HandleResult, HandlerBuilder, NormalFsm,
    PollHandler, Router,
};
use criterion::{Criterion, Throughput};
use crossbeam::channel::{self, Receiver};
use tokio::sync::mpsc::{self, UnboundedSender};

const FSM_COUNT: u64 = 10_000;
const MSGS_PER_FSM: u64 = 10;
const MSGS_PER_ROUND: u64 = FSM_COUNT * MSGS_PER_FSM;
const WORKERS: usize = 2;
/// Rounds timed outside criterion for the summary line.
const SUMMARY_ROUNDS: u32 = 30;

/// Counts handled messages and wakes the bench thread at a target.
#[derive(Default)]
struct Tally {
    handled: AtomicU64,
    target: AtomicU64,
    lock: Mutex<()>,
    reached: Condvar,
}

impl Tally {
    fn add(&self, count: u64) {
        let total = self.handled.fetch_add(count, Ordering::AcqRel) + count;
        if total >= self.target.load(Ordering::Acquire) {
            // Taking the lock orders this notify after the waiter's check.
            let _guard = self.lock.lock().expect("tally lock");
            self.reached.notify_all();
        }
    }

    /// Raises the target by one round; call before sending the round.
    fn expect_round(&self) -> u64 {
        self.target.fetch_add(MSGS_PER_ROUND, Ordering::AcqRel) + MSGS_PER_ROUND
    }

    fn wait(&self, target: u64) {
        let mut guard = self.lock.lock().expect("tally lock");
        while self.handled.load(Ordering::Acquire) < target {
            guard = self.reached.wait(guard).expect("tally lock");
        }
    }
}

struct BenchFsm {
    receiver: Receiver<u64>,
}

impl Fsm for BenchFsm {
    type Message = u64;

    fn is_stopped(&self) -> bool {
        false
    }
}

struct BenchControl;

impl Fsm for BenchControl {
    type Message = ();

    fn is_stopped(&self) -> bool {
        false
    }
}

struct BenchHandler {
    tally: Arc<Tally>,
    handled: u64,
}

impl PollHandler<BenchFsm, BenchControl> for BenchHandler {
    fn begin(&mut self, _batch_size: usize) {}

    fn handle_control(&mut self, _control: &mut BenchControl) -> Option<usize> {
        Some(0)
    }

    fn handle_normal(&mut self, fsm: &mut BenchFsm) -> HandleResult {
        while let Ok(value) = fsm.receiver.try_recv() {
            black_box(value);
            self.handled += 1;
        }
        HandleResult::StopAt {
            progress: 0,
            skip_end: true,
        }
    }

    fn end(&mut self, _normals: &mut [Option<NormalFsm<BenchFsm>>]) {
        if self.handled > 0 {
            self.tally.add(self.handled);
            self.handled = 0;
        }
    }
}

struct BenchBuilder(Arc<Tally>);

impl HandlerBuilder<BenchFsm, BenchControl> for BenchBuilder {
    type Handler = BenchHandler;

    fn build(&mut self) -> BenchHandler {
        BenchHandler {
            tally: Arc::clone(&self.0),
            handled: 0,
        }
    }
}

struct BatchBench {
    tally: Arc<Tally>,
    router: Router<BenchFsm, BenchControl>,
    system: BatchSystem<BenchFsm, BenchControl>,
}

impl BatchBench {
    fn start() -> Self {
        let config = Config {
            pool_size: WORKERS,
            ..Config::default()
        };
        let (control_sender, _control_receiver) = channel::unbounded();
        let (router, mut system) = create_system(&config, control_sender, Box::new(BenchControl));
        let tally = Arc::new(Tally::default());
        system
            .spawn("bench-poller", BenchBuilder(Arc::clone(&tally)))
            .expect("spawn pollers");
        let mailboxes = (0..FSM_COUNT)
            .map(|addr| {
                let (sender, receiver) = channel::unbounded();
                (
                    addr,
                    BasicMailbox::new(sender, Box::new(BenchFsm { receiver })),
                )
            })
            .collect();
        router.register_all(mailboxes);
        BatchBench {
            tally,
            router,
            system,
        }
    }

    fn round(&self) {
        let target = self.tally.expect_round();
        for value in 0..MSGS_PER_FSM {
            for addr in 0..FSM_COUNT {
                self.router.send(addr, value).expect("fsm registered");
            }
        }
        self.tally.wait(target);
    }
}

struct TokioBench {
    tally: Arc<Tally>,
    senders: Vec<UnboundedSender<u64>>,
    runtime: tokio::runtime::Runtime,
}

impl TokioBench {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .build()
            .expect("build tokio runtime");
        let tally = Arc::new(Tally::default());
        let senders = (0..FSM_COUNT)
            .map(|_| {
                let (sender, mut receiver) = mpsc::unbounded_channel::<u64>();
                let tally = Arc::clone(&tally);
                runtime.spawn(async move {
                    let mut buffer = Vec::with_capacity(64);
                    loop {
                        let count = receiver.recv_many(&mut buffer, 64).await;
                        if count == 0 {
                            break;
                        }
                        for value in buffer.drain(..) {
                            black_box(value);
                        }
                        tally.add(count as u64);
                    }
                });
                sender
            })
            .collect();
        TokioBench {
            tally,
            senders,
            runtime,
        }
    }

    fn round(&self) {
        let target = self.tally.expect_round();
        for value in 0..MSGS_PER_FSM {
            for sender in &self.senders {
                sender.send(value).expect("task alive");
            }
        }
        self.tally.wait(target);
    }
}

fn bench_delivery(criterion: &mut Criterion, batch: &BatchBench, tokio: &TokioBench) {
    let mut group = criterion.benchmark_group("deliver_10k_fsms");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(MSGS_PER_ROUND));
    group.bench_function("batch_system", |bencher| bencher.iter(|| batch.round()));
    group.bench_function("tokio_mpsc", |bencher| bencher.iter(|| tokio.round()));
    group.finish();
}

/// Messages per second over `SUMMARY_ROUNDS` rounds, after one warm-up.
fn throughput(round: impl Fn()) -> f64 {
    round();
    let start = Instant::now();
    for _ in 0..SUMMARY_ROUNDS {
        round();
    }
    (MSGS_PER_ROUND * u64::from(SUMMARY_ROUNDS)) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let batch = BatchBench::start();
    let tokio = TokioBench::start();
    let mut criterion = Criterion::default().configure_from_args();
    bench_delivery(&mut criterion, &batch, &tokio);
    criterion.final_summary();

    let batch_rate = throughput(|| batch.round());
    let tokio_rate = throughput(|| tokio.round());
    println!(
        "batch-system: {batch_rate:.0} msg/s, tokio-mpsc: {tokio_rate:.0} msg/s, ratio: {:.2}",
        batch_rate / tokio_rate
    );

    let TokioBench {
        senders, runtime, ..
    } = tokio;
    drop(senders);
    runtime.shutdown_timeout(Duration::from_secs(10));
    let BatchBench {
        mut system, router, ..
    } = batch;
    system.shutdown();
    drop(router);
}
