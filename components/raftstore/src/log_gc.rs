//! How far a peer may compact its raft log: never past what the data engine has made durable.
//!
//! Apply writes to the data engine without syncing, and by default without RocksDB's WAL
//! (`[rocksdb] disable-wal`): entries applied but not yet made durable are lost with a crash
//! (without the WAL, with a `kill -9` too) and must then be applied again from the raft log, so
//! the log keeps them until a sync of the data engine (a memtable flush without the WAL, a WAL
//! sync with it) has covered them. A store thread syncs the data engine every GC interval and
//! counts the syncs; a peer compacts only up to an applied index it saw before a sync that
//! started after it and has completed.

use std::sync::atomic::{AtomicU64, Ordering};

/// The data engine's syncs: how many have started, and the number of the last that completed.
#[derive(Debug, Default)]
pub struct KvSyncs {
    started: AtomicU64,
    completed: AtomicU64,
}

impl KvSyncs {
    /// Runs `sync` as the next sync, counting it completed when it succeeds. Two threads may
    /// sync at once (the kv syncer and the snapshot applier): a sync numbered `n` started
    /// after every sync before it, so once it completes, what was written before the start of
    /// sync `n - 1` is durable whatever the order they finish in.
    ///
    /// # Errors
    ///
    /// `sync`'s error; the sync then does not count.
    pub fn run<E>(&self, sync: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let number = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        sync()?;
        self.completed.fetch_max(number, Ordering::AcqRel);
        Ok(())
    }

    fn started(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }
}

/// A peer's record of the last applied index it saw, and how many data-engine syncs had
/// started by then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurableApplied {
    candidate: Option<(u64, u64)>,
}

impl DurableApplied {
    /// Called at each GC tick with the applied index, whose writes are all in the engine.
    /// Returns the highest applied index a completed sync is known to have covered, if any: a
    /// sync that was already running when the index was seen may have missed its writes.
    pub fn on_gc_tick(&mut self, applied_index: u64, syncs: &KvSyncs) -> Option<u64> {
        let completed = syncs.completed();
        let durable = self
            .candidate
            .filter(|&(_, started_before)| completed > started_before)
            .map(|(index, _)| index);
        // Keep an uncovered candidate: replacing it each tick would never let one be covered.
        if durable.is_some() || self.candidate.is_none() {
            self.candidate = Some((applied_index, syncs.started()));
        }
        durable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(syncs: &KvSyncs) {
        syncs.run(|| Ok::<(), ()>(())).unwrap();
    }

    #[test]
    fn only_an_index_seen_before_a_later_sync_is_durable() {
        let syncs = KvSyncs::default();
        let mut d = DurableApplied::default();
        // Applied up to 10: nothing is known durable yet.
        assert_eq!(d.on_gc_tick(10, &syncs), None);
        // No sync since: 10 may still be in memory only.
        assert_eq!(d.on_gc_tick(15, &syncs), None);
        sync(&syncs);
        assert_eq!(d.on_gc_tick(20, &syncs), Some(10));
        // 20 was seen after that sync; it needs another.
        assert_eq!(d.on_gc_tick(30, &syncs), None);
        sync(&syncs);
        assert_eq!(d.on_gc_tick(40, &syncs), Some(20));
    }

    #[test]
    fn a_sync_running_when_the_index_was_seen_does_not_cover_it() {
        let syncs = KvSyncs::default();
        let mut d = DurableApplied::default();
        syncs
            .run(|| {
                // The flush switched its memtables before index 10's writes.
                assert_eq!(d.on_gc_tick(10, &syncs), None);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(
            d.on_gc_tick(12, &syncs),
            None,
            "the sync began before 10 was seen"
        );
        sync(&syncs);
        assert_eq!(d.on_gc_tick(14, &syncs), Some(10));
    }

    #[test]
    fn a_failed_sync_covers_nothing() {
        let syncs = KvSyncs::default();
        let mut d = DurableApplied::default();
        assert_eq!(d.on_gc_tick(10, &syncs), None);
        assert_eq!(syncs.run(|| Err("disk full")), Err("disk full"));
        assert_eq!(d.on_gc_tick(12, &syncs), None);
    }
}
