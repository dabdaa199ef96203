//! The timestamp oracle.
//!
//! A timestamp is `physical << 18 | logical`: wall-clock milliseconds and an 18-bit counter.
//! Timestamps are strictly increasing for the life of the cluster:
//!
//! * **Across restarts.** Before any timestamp with physical time `p` is issued, a window end
//!   `w > p` is saved durably (`timestamp` key). A restarted PD starts at `max(now, w)`, above
//!   everything issued before. The window is saved `save_interval` (3 s) ahead, and renewed in
//!   the background before it runs out, so a sync write is rarely on the request path.
//! * **When the wall clock steps back.** The physical part never decreases; the logical counter
//!   keeps running until the clock catches up.
//! * **When a millisecond is used up.** If a batch does not fit in the remaining logical
//!   values, the physical part moves to the next millisecond (possibly ahead of the clock, as
//!   PD does) and the batch starts at logical 0, so a batch always shares one physical time.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use kvproto::pdpb;
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::{
    error::{PdError, Result},
    storage::{encode_u64, keys, load_u64, MetaStore},
};

/// Number of bits of the logical part.
pub const LOGICAL_BITS: u32 = 18;
/// Logical values per millisecond.
pub const MAX_LOGICAL: u64 = 1 << LOGICAL_BITS;
/// The largest batch one request may ask for.
pub const MAX_BATCH: u32 = 1 << 16;

/// Milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    })
}

/// A timestamp as PD hands it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub physical: u64,
    pub logical: u64,
}

impl Timestamp {
    /// Returns the 64-bit version: `physical << 18 | logical`.
    pub fn version(self) -> u64 {
        self.physical << LOGICAL_BITS | self.logical
    }

    pub fn to_pb(self) -> pdpb::Timestamp {
        pdpb::Timestamp {
            physical: self.physical as i64,
            logical: self.logical as i64,
            suffix_bits: 0,
        }
    }
}

struct State {
    physical: u64,
    /// The last logical value handed out in `physical`, or 0 if none (values start at 1).
    logical: u64,
    /// No timestamp with physical time at or above this is issued until it is raised durably.
    window_end: u64,
}

pub struct TimestampOracle {
    store: Arc<dyn MetaStore>,
    clock: Clock,
    save_interval: u64,
    state: Mutex<State>,
}

impl TimestampOracle {
    /// Loads the saved window and starts above it.
    ///
    /// # Errors
    ///
    /// A storage error if the window cannot be read or the new one cannot be saved.
    pub fn open(store: Arc<dyn MetaStore>, clock: Clock, save_interval: Duration) -> Result<Self> {
        let saved = load_u64(store.as_ref(), keys::TIMESTAMP)?.unwrap_or(0);
        let now = clock();
        if now < saved {
            warn!(
                saved_window_ms = saved,
                now_ms = now,
                "system clock is behind the saved TSO window; timestamps continue from the window"
            );
        }
        let physical = now.max(saved);
        let oracle = TimestampOracle {
            store,
            clock,
            save_interval: save_interval.as_millis().max(1) as u64,
            state: Mutex::new(State {
                physical,
                logical: 0,
                window_end: saved,
            }),
        };
        {
            let mut state = oracle.state.lock();
            oracle.save_window(&mut state)?;
        }
        info!(physical_ms = physical, "timestamp oracle started");
        Ok(oracle)
    }

    /// Allocates `count` consecutive timestamps and returns the last (highest) one; the batch is
    /// `last.logical - count + 1 ..= last.logical`, all with `last.physical`.
    ///
    /// # Errors
    ///
    /// [`PdError::InvalidValue`] if `count` is 0 or above [`MAX_BATCH`]; a storage error if the
    /// window has to be extended and cannot be saved (nothing is issued then).
    pub fn allocate(&self, count: u32) -> Result<Timestamp> {
        if count == 0 || count > MAX_BATCH {
            return Err(PdError::invalid(format!(
                "tso count must be in 1..={MAX_BATCH}, got {count}"
            )));
        }
        let count = u64::from(count);
        let now = (self.clock)();
        let mut state = self.state.lock();
        if now > state.physical {
            state.physical = now;
            state.logical = 0;
        }
        if state.logical + count >= MAX_LOGICAL {
            state.physical += 1;
            state.logical = 0;
        }
        if state.physical >= state.window_end {
            self.save_window(&mut state)?;
        }
        state.logical += count;
        Ok(Timestamp {
            physical: state.physical,
            logical: state.logical,
        })
    }

    /// Extends the saved window if it ends within a third of the save interval; called
    /// periodically so that requests rarely wait for a sync write.
    ///
    /// # Errors
    ///
    /// A storage error if the window cannot be saved.
    pub fn renew_window(&self) -> Result<()> {
        let now = (self.clock)();
        let mut state = self.state.lock();
        if state.physical.max(now) + self.save_interval / 3 >= state.window_end {
            self.save_window(&mut state)?;
        }
        Ok(())
    }

    /// Returns the last timestamp handed out (or the starting point if none was).
    pub fn last(&self) -> Timestamp {
        let state = self.state.lock();
        Timestamp {
            physical: state.physical,
            logical: state.logical,
        }
    }

    fn save_window(&self, state: &mut State) -> Result<()> {
        let now = (self.clock)();
        let window_end = state.physical.max(now) + self.save_interval;
        self.store
            .put(keys::TIMESTAMP.to_string(), encode_u64(window_end))?;
        state.window_end = window_end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::storage;

    fn manual_clock(start: u64) -> (Arc<AtomicU64>, Clock) {
        let time = Arc::new(AtomicU64::new(start));
        let reader = time.clone();
        (time, Arc::new(move || reader.load(Ordering::SeqCst)))
    }

    fn oracle(store: &Arc<dyn MetaStore>, clock: &Clock) -> TimestampOracle {
        TimestampOracle::open(store.clone(), clock.clone(), Duration::from_secs(3)).unwrap()
    }

    #[test]
    fn batches_are_consecutive_and_increasing() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let (_, clock) = manual_clock(1_000_000);
        let tso = oracle(&store, &clock);
        let mut last = 0;
        for count in [1, 5, 64, 1, 3] {
            let ts = tso.allocate(count).unwrap();
            let first = ts.version() - u64::from(count) + 1;
            assert!(first > last, "batch starts above the previous one");
            assert_eq!(ts.physical, 1_000_000);
            last = ts.version();
        }
        assert_eq!(tso.last().version(), last);
    }

    #[test]
    fn full_millisecond_moves_to_the_next_one() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let (_, clock) = manual_clock(5_000);
        let tso = oracle(&store, &clock);
        let mut prev = tso.allocate(1).unwrap();
        for _ in 0..(MAX_LOGICAL / u64::from(MAX_BATCH)) + 2 {
            let ts = tso.allocate(MAX_BATCH).unwrap();
            assert!(ts.logical < MAX_LOGICAL);
            assert!(
                ts.logical >= u64::from(MAX_BATCH),
                "whole batch in one physical ms"
            );
            assert!(ts.version() - u64::from(MAX_BATCH) >= prev.version());
            prev = ts;
        }
        assert!(prev.physical > 5_000);
    }

    #[test]
    fn clock_stepping_back_never_lowers_timestamps() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let (time, clock) = manual_clock(10_000);
        let tso = oracle(&store, &clock);
        let before = tso.allocate(10).unwrap();
        time.store(9_000, Ordering::SeqCst);
        let after = tso.allocate(1).unwrap();
        assert!(after > before);
        assert_eq!(after.physical, 10_000);
        time.store(10_001, Ordering::SeqCst);
        assert_eq!(tso.allocate(1).unwrap().physical, 10_001);
    }

    #[test]
    fn restart_continues_above_the_saved_window() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let (time, clock) = manual_clock(50_000);
        let last = {
            let tso = oracle(&store, &clock);
            time.store(52_000, Ordering::SeqCst);
            tso.allocate(3).unwrap()
        };
        // The clock stepped back across the restart.
        time.store(40_000, Ordering::SeqCst);
        let tso = oracle(&store, &clock);
        let next = tso.allocate(1).unwrap();
        assert!(next > last, "{next:?} must be above {last:?}");
    }

    #[test]
    fn window_is_saved_before_it_is_used() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let (time, clock) = manual_clock(1_000);
        let tso = oracle(&store, &clock);
        for now in [1_000, 3_999, 4_000, 9_000, 20_000] {
            time.store(now, Ordering::SeqCst);
            let ts = tso.allocate(1).unwrap();
            let saved = load_u64(store.as_ref(), keys::TIMESTAMP).unwrap().unwrap();
            assert!(ts.physical < saved, "ts {ts:?} beyond saved window {saved}");
        }
        time.store(22_500, Ordering::SeqCst);
        tso.renew_window().unwrap();
        let saved = load_u64(store.as_ref(), keys::TIMESTAMP).unwrap().unwrap();
        assert_eq!(saved, 25_500);
    }

    #[test]
    fn bad_counts_are_rejected() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let (_, clock) = manual_clock(1);
        let tso = oracle(&store, &clock);
        assert!(matches!(tso.allocate(0), Err(PdError::InvalidValue { .. })));
        assert!(matches!(
            tso.allocate(MAX_BATCH + 1),
            Err(PdError::InvalidValue { .. })
        ));
    }
}
