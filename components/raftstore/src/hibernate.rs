//! What a store knows about hibernation (TiKV's hibernate regions; the per-peer side is in
//! `operation/hibernate.rs`): which of its replicas sleep, so that the ticker skips them, and
//! when each other store was last heard from, so that sleeping replicas wake when a store goes
//! silent (its leaders may be gone, and nothing else would make the followers elect).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

/// Shared by the raft pollers, the store FSM and the ticker of one store. Its locks are taken
/// when a replica falls asleep or wakes, and a few times a second by the ticker and the store
/// FSM, never per request.
#[derive(Default)]
pub struct Hibernation {
    /// Regions whose replica on this store sleeps.
    asleep: Mutex<HashSet<u64>>,
    stores: Mutex<Liveness>,
}

#[derive(Default)]
struct Liveness {
    stores: HashMap<u64, StoreSeen>,
    /// The last check: a store that was itself stalled longer than the timeout (a long pause,
    /// a starved CPU) cannot tell a silent store from its own deafness.
    last_check: Option<Instant>,
}

/// When another store was last heard from, and whether it has been silent since.
struct StoreSeen {
    last: Instant,
    silent: bool,
}

impl Hibernation {
    pub fn fall_asleep(&self, region_id: u64) {
        self.asleep.lock().insert(region_id);
    }

    pub fn wake(&self, region_id: u64) {
        self.asleep.lock().remove(&region_id);
    }

    /// The sleeping regions, held while the ticker picks the others.
    pub fn asleep(&self) -> MutexGuard<'_, HashSet<u64>> {
        self.asleep.lock()
    }

    /// Records that `store_id` was heard from at `now`.
    pub fn heard_from(&self, store_id: u64, now: Instant) {
        let mut liveness = self.stores.lock();
        let seen = liveness.stores.entry(store_id).or_insert(StoreSeen {
            last: now,
            silent: false,
        });
        seen.last = now;
        seen.silent = false;
    }

    /// Follows the stores this store shares regions with (`peers`), from `now` for one not
    /// followed yet, and returns those that went silent for longer than `timeout` since the
    /// last call: each is returned once per silence. After a gap of more than `timeout`
    /// since the last call, this store was stalled itself: silence is counted from `now`.
    pub fn newly_silent(&self, peers: &HashSet<u64>, now: Instant, timeout: Duration) -> Vec<u64> {
        let mut liveness = self.stores.lock();
        let stalled = liveness
            .last_check
            .replace(now)
            .is_some_and(|last| now.saturating_duration_since(last) > timeout);
        let stores = &mut liveness.stores;
        stores.retain(|store_id, _| peers.contains(store_id));
        if stalled {
            for seen in stores.values_mut() {
                seen.last = now;
            }
        }
        let mut silent = Vec::new();
        for store_id in peers {
            let seen = stores.entry(*store_id).or_insert(StoreSeen {
                last: now,
                silent: false,
            });
            if !seen.silent && now.saturating_duration_since(seen.last) > timeout {
                seen.silent = true;
                silent.push(*store_id);
            }
        }
        silent.sort_unstable();
        silent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_reported_silent_once_per_silence() {
        let hibernation = Hibernation::default();
        let timeout = Duration::from_secs(2);
        let start = Instant::now();
        let peers: HashSet<u64> = [2, 3].into();
        for second in 0..3 {
            let now = start + Duration::from_secs(second);
            assert!(hibernation.newly_silent(&peers, now, timeout).is_empty());
        }
        hibernation.heard_from(2, start + Duration::from_secs(2));
        let later = start + Duration::from_millis(3_100);
        assert_eq!(hibernation.newly_silent(&peers, later, timeout), vec![3]);
        assert!(
            hibernation.newly_silent(&peers, later, timeout).is_empty(),
            "reported once"
        );
        hibernation.heard_from(3, later);
        let much_later = later + Duration::from_secs(5);
        assert!(
            hibernation
                .newly_silent(&peers, much_later, timeout)
                .is_empty(),
            "this store was stalled for 5 s: it cannot tell"
        );
        let after = much_later + Duration::from_millis(2100);
        hibernation.newly_silent(&peers, much_later + Duration::from_secs(1), timeout);
        assert_eq!(hibernation.newly_silent(&peers, after, timeout), vec![2, 3]);
    }

    #[test]
    fn sleeping_regions_are_tracked() {
        let hibernation = Hibernation::default();
        hibernation.fall_asleep(7);
        hibernation.fall_asleep(8);
        hibernation.wake(7);
        assert_eq!(*hibernation.asleep(), [8].into());
    }
}
