//! Storage configuration.

use crate::{Error, Result};

/// TiKV's default limit on key size: 8 KiB.
pub const DEFAULT_MAX_KEY_SIZE: usize = 8 * 1024;
/// TiKV's default `scheduler-pending-write-threshold`: 100 MiB.
pub const DEFAULT_SCHEDULER_PENDING_WRITE_THRESHOLD: usize = 100 * 1024 * 1024;

/// Settings of the storage layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// The largest user key, in bytes, a write may carry. Larger keys are refused with
    /// [`Error::KeyTooLarge`]. Default: 8 KiB, as in TiKV.
    pub max_key_size: usize,
    /// Transactional writes are refused with ServerIsBusy while the writes in flight add up to
    /// more than this many bytes. Default 100 MiB, as in TiKV.
    pub scheduler_pending_write_threshold: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            max_key_size: DEFAULT_MAX_KEY_SIZE,
            scheduler_pending_write_threshold: DEFAULT_SCHEDULER_PENDING_WRITE_THRESHOLD,
        }
    }
}

impl StorageConfig {
    /// Checks that the settings make sense together.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `max_key_size` is zero.
    pub fn validate(&self) -> Result<()> {
        if self.max_key_size == 0 {
            return Err(Error::InvalidConfig {
                reason: "max-key-size must be positive".into(),
            });
        }
        if self.scheduler_pending_write_threshold == 0 {
            return Err(Error::InvalidConfig {
                reason: "scheduler-pending-write-threshold must be positive".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_zero_key_size_is_not() {
        let config = StorageConfig::default();
        assert_eq!(config.max_key_size, 8192);
        config.validate().unwrap();
        let zero = StorageConfig {
            max_key_size: 0,
            ..StorageConfig::default()
        };
        assert!(matches!(zero.validate(), Err(Error::InvalidConfig { .. })));
    }
}
