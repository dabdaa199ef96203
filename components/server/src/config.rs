//! tikv-server configuration: a TOML file (`--config`) with TiKV's sections, overridden by
//! command-line flags. `etc/tikv.toml` lists every key with its default.

use std::path::{Path, PathBuf};

use config_types::ReadableSize;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageSection,
    pub pd: PdConfig,
    pub raftstore: raftstore::Config,
    /// When regions split by size (TiKV keeps these under `[coprocessor]`).
    pub coprocessor: raftstore::SplitCheckConfig,
    pub log: LogConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on for clients and other stores. Default `"127.0.0.1:20160"`.
    pub addr: String,
    /// Address given to PD for clients and stores. Default: `addr`.
    pub advertise_addr: String,
    /// Address of the status server (`/metrics`, `/status`). Default `"127.0.0.1:20180"`.
    pub status_addr: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:20160".into(),
            advertise_addr: String::new(),
            status_addr: "127.0.0.1:20180".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct StorageSection {
    /// Where data and raft logs are kept. Default `"./tikv-data"`.
    pub data_dir: PathBuf,
    /// Largest key a write may carry. Default `"8KiB"`.
    pub max_key_size: ReadableSize,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            data_dir: PathBuf::from("./tikv-data"),
            max_key_size: ReadableSize::kib(8),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct PdConfig {
    /// PD client URLs. Default `["127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
}

impl Default for PdConfig {
    fn default() -> Self {
        PdConfig {
            endpoints: vec!["127.0.0.1:2379".into()],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`. Default `"info"`.
    pub level: String,
    pub file: LogFile,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            file: LogFile::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogFile {
    /// Log file; empty means standard error. Default empty.
    pub filename: String,
}

impl Config {
    /// Reads a TOML config file; unknown keys are errors.
    ///
    /// # Errors
    ///
    /// A message naming the file and the problem.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
    }

    /// Fills derived defaults and checks the values.
    ///
    /// # Errors
    ///
    /// A message naming the bad setting.
    pub fn finish(&mut self) -> Result<(), String> {
        if self.server.advertise_addr.is_empty() {
            self.server.advertise_addr = self.server.addr.clone();
        }
        if self.pd.endpoints.is_empty() {
            return Err("pd.endpoints must name at least one PD".into());
        }
        for endpoint in &mut self.pd.endpoints {
            if let Some(rest) = endpoint.strip_prefix("http://") {
                *endpoint = rest.to_string();
            }
        }
        if self.storage.max_key_size.0 == 0 {
            return Err("storage.max-key-size must not be 0".into());
        }
        self.raftstore.validate()?;
        self.coprocessor.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_file_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/tikv.toml");
        assert_eq!(Config::from_file(&path).unwrap(), Config::default());
    }

    #[test]
    fn derived_defaults() {
        let mut config = Config::default();
        config.pd.endpoints = vec!["http://127.0.0.1:2379".into()];
        config.finish().unwrap();
        assert_eq!(config.server.advertise_addr, "127.0.0.1:20160");
        assert_eq!(config.pd.endpoints, ["127.0.0.1:2379"]);
        let err = toml::from_str::<Config>("[server]\nadr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("adr"), "{err}");
    }
}
