//! pd-server configuration: a TOML file (`--config`) whose keys follow PD's, overridden by
//! command-line flags. Every field has a documented default; `etc/pd.toml` lists them all.
//!
//! A config file written for PD loads as it is: the keys this PD implements are honoured, PD's
//! other keys ([`pd_keys`]) are accepted and reported as [`IgnoredKey`]s, and any other key is
//! an error naming it and its line (see [`Config::from_file`]).

pub mod pd_keys;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use config_types::foreign::{self, Loaded};
use config_types::ReadableDuration;
use serde::{Deserialize, Serialize};

use crate::cluster::ReplicationConfig;

pub use config_types::foreign::IgnoredKey;

/// A loaded config and the PD keys in its file that have no effect here, sorted by key.
pub type LoadedConfig = Loaded<Config>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Human-readable name of this PD member. Default `"pd"`.
    pub name: String,
    /// Where metadata is kept. Default `"default.{name}"`, as PD.
    pub data_dir: PathBuf,
    /// Comma-separated URLs to listen on for gRPC and HTTP. Default `"http://127.0.0.1:2379"`.
    pub client_urls: String,
    /// URLs given to clients. Default: `client-urls`.
    pub advertise_client_urls: String,
    /// URLs for PD-to-PD traffic. Recorded in the member list; a single PD does not listen on
    /// them. Default `"http://127.0.0.1:2380"`.
    pub peer_urls: String,
    /// Default: `peer-urls`.
    pub advertise_peer_urls: String,
    /// How far ahead of the clock the TSO window is saved. Default `"3s"`.
    pub tso_save_interval: ReadableDuration,
    pub log: LogConfig,
    pub replication: ReplicationConfig,
    pub schedule: ScheduleConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "pd".into(),
            data_dir: PathBuf::new(),
            client_urls: "http://127.0.0.1:2379".into(),
            advertise_client_urls: String::new(),
            peer_urls: "http://127.0.0.1:2380".into(),
            advertise_peer_urls: String::new(),
            tso_save_interval: ReadableDuration::secs(3),
            log: LogConfig::default(),
            replication: ReplicationConfig::default(),
            schedule: ScheduleConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`. Default `"info"`.
    pub level: String,
    pub file: LogFileConfig,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            file: LogFileConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogFileConfig {
    /// Log file; empty means standard error. Default empty.
    pub filename: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScheduleConfig {
    /// After this long without a heartbeat a store is down and its replicas are replaced.
    /// Default `"30m"`.
    pub max_store_down_time: ReadableDuration,
    /// How often the patrol runs the checkers over the next batch of 128 regions, so that PD
    /// acts on a region without waiting for its leader's next heartbeat. Default `"100ms"`
    /// (PD's is 10ms): a pass over 10,000 regions in 8 s.
    pub patrol_region_interval: ReadableDuration,
    /// Leadership transfers the leader balancer runs at once; 0 turns it off. Default 4 (PD's).
    pub leader_schedule_limit: u64,
    /// How uneven PD's balancers leave the stores. For leaders (counted by regions) it is a
    /// number of regions: a leadership moves only when its store leads more than twice this
    /// many regions more than the target. 0 (the default, PD's) means 5.
    pub tolerant_size_ratio: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            max_store_down_time: ReadableDuration::minutes(30),
            patrol_region_interval: ReadableDuration::millis(100),
            leader_schedule_limit: 4,
            tolerant_size_ratio: 0.0,
        }
    }
}

impl ScheduleConfig {
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if `max-store-down-time` is zero, which would declare every
    /// store down between two heartbeats, or `patrol-region-interval` is zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_store_down_time.0.is_zero() {
            return Err(ConfigError::Invalid(
                "schedule.max-store-down-time must be positive".into(),
            ));
        }
        if !(self.tolerant_size_ratio >= 0.0 && self.tolerant_size_ratio.is_finite()) {
            return Err(ConfigError::Invalid(
                "schedule.tolerant-size-ratio must be a number >= 0".into(),
            ));
        }
        if self.patrol_region_interval.0.is_zero() {
            return Err(ConfigError::Invalid(
                "schedule.patrol-region-interval must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML config file, which may be one written for PD.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], or [`ConfigError::Parse`] for a file that is not TOML, a value of
    /// the wrong type, or a key that is neither ours nor PD's (so typos do not pass silently).
    pub fn from_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses config text; see [`Config::from_file`].
    ///
    /// # Errors
    ///
    /// A message naming the problem and, for unknown keys, the key and its line.
    pub fn from_toml(text: &str) -> Result<LoadedConfig, String> {
        foreign::load(text, &pd_keys::PD)
    }

    /// Fills derived defaults and checks the values.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the bad setting.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::Invalid("name must not be empty".into()));
        }
        if self.data_dir.as_os_str().is_empty() {
            self.data_dir = PathBuf::from(format!("default.{}", self.name));
        }
        if self.advertise_client_urls.is_empty() {
            self.advertise_client_urls = self.client_urls.clone();
        }
        if self.advertise_peer_urls.is_empty() {
            self.advertise_peer_urls = self.peer_urls.clone();
        }
        for url in self.listen_addrs()? {
            if url.is_empty() {
                return Err(ConfigError::Invalid(
                    "client-urls has an empty entry".into(),
                ));
            }
        }
        if self.tso_save_interval.0.as_millis() < 1 {
            return Err(ConfigError::Invalid(
                "tso-save-interval must be at least 1ms".into(),
            ));
        }
        self.replication
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.schedule.validate()?;
        Ok(())
    }

    /// Returns the `host:port` addresses to listen on, from `client-urls`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a URL with a scheme other than `http`.
    pub fn listen_addrs(&self) -> Result<Vec<String>, ConfigError> {
        split_urls(&self.client_urls)
            .map(|url| strip_scheme(url).map(str::to_string))
            .collect()
    }
}

/// Splits a comma-separated URL list.
pub fn split_urls(urls: &str) -> impl Iterator<Item = &str> {
    urls.split(',').map(str::trim).filter(|u| !u.is_empty())
}

/// Returns the `host:port` of `http://host:port` or of a bare `host:port`.
///
/// # Errors
///
/// [`ConfigError::Invalid`] for TLS or another scheme, which this PD does not serve.
pub fn strip_scheme(url: &str) -> Result<&str, ConfigError> {
    let rest = match url.split_once("://") {
        None => url,
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(ConfigError::Invalid(format!(
                "URL {url:?}: scheme {scheme:?} is not supported; use http://host:port"
            )))
        }
    };
    Ok(rest.trim_end_matches('/'))
}
