//! Loading a config file written for TiKV.
//!
//! The shared walk ([`config_types::foreign`]) sorts the file's keys against ours (the keys of
//! [`Config`]) and TiKV's ([`tikv_keys`]): a key of ours stays; a TiKV key we do not implement
//! is removed and reported as an [`IgnoredKey`]; any other key is an error naming it and its
//! line. What remains is deserialized strictly into [`Config`]. This file keeps what is
//! particular to tikv-server: a key of ours whose value can make it ineffective.

use std::path::Path;

use config_types::foreign::{self, Loaded};

pub use config_types::foreign::IgnoredKey;

use super::tikv_keys::TIKV;
use super::{Config, GrpcCompressionType};

const NOT_COMPRESSED: &str = "responses are not compressed";
const NOT_PIPELINED: &str = "pessimistic locks are replicated before the answer";

/// A loaded config and the TiKV keys in it that have no effect here, sorted by key.
pub type LoadedConfig = Loaded<Config>;

impl Config {
    /// Reads a TOML config file, which may be one written for TiKV.
    ///
    /// # Errors
    ///
    /// A message naming the file and the problem: unreadable, not TOML, a key that is neither
    /// ours nor TiKV's, or a value of the wrong type.
    pub fn from_file(path: &Path) -> Result<LoadedConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Config::from_toml(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
    }

    /// Parses config text; see [`Config::from_file`].
    ///
    /// # Errors
    ///
    /// A message naming the problem and, for unknown keys, the key and its line.
    pub fn from_toml(text: &str) -> Result<LoadedConfig, String> {
        let mut loaded: LoadedConfig = foreign::load(text, &TIKV)?;
        if loaded.config.server.grpc_compression_type != GrpcCompressionType::None {
            loaded.ignored.push(IgnoredKey {
                key: "server.grpc-compression-type".into(),
                reason: NOT_COMPRESSED,
            });
        }
        if loaded.config.pessimistic_txn.pipelined {
            loaded.ignored.push(IgnoredKey {
                key: "pessimistic-txn.pipelined".into(),
                reason: NOT_PIPELINED,
            });
        }
        loaded.ignored.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(loaded)
    }
}
