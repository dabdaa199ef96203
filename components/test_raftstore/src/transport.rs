//! The in-process network: each store's [`ChannelTransport`] hands raft messages to the
//! receiving store's router, through the installed filters. A delayed message waits on a timer
//! thread. A message to a store that is down is reported back as unreachable, and a snapshot
//! that was delivered (or dropped) is reported back as finished (or failed), as the gRPC
//! transport does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use engine_rocks::RocksEngine;
use kvproto::raft_serverpb::RaftMessage;
use parking_lot::RwLock;
use raft_log_engine::RaftEngineLog;
use raftstore::{PeerMsg, RouterHandle, SharedRouter, Transport};
use types::{PeerId, RegionId};

use crate::filter::{Filter, Verdict};

pub type Router = SharedRouter<RocksEngine, RaftEngineLog>;

/// A handle on an installed filter, to remove it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FilterId(u64);

#[derive(Default)]
struct Filters {
    next_id: u64,
    installed: Vec<(FilterId, Arc<dyn Filter>)>,
}

/// Routers of the running stores and the filters between them.
pub struct Network {
    routers: RwLock<HashMap<u64, Router>>,
    filters: RwLock<Filters>,
    delayed: Sender<Delayed>,
}

struct Delayed {
    due: Instant,
    seq: u64,
    from: u64,
    msg: RaftMessage,
    is_snapshot: bool,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl Network {
    /// A network with no stores; a timer thread delivers delayed messages until it is dropped.
    pub fn new() -> Arc<Network> {
        let (sender, receiver) = channel::unbounded();
        let network = Arc::new(Network {
            routers: RwLock::default(),
            filters: RwLock::default(),
            delayed: sender,
        });
        let weak = Arc::downgrade(&network);
        std::thread::Builder::new()
            .name("test-net-delay".into())
            .spawn(move || run_delay_timer(receiver, weak))
            .expect("start the delay thread");
        network
    }

    pub fn add_router(&self, store_id: u64, router: Router) {
        self.routers.write().insert(store_id, router);
    }

    pub fn remove_router(&self, store_id: u64) {
        self.routers.write().remove(&store_id);
    }

    pub fn router(&self, store_id: u64) -> Option<Router> {
        self.routers.read().get(&store_id).cloned()
    }

    pub fn add_filter(&self, filter: Arc<dyn Filter>) -> FilterId {
        let mut filters = self.filters.write();
        filters.next_id += 1;
        let id = FilterId(filters.next_id);
        filters.installed.push((id, filter));
        id
    }

    pub fn remove_filter(&self, id: FilterId) {
        self.filters.write().installed.retain(|(i, _)| *i != id);
    }

    pub fn clear_filters(&self) {
        self.filters.write().installed.clear();
    }

    fn verdict(&self, from: u64, to: u64, msg: &RaftMessage) -> Verdict {
        let mut delay = Duration::ZERO;
        for (_, filter) in &self.filters.read().installed {
            match filter.verdict(from, to, msg) {
                Verdict::Drop => return Verdict::Drop,
                Verdict::Delay(d) => delay = delay.max(d),
                Verdict::Deliver => {}
            }
        }
        if delay.is_zero() {
            Verdict::Deliver
        } else {
            Verdict::Delay(delay)
        }
    }

    fn send(&self, from: u64, msg: RaftMessage, is_snapshot: bool) {
        let to = msg.to_peer.map_or(0, |p| p.store_id);
        match self.verdict(from, to, &msg) {
            Verdict::Deliver => self.deliver(from, msg, is_snapshot),
            Verdict::Drop => {
                if is_snapshot {
                    self.report_snapshot(from, &msg, false);
                }
            }
            Verdict::Delay(d) => {
                static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let _ = self.delayed.send(Delayed {
                    due: Instant::now() + d,
                    seq: SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    from,
                    msg,
                    is_snapshot,
                });
            }
        }
    }

    fn deliver(&self, from: u64, msg: RaftMessage, is_snapshot: bool) {
        let to = msg.to_peer.map_or(0, |p| p.store_id);
        let Some(router) = self.router(to) else {
            if let (Some(sender), Some(to_peer)) = (self.router(from), msg.to_peer) {
                sender.send_peer(
                    RegionId(msg.region_id),
                    PeerMsg::Unreachable {
                        to_peer_id: PeerId(to_peer.id),
                    },
                );
            }
            if is_snapshot {
                self.report_snapshot(from, &msg, false);
            }
            return;
        };
        let report = is_snapshot.then(|| msg.clone());
        router.send_raft_message(msg);
        if let Some(msg) = report {
            self.report_snapshot(from, &msg, true);
        }
    }

    fn report_snapshot(&self, from: u64, msg: &RaftMessage, finished: bool) {
        if let (Some(sender), Some(to_peer)) = (self.router(from), msg.to_peer) {
            sender.send_peer(
                RegionId(msg.region_id),
                PeerMsg::SnapshotStatus {
                    to_peer_id: PeerId(to_peer.id),
                    finished,
                },
            );
        }
    }
}

fn run_delay_timer(receiver: Receiver<Delayed>, network: std::sync::Weak<Network>) {
    let mut queue: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
    loop {
        let wait = queue
            .peek()
            .map_or(Duration::from_millis(100), |Reverse(d)| {
                d.due.saturating_duration_since(Instant::now())
            });
        match receiver.recv_timeout(wait) {
            Ok(delayed) => queue.push(Reverse(delayed)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        while queue.peek().is_some_and(|Reverse(d)| d.due <= now) {
            let Reverse(d) = queue.pop().expect("peeked");
            let Some(network) = network.upgrade() else {
                return;
            };
            network.deliver(d.from, d.msg, d.is_snapshot);
        }
    }
}

/// One store's way out onto the [`Network`].
#[derive(Clone)]
pub struct ChannelTransport {
    pub store_id: u64,
    pub network: Arc<Network>,
}

impl Transport for ChannelTransport {
    fn send(&self, msg: RaftMessage) {
        self.network.send(self.store_id, msg, false);
    }

    fn send_snapshot(&self, msg: RaftMessage) {
        self.network.send(self.store_id, msg, true);
    }
}
