//! Per-key latches, shared by the raw and the transactional halves of storage.
//!
//! A command that reads and then writes (a raw compare-and-swap, every transactional command)
//! has awaits between its read and its write. Each holds the latches of its keys from before its
//! read until its write is applied, so no other write to those keys can slip in between: a CAS
//! stays atomic, and a transactional command sees the locks and records it is about to change.
//!
//! Latches live in a fixed table of slots chosen by key hash: two keys may share a slot, which
//! costs some concurrency but never correctness. A request takes its slots in ascending order,
//! so two multi-key requests cannot deadlock.
//!
//! The latches only serialize requests in this process. That is enough because writes to a
//! region go through its leader, and the leader is the only place a raw write is served; a
//! leader change while a CAS is in flight makes its write fail with a region error instead.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use futures::lock::{Mutex, MutexGuard};

/// Enough slots that unrelated keys rarely share one, few enough to be cheap.
pub const DEFAULT_LATCH_SLOTS: usize = 1024;

/// A fixed table of key latches.
pub struct Latches {
    slots: Vec<Mutex<()>>,
}

/// Latches held by one request; dropping it releases them.
pub struct LatchGuard<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl Default for Latches {
    fn default() -> Self {
        Latches::new(DEFAULT_LATCH_SLOTS)
    }
}

impl Latches {
    /// # Panics
    /// When `slots` is zero.
    pub fn new(slots: usize) -> Self {
        assert!(slots > 0, "a latch table needs at least one slot");
        Latches {
            slots: (0..slots).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits until this request holds the latches of every key it names. Raw writes name
    /// `(cf, key)` pairs, transactional commands encoded keys.
    pub async fn acquire<K: Hash>(&self, keys: impl IntoIterator<Item = K>) -> LatchGuard<'_> {
        let mut slots: Vec<usize> = keys.into_iter().map(|key| self.slot(&key)).collect();
        slots.sort_unstable();
        slots.dedup();
        let mut guards = Vec::with_capacity(slots.len());
        for slot in slots {
            guards.push(self.slots[slot].lock().await);
        }
        LatchGuard { _guards: guards }
    }

    fn slot(&self, key: &impl Hash) -> usize {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        // The remainder is below `slots.len()`, so it fits in usize.
        (hasher.finish() % self.slots.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn same_key_waits_other_key_does_not() {
        let latches = Latches::new(DEFAULT_LATCH_SLOTS);
        let held = latches
            .acquire([("default", &b"k"[..])])
            .now_or_never()
            .expect("a free latch is taken at once");
        assert!(latches
            .acquire([("default", &b"k"[..])])
            .now_or_never()
            .is_none());
        assert!(latches
            .acquire([("default", &b"other"[..])])
            .now_or_never()
            .is_some());
        drop(held);
        assert!(latches
            .acquire([("default", &b"k"[..])])
            .now_or_never()
            .is_some());
    }

    #[test]
    fn one_slot_serializes_everything_without_self_deadlock() {
        let latches = Latches::new(1);
        let keys = [("default", &b"a"[..]), ("write", &b"b"[..])];
        let held = latches
            .acquire(keys)
            .now_or_never()
            .expect("slots deduplicated");
        assert!(latches
            .acquire([("lock", &b"c"[..])])
            .now_or_never()
            .is_none());
        drop(held);
    }
}
