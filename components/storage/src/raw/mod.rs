//! The raw KV API: [`RawStorage`], plain key-value reads and writes with TTL and
//! compare-and-swap, on any [`Engine`].
//!
//! * [`encoding`]: how values (with expire time) are stored; keys: [`crate::api_version`].
//! * `read` / `write`: the commands, one `impl RawStorage` block each. Writes hold the
//!   storage-wide latches ([`crate::latch`]) of their keys, which makes compare-and-swap atomic.
//! * [`service`]: `kvrpcpb::Raw*Request` → `kvrpcpb::Raw*Response` for the gRPC service.
//!
//! Every command takes the request's `kvrpcpb::Context`, which names the region and the API
//! version, and a column family name (`""` means `"default"`). The engine keeps reads and writes
//! inside the region; a request that reached the wrong one fails with a region error.

pub mod encoding;
mod read;
pub mod service;
mod write;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use engine_traits::{CfName, Peekable};
use kvproto::kvrpcpb;

pub use encoding::RawValue;
pub use read::RawChecksum;

pub use crate::api_version::ApiVersion;
use crate::kv::Engine;
use crate::latch::Latches;
use crate::{Error, Result, StorageConfig};

/// A source of the current Unix time in seconds. Injected so that tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock. A clock set before 1970 reads as 0.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    })
}

/// A user key and its value, as scans and batch gets return them.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// How a scan walks its range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// The most pairs to return; 0 returns none.
    pub limit: usize,
    /// Return keys with empty values.
    pub key_only: bool,
    /// Walk downwards. The range bounds then arrive swapped, as the client sends them: the
    /// request's start key is the exclusive upper bound and its end key the inclusive lower one.
    pub reverse: bool,
}

/// What a compare-and-swap found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasOutcome {
    /// The live value before the swap (`None` when absent or expired).
    pub previous: Option<Vec<u8>>,
    /// Whether the new value was written.
    pub succeed: bool,
}

/// Raw KV commands over an [`Engine`]. Cheap to clone; clones share the engine and latches.
#[derive(Clone)]
pub struct RawStorage<E: Engine> {
    engine: E,
    config: StorageConfig,
    clock: Clock,
    latches: Arc<Latches>,
}

impl<E: Engine> RawStorage<E> {
    /// Storage on `engine` that reads time from the system clock, with latches of its own.
    /// `config` should have passed [`StorageConfig::validate`].
    pub fn new(engine: E, config: StorageConfig) -> Self {
        Self::with_clock(engine, config, system_clock())
    }

    /// Storage that reads the current time (for TTLs) from `clock`, with latches of its own.
    pub fn with_clock(engine: E, config: StorageConfig, clock: Clock) -> Self {
        Self::with_latches(engine, config, clock, Arc::new(Latches::default()))
    }

    /// Storage that shares `latches` with the transactional half (see [`crate::Storage`]).
    pub(crate) fn with_latches(
        engine: E,
        config: StorageConfig,
        clock: Clock,
        latches: Arc<Latches>,
    ) -> Self {
        RawStorage {
            engine,
            config,
            clock,
            latches,
        }
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    fn now_secs(&self) -> u64 {
        (self.clock)()
    }

    /// Refuses user keys longer than `max_key_size`.
    fn check_key_size(&self, key: &[u8]) -> Result<()> {
        let limit = self.config.max_key_size;
        if key.len() > limit {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                limit,
            });
        }
        Ok(())
    }
}

/// Parses the API version and column family every raw request carries.
fn parse_request(ctx: &kvrpcpb::Context, cf: &str) -> Result<(ApiVersion, CfName)> {
    Ok((ApiVersion::from_context(ctx)?, cf_name(cf)?))
}

/// Maps a request's column family name to the engine's; `""` means `"default"`. The raft CF
/// holds replica metadata and is never served.
///
/// # Errors
/// [`Error::InvalidCf`] for any other name.
pub fn cf_name(cf: &str) -> Result<CfName> {
    engine_traits::data_cf(cf).ok_or_else(|| Error::InvalidCf { cf: cf.to_owned() })
}

/// Reads the live value of a storage key: `None` when it is absent or expired at `now_secs`.
fn read_live(
    snapshot: &impl Peekable,
    cf: CfName,
    storage_key: &[u8],
    now_secs: u64,
) -> Result<Option<RawValue>> {
    let Some(stored) = snapshot.get_value_cf(cf, storage_key)? else {
        return Ok(None);
    };
    let value = RawValue::decode(&stored)?;
    Ok((!value.is_expired(now_secs)).then_some(value))
}
