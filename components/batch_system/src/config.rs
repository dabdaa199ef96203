//! Configuration of one batch system.

use std::time::Duration;

use crate::error::{Error, Result};

/// How many pollers run and how they share their time between FSMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Number of poller threads. Default 2.
    pub pool_size: usize,
    /// Most FSMs (control included) a poller handles in one round.
    /// Default 256: big enough to amortise `begin`/`end` (e.g. one write
    /// batch per round), small enough to keep rounds short.
    pub max_batch_size: usize,
    /// Time slice of a busy FSM. Once an FSM has stayed in a poller's batch
    /// this long and other FSMs are waiting for room, it is sent to the back
    /// of the queue. Default 5s, as in TiKV.
    pub reschedule_duration: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pool_size: 2,
            max_batch_size: 256,
            reschedule_duration: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Checks that the values can run a system.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `pool_size` or `max_batch_size` is zero.
    pub fn validate(&self) -> Result<()> {
        if self.pool_size == 0 {
            return Err(Error::InvalidConfig {
                field: "pool_size",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.max_batch_size == 0 {
            return Err(Error::InvalidConfig {
                field: "max_batch_size",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_zero_sizes_are_not() {
        assert!(Config::default().validate().is_ok());
        let cases = [
            (
                "pool_size",
                Config {
                    pool_size: 0,
                    ..Config::default()
                },
            ),
            (
                "max_batch_size",
                Config {
                    max_batch_size: 0,
                    ..Config::default()
                },
            ),
        ];
        for (expected, config) in cases {
            match config.validate() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, expected),
                other => panic!("{expected}: unexpected {other:?}"),
            }
        }
    }
}
