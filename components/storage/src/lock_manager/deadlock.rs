//! Deadlock detection (TiKV's `deadlock.rs`): a wait-for graph of transactions, and the
//! [`DeadlockDetector`] a store's lock manager reports its waits to.
//!
//! One graph serves the whole cluster, kept by the detector leader: the store that leads the
//! region holding the empty key. Every store sends it an edge `txn → wait_for_txn` when a
//! pessimistic lock request parks, and removes the edge when the wait ends. An edge that would
//! close a cycle is refused with the cycle instead, and its waiter answers `Deadlock`.
//! Edges expire after a TTL (the longest a request may wait), so a lost clean-up cannot leave
//! a phantom cycle behind.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvproto::deadlock::{DeadlockResponse, WaitForEntry};
use parking_lot::Mutex;

/// The hash of a raw key in wait-for entries (TiKV uses farmhash; any hash all stores share
/// will do: it names a key in a cycle without carrying it).
pub fn key_hash(raw_key: &[u8]) -> u64 {
    let mut digest = crc64fast::Digest::new();
    digest.write(raw_key);
    digest.sum64()
}

/// Hears about the cycle a wait would close.
pub type DeadlockCallback = Box<dyn FnOnce(DeadlockResponse) + Send>;

/// Where a store sends its waits. Implemented in-process by [`LocalDetector`] and, across
/// stores, by the server's client of the detector leader.
pub trait DeadlockDetector: Send + Sync + 'static {
    /// Records that `entry.txn` waits for `entry.wait_for_txn`, unless that closes a cycle:
    /// then nothing is recorded and `on_deadlock` hears the cycle, now or (from a remote
    /// detector) later. A detector that cannot be reached never calls it; the waiter then
    /// waits out its timeout.
    fn detect(&self, entry: WaitForEntry, on_deadlock: DeadlockCallback);

    /// The wait described by `entry` ended.
    fn clean_up_wait_for(&self, entry: WaitForEntry);

    /// Every wait of `txn` ended.
    fn clean_up(&self, txn: u64);
}

/// A detector kept in this process (a single store, or the detector leader itself).
#[derive(Clone)]
pub struct LocalDetector {
    graph: Arc<Mutex<WaitForGraph>>,
}

impl LocalDetector {
    /// A detector whose edges expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        LocalDetector {
            graph: Arc::new(Mutex::new(WaitForGraph::new(ttl))),
        }
    }

    /// The graph, for the detector service (it answers other stores from it).
    pub fn graph(&self) -> &Arc<Mutex<WaitForGraph>> {
        &self.graph
    }
}

impl DeadlockDetector for LocalDetector {
    fn detect(&self, entry: WaitForEntry, on_deadlock: DeadlockCallback) {
        let cycle = self.graph.lock().detect(entry, Instant::now());
        if let Some(cycle) = cycle {
            on_deadlock(cycle);
        }
    }

    fn clean_up_wait_for(&self, entry: WaitForEntry) {
        self.graph.lock().clean_up_wait_for(&entry);
    }

    fn clean_up(&self, txn: u64) {
        self.graph.lock().clean_up(txn);
    }
}

/// One `txn → wait_for_txn` edge: the keys `txn` waits on, and when it was last reported.
struct Edge {
    entries: Vec<WaitForEntry>,
    reported: Instant,
}

/// Transactions and what each waits for.
pub struct WaitForGraph {
    /// waiter → (waited-for → edge).
    edges: HashMap<u64, HashMap<u64, Edge>>,
    ttl: Duration,
    /// When expired edges were last dropped from the whole graph.
    last_sweep: Instant,
}

impl WaitForGraph {
    pub fn new(ttl: Duration) -> Self {
        WaitForGraph {
            edges: HashMap::new(),
            ttl,
            last_sweep: Instant::now(),
        }
    }

    /// Adds `entry`'s edge, or returns the cycle it would close: `entry` itself and, in
    /// `wait_chain`, the edges from `entry.wait_for_txn` back to `entry.txn`.
    /// `deadlock_key_hash` is the key of the last of those: the one `entry.txn` holds.
    pub fn detect(&mut self, entry: WaitForEntry, now: Instant) -> Option<DeadlockResponse> {
        self.sweep(now);
        if let Some(chain) = self.path(entry.wait_for_txn, entry.txn, now) {
            let deadlock_key_hash = chain.last().map_or(0, |e| e.key_hash);
            return Some(DeadlockResponse {
                entry: Some(entry),
                deadlock_key_hash,
                wait_chain: chain,
            });
        }
        let edge = self
            .edges
            .entry(entry.txn)
            .or_default()
            .entry(entry.wait_for_txn)
            .or_insert_with(|| Edge {
                entries: vec![],
                reported: now,
            });
        edge.reported = now;
        if !edge.entries.iter().any(|e| e.key_hash == entry.key_hash) {
            edge.entries.push(entry);
        }
        None
    }

    /// Removes the wait of `entry.txn` for `entry.wait_for_txn` on `entry.key_hash`.
    pub fn clean_up_wait_for(&mut self, entry: &WaitForEntry) {
        let Some(targets) = self.edges.get_mut(&entry.txn) else {
            return;
        };
        if let Some(edge) = targets.get_mut(&entry.wait_for_txn) {
            edge.entries.retain(|e| e.key_hash != entry.key_hash);
            if edge.entries.is_empty() {
                targets.remove(&entry.wait_for_txn);
            }
        }
        if targets.is_empty() {
            self.edges.remove(&entry.txn);
        }
    }

    /// Removes every wait of `txn`.
    pub fn clean_up(&mut self, txn: u64) {
        self.edges.remove(&txn);
    }

    /// Every live edge, one entry per key waited on.
    pub fn entries(&self, now: Instant) -> Vec<WaitForEntry> {
        self.edges
            .values()
            .flat_map(HashMap::values)
            .filter(|edge| !self.expired(edge, now))
            .flat_map(|edge| edge.entries.iter().cloned())
            .collect()
    }

    fn expired(&self, edge: &Edge, now: Instant) -> bool {
        now.saturating_duration_since(edge.reported) > self.ttl
    }

    /// The edges of a path `from → ... → to`, if one exists over live edges.
    fn path(&mut self, from: u64, to: u64, now: Instant) -> Option<Vec<WaitForEntry>> {
        self.drop_expired_edges_of(from, now);
        // Depth-first, remembering the edge each transaction was reached by.
        let mut reached_by: HashMap<u64, (u64, WaitForEntry)> = HashMap::new();
        let mut seen = HashSet::from([from]);
        let mut stack = vec![from];
        while let Some(txn) = stack.pop() {
            let Some(targets) = self.edges.get(&txn) else {
                continue;
            };
            for (&next, edge) in targets {
                if self.expired(edge, now) || !seen.insert(next) {
                    continue;
                }
                reached_by.insert(next, (txn, edge.entries[0].clone()));
                if next == to {
                    return Some(Self::unwind(&reached_by, from, to));
                }
                stack.push(next);
            }
        }
        None
    }

    /// The edges from `from` to `to` along `reached_by`, in order.
    fn unwind(
        reached_by: &HashMap<u64, (u64, WaitForEntry)>,
        from: u64,
        to: u64,
    ) -> Vec<WaitForEntry> {
        let mut chain = vec![];
        let mut txn = to;
        while txn != from {
            let (previous, entry) = &reached_by[&txn];
            chain.push(entry.clone());
            txn = *previous;
        }
        chain.reverse();
        chain
    }

    /// Once per TTL, forgets every expired edge: waits whose clean-up was lost (a broken stream,
    /// a leader change) must not pile up.
    fn sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) < self.ttl {
            return;
        }
        self.last_sweep = now;
        let ttl = self.ttl;
        self.edges.retain(|_, targets| {
            targets.retain(|_, edge| now.saturating_duration_since(edge.reported) <= ttl);
            !targets.is_empty()
        });
    }

    /// Forgets the expired edges of `txn`, so the graph does not grow with dead waits.
    fn drop_expired_edges_of(&mut self, txn: u64, now: Instant) {
        let ttl = self.ttl;
        if let Some(targets) = self.edges.get_mut(&txn) {
            targets.retain(|_, edge| now.saturating_duration_since(edge.reported) <= ttl);
            if targets.is_empty() {
                self.edges.remove(&txn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(txn: u64, wait_for_txn: u64, key: &[u8]) -> WaitForEntry {
        WaitForEntry {
            txn,
            wait_for_txn,
            key_hash: key_hash(key),
            key: key.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn the_edge_closing_a_cycle_is_refused_with_the_cycle() {
        let mut graph = WaitForGraph::new(Duration::from_secs(3));
        let now = Instant::now();
        assert!(graph.detect(wait(1, 2, b"b"), now).is_none());
        assert!(graph.detect(wait(2, 3, b"c"), now).is_none());
        let deadlock = graph.detect(wait(3, 1, b"a"), now).unwrap();
        assert_eq!(deadlock.entry.unwrap().txn, 3);
        let chain: Vec<_> = deadlock
            .wait_chain
            .iter()
            .map(|e| (e.txn, e.wait_for_txn))
            .collect();
        assert_eq!(chain, [(1, 2), (2, 3)]);
        // Txn 3 holds the key txn 2 waits on.
        assert_eq!(deadlock.deadlock_key_hash, key_hash(b"c"));
        // The refused edge was not recorded: txn 1 may still wait for txn 2.
        assert_eq!(graph.entries(now).len(), 2);
    }

    #[test]
    fn waits_that_ended_or_expired_close_no_cycle() {
        let mut graph = WaitForGraph::new(Duration::from_secs(3));
        let now = Instant::now();
        assert!(graph.detect(wait(1, 2, b"b"), now).is_none());
        graph.clean_up_wait_for(&wait(1, 2, b"b"));
        assert!(graph.detect(wait(2, 1, b"a"), now).is_none());
        graph.clean_up(2);
        assert!(graph.entries(now).is_empty());

        assert!(graph.detect(wait(1, 2, b"b"), now).is_none());
        let later = now + Duration::from_secs(4);
        assert!(graph.detect(wait(2, 1, b"a"), later).is_none());
        assert_eq!(graph.entries(later).len(), 1);
        // The expired edge is gone from memory too, not only ignored.
        assert_eq!(graph.edges.len(), 1);
    }

    #[test]
    fn a_transaction_waiting_on_two_keys_of_another_keeps_the_edge_until_both_end() {
        let mut graph = WaitForGraph::new(Duration::from_secs(3));
        let now = Instant::now();
        assert!(graph.detect(wait(1, 2, b"a"), now).is_none());
        assert!(graph.detect(wait(1, 2, b"b"), now).is_none());
        graph.clean_up_wait_for(&wait(1, 2, b"a"));
        assert!(graph.detect(wait(2, 1, b"c"), now).is_some());
    }
}
