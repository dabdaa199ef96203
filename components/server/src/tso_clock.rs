//! The clock raw TTLs are measured with: PD's timestamp oracle, not this machine's clock.
//!
//! A raw value's expiry is written as Unix seconds by the leader that took the write, and every
//! later leader compares it with its own "now". With each store's wall clock, a store whose
//! clock is behind would bring expired keys back when it takes over, and one whose clock jumps
//! would expire keys early or keep them forever. Here every store's "now" follows PD's TSO:
//! the physical part of a timestamp fetched from PD, advanced by this machine's monotonic
//! clock since, refreshed periodically. It never goes backwards on a store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pd_client::PdClient;
use tracing::warn;

/// How often the clock is brought back to PD's time.
const REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// Unix time from PD's TSO. Cheap to share.
pub struct TsoClock {
    /// PD's physical time in milliseconds and when it was taken.
    base: Mutex<(u64, Instant)>,
}

impl TsoClock {
    /// A clock at PD's physical time `physical_ms` (a TSO timestamp's high bits).
    pub fn new(physical_ms: u64) -> Arc<TsoClock> {
        Arc::new(TsoClock {
            base: Mutex::new((physical_ms, Instant::now())),
        })
    }

    /// PD's time now, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        let (ms, at) = *self.base.lock();
        ms + at.elapsed().as_millis() as u64
    }

    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Moves the clock to a fresh PD time, if that is ahead of it: never backwards.
    pub fn observe(&self, physical_ms: u64) {
        let mut base = self.base.lock();
        if physical_ms > base.0 + base.1.elapsed().as_millis() as u64 {
            *base = (physical_ms, Instant::now());
        }
    }

    /// The clock as storage's raw TTL clock.
    pub fn as_raw_clock(self: &Arc<Self>) -> storage::raw::Clock {
        let clock = self.clone();
        Arc::new(move || clock.now_secs())
    }
}

/// Refreshes `clock` from PD every ten seconds, for as long as the task runs.
pub async fn keep_in_step(clock: Arc<TsoClock>, pd: Arc<PdClient>) {
    loop {
        tokio::time::sleep(REFRESH_INTERVAL).await;
        match pd.get_tso().await {
            Ok(ts) => clock.observe(ts >> 18),
            Err(e) => warn!(error = %e, "cannot refresh the TTL clock from PD; it runs on"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9, bug 12: TTLs used each store's wall clock.
    #[test]
    fn follows_pd_time_and_never_goes_back() {
        // PD's time, far from this machine's wall clock.
        let pd_ms = 5_000_000_000;
        let clock = TsoClock::new(pd_ms);
        assert_eq!(clock.now_secs(), pd_ms / 1000);
        clock.observe(pd_ms + 60_000);
        assert!(clock.now_ms() >= pd_ms + 60_000);
        // An older timestamp (a lagging PD answer) does not move it back.
        clock.observe(pd_ms);
        assert!(clock.now_ms() >= pd_ms + 60_000);
    }
}
