//! Loading a config file written for the program a server stands in for: a TiKV config file for
//! tikv-server, a PD config file for pd-server.
//!
//! The file is parsed into a TOML table and walked against two schemas: ours (the keys of the
//! server's config type, taken from its serialized default) and the foreign program's
//! ([`KeyTable`]). A key of ours stays; a foreign key we do not implement is removed and reported
//! as an [`IgnoredKey`]; any other key is an error naming it and its line. What remains is
//! deserialized strictly into the config type (`deny_unknown_fields` still guards it), with the
//! original text at hand for error messages.
//!
//! Each server keeps only its key table (data) and its special cases; the walk is shared.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::de::{DeTable, DeValue};

/// The keys of one section of a foreign program's config.
#[derive(Clone, Copy, Debug)]
pub enum Keys {
    /// Exactly these keys.
    Listed(&'static [&'static str]),
    /// Any key: maps such as TiKV's `server.labels` or PD's `[label-property]`.
    Any,
}

impl Keys {
    /// Whether `key` belongs to this section.
    pub fn contains(self, key: &str) -> bool {
        match self {
            Keys::Listed(listed) => listed.contains(&key),
            Keys::Any => true,
        }
    }
}

/// A config section (`""` for the top level, `"rocksdb.defaultcf"` for a nested table).
#[derive(Clone, Copy, Debug)]
pub struct Section {
    pub path: &'static str,
    pub keys: Keys,
}

/// A section with exactly `keys` (sub-sections are sections of their own).
pub const fn listed(path: &'static str, keys: &'static [&'static str]) -> Section {
    Section {
        path,
        keys: Keys::Listed(keys),
    }
}

/// A section that takes any key.
pub const fn any(path: &'static str) -> Section {
    Section {
        path,
        keys: Keys::Any,
    }
}

/// The config keys of a foreign program, and how to talk about them.
#[derive(Clone, Copy, Debug)]
pub struct KeyTable {
    /// The foreign program, as messages name it: `"TiKV"`, `"PD"`.
    pub program: &'static str,
    /// Our server, as messages name it: `"tikv-server"`, `"pd-server"`.
    pub server: &'static str,
    /// Every section of the foreign program's config. A section's own key list does not repeat
    /// its sub-sections.
    pub sections: &'static [Section],
    /// Why a foreign key has no effect here, given its full dotted name.
    pub reason: fn(&str) -> &'static str,
}

impl KeyTable {
    /// The keys of the section at dotted `path`, or `None` if the foreign program has no such
    /// section. A section that only holds sub-sections (TiKV's `readpool`) has no keys of its
    /// own.
    pub fn section(&self, path: &str) -> Option<Keys> {
        if let Some(found) = self.sections.iter().find(|s| s.path == path) {
            return Some(found.keys);
        }
        let is_parent = self.sections.iter().any(|s| {
            s.path
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.'))
        });
        is_parent.then_some(Keys::Listed(&[]))
    }
}

/// A foreign key in the config file that the server accepts but does not act on.
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

/// A loaded config and the foreign keys in its file that have no effect, sorted by key.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<C> {
    pub config: C,
    pub ignored: Vec<IgnoredKey>,
}

/// Parses config `text`, which may be a file written for `foreign.program`, into `C`.
///
/// Our schema is `C::default()` serialized: a key of ours is any key it has (so every field
/// must serialize, even when empty), a section of ours any table in it.
///
/// # Errors
///
/// A message naming the problem: not TOML, a key that is neither ours nor the foreign
/// program's (with its line), or a value of the wrong type.
pub fn load<C>(text: &str, foreign: &KeyTable) -> Result<Loaded<C>, String>
where
    C: Default + Serialize + DeserializeOwned,
{
    let mut root = DeTable::parse(text).map_err(|e| e.to_string())?;
    let ours = toml::Table::try_from(C::default())
        .map_err(|e| format!("serialize the default config: {e}"))?;
    let mut walk = Walk {
        text,
        foreign,
        ignored: Vec::new(),
    };
    walk.table(root.get_mut(), "", Some(&ours), foreign.section(""))?;
    let config = C::deserialize(toml::de::Deserializer::from(root)).map_err(|mut e| {
        e.set_input(Some(text));
        e.to_string()
    })?;
    let mut ignored = walk.ignored;
    ignored.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Loaded { config, ignored })
}

struct Walk<'t> {
    text: &'t str,
    foreign: &'t KeyTable,
    ignored: Vec<IgnoredKey>,
}

impl Walk<'_> {
    /// Sorts the keys of `table` (at dotted `path`): ours stay, the foreign program's others are
    /// removed into `ignored`, anything else is an error. `ours` is our schema for this table
    /// (`None` when we implement nothing of it), `theirs` the foreign keys for it (`None` when
    /// it is not a foreign section).
    fn table(
        &mut self,
        table: &mut DeTable<'_>,
        path: &str,
        ours: Option<&toml::Table>,
        theirs: Option<Keys>,
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
                    self.table(sub, &full, Some(ours_sub), self.foreign.section(&full))?;
                }
                // A value of ours of the wrong type: deserialization names the problem.
                (Some(_), _) => {}
                (None, DeValue::Table(sub)) if self.foreign.section(&full).is_some() => {
                    self.table(sub, &full, None, self.foreign.section(&full))?;
                    table.remove(key.as_str());
                }
                (None, value) if theirs.is_some_and(|keys| keys.contains(&key)) => {
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
                        "unknown {what} `{full}` at line {} (neither a {} nor a {} config key; \
                         check its spelling and section)",
                        self.line_of(offset),
                        self.foreign.server,
                        self.foreign.program,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reports a foreign key we do not implement: one entry per key, or per key of a free-form
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
                reason: (self.foreign.reason)(full),
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

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
    struct Ours {
        name: String,
        part: Part,
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
    struct Part {
        size: u64,
    }

    static SECTIONS: &[Section] = &[
        listed("", &["name", "lease"]),
        listed("part", &["size", "speed"]),
        listed("other.nested", &["depth"]),
        any("labels"),
    ];

    fn reason(key: &str) -> &'static str {
        if key.starts_with("other.") {
            "other is elsewhere"
        } else {
            "not here"
        }
    }

    static THEIRS: KeyTable = KeyTable {
        program: "Theirs",
        server: "our-server",
        sections: SECTIONS,
        reason,
    };

    fn keys(loaded: &Loaded<Ours>) -> Vec<(&str, &str)> {
        loaded
            .ignored
            .iter()
            .map(|k| (k.key.as_str(), k.reason))
            .collect()
    }

    #[test]
    fn ours_stay_theirs_are_reported_by_key_and_reason() {
        let text = "name = \"a\"\nlease = 3\n[part]\nsize = 7\nspeed = 1\n\
                    [other.nested]\ndepth = 2\n[labels]\nzone = \"z\"\n";
        let loaded: Loaded<Ours> = load(text, &THEIRS).unwrap();
        assert_eq!(loaded.config.name, "a");
        assert_eq!(loaded.config.part.size, 7);
        assert_eq!(
            keys(&loaded),
            [
                ("labels.zone", "not here"),
                ("lease", "not here"),
                ("other.nested.depth", "other is elsewhere"),
                ("part.speed", "not here"),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_sections_name_both_programs_and_the_line() {
        let cases = [
            (
                "[part]\n\nsise = 1",
                "unknown key `part.sise` at line 3 (neither a our-server nor a Theirs config key",
            ),
            ("[prat]\nsize = 1", "unknown section `prat` at line 1"),
            ("[other.nestd]\ndepth = 1", "`other.nestd`"),
            ("[other]\ndepth = 1", "unknown key `other.depth`"),
        ];
        for (text, expected) in cases {
            let err = load::<Ours>(text, &THEIRS).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn values_of_ours_are_checked_strictly() {
        let err = load::<Ours>("[part]\nsize = \"big\"", &THEIRS).unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = load::<Ours>("name = [", &THEIRS).unwrap_err();
        assert!(!err.is_empty());
    }
}
