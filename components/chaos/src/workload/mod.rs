//! Workloads: clients that run operations against the cluster through the official client and
//! record each one's invocation, completion and outcome for the checkers.

pub mod register;

use std::time::Instant;

/// Nanoseconds since the run's start, on one monotonic clock shared by all clients.
#[derive(Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}
