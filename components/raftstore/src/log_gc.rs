//! How far a peer may compact its raft log: never past what the data engine has made durable.
//!
//! Apply writes to the data engine without syncing. Entries applied but not yet synced would be
//! lost with a power failure, and must then be applied again from the raft log, so the log
//! keeps them until a sync of the data engine has covered them (TiKV syncs the data engine
//! before raft log GC too). The store's ticker syncs the data engine before each GC tick and
//! counts the syncs; a peer compacts only up to an applied index it saw before the latest one.

/// A peer's record of the last applied index it saw, and how many data-engine syncs had
/// completed by then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurableApplied {
    candidate: Option<(u64, u64)>,
}

impl DurableApplied {
    /// Called at each GC tick with the applied index and the number of completed syncs.
    /// Returns the highest applied index a sync is known to have covered, if any.
    pub fn on_gc_tick(&mut self, applied_index: u64, syncs: u64) -> Option<u64> {
        let durable = self
            .candidate
            .filter(|&(_, seen)| syncs > seen)
            .map(|(index, _)| index);
        // Keep an uncovered candidate: replacing it each tick would never let one be covered.
        if durable.is_some() || self.candidate.is_none() {
            self.candidate = Some((applied_index, syncs));
        }
        durable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_index_seen_before_a_later_sync_is_durable() {
        let mut d = DurableApplied::default();
        // Applied up to 10 with 3 syncs done: nothing is known durable yet.
        assert_eq!(d.on_gc_tick(10, 3), None);
        // No sync since: 10 may still be in memory only.
        assert_eq!(d.on_gc_tick(15, 3), None);
        // A sync completed after 10 was seen.
        assert_eq!(d.on_gc_tick(20, 4), Some(10));
        // 20 was seen with 4 syncs; it needs a fifth.
        assert_eq!(d.on_gc_tick(30, 4), None);
        assert_eq!(d.on_gc_tick(40, 5), Some(20));
    }
}
