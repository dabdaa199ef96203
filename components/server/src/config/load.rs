//! Loading a config file written for TiKV.
//!
//! The file is parsed into a TOML table and walked against two schemas: ours (the keys of
//! [`Config`], taken from its serialized default) and TiKV's ([`tikv_keys`]). A key of ours
//! stays; a TiKV key we do not implement is removed and reported as an [`IgnoredKey`]; any
//! other key is an error naming it. What remains is deserialized strictly into [`Config`]
//! (`deny_unknown_fields` still guards it), with the original text at hand for error messages.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::tikv_keys::{self, Keys};
use super::{Config, GrpcCompressionType};

const NOT_IMPLEMENTED: &str = "not implemented by this store";
const NO_RAFTDB: &str = "raft logs are kept in raft-engine, not in a RocksDB raftdb";
const NOT_COMPRESSED: &str = "responses are not compressed";

/// A TiKV key in the config file that this store accepts but does not act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredKey {
    /// The full dotted name, e.g. `rocksdb.max-open-files`.
    pub key: String,
    /// Why it has no effect.
    pub reason: &'static str,
}

impl fmt::Display for IgnoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.reason)
    }
}

/// A loaded config and the TiKV keys in it that have no effect here, sorted by key.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    pub ignored: Vec<IgnoredKey>,
}

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
        let mut root = DeTable::parse(text).map_err(|e| e.to_string())?;
        let ours = toml::Table::try_from(Config::default())
            .map_err(|e| format!("serialize the default config: {e}"))?;
        let mut walk = Walk {
            text,
            ignored: Vec::new(),
        };
        walk.table(root.get_mut(), "", Some(&ours), tikv_keys::section(""))?;
        let config = Config::deserialize(toml::de::Deserializer::from(root)).map_err(|mut e| {
            e.set_input(Some(text));
            e.to_string()
        })?;
        let mut ignored = walk.ignored;
        if config.server.grpc_compression_type != GrpcCompressionType::None {
            ignored.push(IgnoredKey {
                key: "server.grpc-compression-type".into(),
                reason: NOT_COMPRESSED,
            });
        }
        ignored.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LoadedConfig { config, ignored })
    }
}

struct Walk<'t> {
    text: &'t str,
    ignored: Vec<IgnoredKey>,
}

impl Walk<'_> {
    /// Sorts the keys of `table` (at dotted `path`): ours stay, TiKV's others are removed into
    /// `ignored`, anything else is an error. `ours` is our schema for this table (`None` when
    /// we implement nothing of it), `tikv` TiKV's keys for it (`None` when it is not TiKV's).
    fn table(
        &mut self,
        table: &mut DeTable<'_>,
        path: &str,
        ours: Option<&toml::Table>,
        tikv: Option<Keys>,
    ) -> Result<(), String> {
        let keys: Vec<(String, usize)> = table
            .keys()
            .map(|key| (key.get_ref().to_string(), key.span().start))
            .collect();
        for (key, offset) in keys {
            let full = join(path, &key);
            let ours_value = ours.and_then(|ours| ours.get(&key));
            let value = table
                .get_mut(key.as_str())
                .expect("key was just listed")
                .get_mut();
            match (ours_value, value) {
                (Some(toml::Value::Table(ours_sub)), DeValue::Table(sub)) => {
                    self.table(sub, &full, Some(ours_sub), tikv_keys::section(&full))?;
                }
                // A value of ours of the wrong type: deserialization names the problem.
                (Some(_), _) => {}
                (None, DeValue::Table(sub)) if tikv_keys::section(&full).is_some() => {
                    self.table(sub, &full, None, tikv_keys::section(&full))?;
                    table.remove(key.as_str());
                }
                (None, value) if tikv.is_some_and(|keys| tikv_keys::has_key(keys, &key)) => {
                    self.ignore_all(&full, value);
                    table.remove(key.as_str());
                }
                (None, value) => {
                    let what = if matches!(value, DeValue::Table(_)) {
                        "section"
                    } else {
                        "key"
                    };
                    return Err(format!(
                        "unknown {what} `{full}` at line {} (neither a tikv-server nor a TiKV \
                         config key; check its spelling and section)",
                        self.line_of(offset)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reports a TiKV key we do not implement: one entry per key, or per key of a free-form
    /// table such as `server.labels`.
    fn ignore_all(&mut self, full: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(sub) if !sub.is_empty() => {
                for (key, value) in sub.iter() {
                    self.ignore_all(&join(full, key.get_ref()), value.get_ref());
                }
            }
            _ => self.ignored.push(IgnoredKey {
                key: full.to_string(),
                reason: reason_for(full),
            }),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }
}

fn reason_for(key: &str) -> &'static str {
    if key.starts_with("raftdb.") {
        NO_RAFTDB
    } else {
        NOT_IMPLEMENTED
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
