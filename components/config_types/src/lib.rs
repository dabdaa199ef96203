//! Human-readable units for TOML configuration, in the form TiKV and PD accept:
//! durations such as `"50ms"`, `"3s"`, `"30m"`, `"1h30m"` and sizes such as `"8KiB"`, `"96MiB"`.
//!
//! Both types serialize back to the same notation, so a printed config can be loaded again.

use std::{fmt, str::FromStr, time::Duration};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A duration written with units: `ms`, `s`, `m`, `h`, `d`, combinable (`"1h30m"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadableDuration(pub Duration);

impl ReadableDuration {
    pub const fn millis(ms: u64) -> Self {
        ReadableDuration(Duration::from_millis(ms))
    }

    pub const fn secs(secs: u64) -> Self {
        ReadableDuration(Duration::from_secs(secs))
    }

    pub const fn minutes(minutes: u64) -> Self {
        ReadableDuration(Duration::from_secs(minutes * 60))
    }
}

const DURATION_UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl FromStr for ReadableDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration; write it like \"10s\" or \"30m\"".into());
        }
        let mut total_ms: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("invalid duration {text:?}: expected a number"));
            }
            let value: u64 = rest[..digits]
                .parse()
                .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let scale = DURATION_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, scale)| *scale)
                .ok_or_else(|| {
                    format!(
                        "invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m, h or d)"
                    )
                })?;
            total_ms = value
                .checked_mul(scale)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| format!("duration {text:?} is too large"))?;
        }
        Ok(ReadableDuration(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for ReadableDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return write!(f, "0s");
        }
        for (unit, scale) in DURATION_UNITS {
            if ms >= scale {
                write!(f, "{}{unit}", ms / scale)?;
                ms %= scale;
            }
        }
        Ok(())
    }
}

/// A size in bytes written with binary units: `B`, `KiB`, `MiB`, `GiB`, `TiB` (`KB`, `MB`, ...
/// are accepted as the same binary units, as TiKV does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadableSize(pub u64);

impl ReadableSize {
    pub const fn kib(n: u64) -> Self {
        ReadableSize(n << 10)
    }

    pub const fn mib(n: u64) -> Self {
        ReadableSize(n << 20)
    }
}

const SIZE_UNITS: [(&str, u64); 5] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

impl FromStr for ReadableSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let digits = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let value: u64 = trimmed[..digits]
            .parse()
            .map_err(|_| format!("invalid size {text:?}: write it like \"96MiB\""))?;
        let unit = trimmed[digits..].trim();
        let scale = match unit {
            "" | "B" => 1,
            "K" | "KB" | "KiB" => 1 << 10,
            "M" | "MB" | "MiB" => 1 << 20,
            "G" | "GB" | "GiB" => 1 << 30,
            "T" | "TB" | "TiB" => 1 << 40,
            _ => return Err(format!("invalid size {text:?}: unknown unit {unit:?}")),
        };
        value
            .checked_mul(scale)
            .map(ReadableSize)
            .ok_or_else(|| format!("size {text:?} is too large"))
    }
}

impl fmt::Display for ReadableSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in SIZE_UNITS {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

macro_rules! serde_via_string {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$ty, E> {
                        text.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

serde_via_string!(ReadableDuration, "a duration such as \"10s\" or \"30m\"");
serde_via_string!(ReadableSize, "a size such as \"8KiB\" or \"96MiB\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        let cases = [
            ("50ms", 50),
            ("3s", 3_000),
            ("30m", 1_800_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("1s500ms", 1_500),
        ];
        for (text, ms) in cases {
            let d: ReadableDuration = text.parse().unwrap();
            assert_eq!(d, ReadableDuration::millis(ms), "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_eq!(ReadableDuration::default().to_string(), "0s");
        for bad in ["", "10", "s", "10x", "1.5s"] {
            assert!(bad.parse::<ReadableDuration>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(
            "8KiB".parse::<ReadableSize>().unwrap(),
            ReadableSize::kib(8)
        );
        assert_eq!(
            "96MB".parse::<ReadableSize>().unwrap(),
            ReadableSize::mib(96)
        );
        assert_eq!("100".parse::<ReadableSize>().unwrap(), ReadableSize(100));
        assert_eq!(ReadableSize::mib(96).to_string(), "96MiB");
        assert_eq!(ReadableSize(1000).to_string(), "1000B");
        assert!("12XB".parse::<ReadableSize>().is_err());
    }

    #[test]
    fn toml_round_trip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Sample {
            wait: ReadableDuration,
            size: ReadableSize,
        }
        let sample: Sample = toml::from_str("wait = \"10s\"\nsize = \"1GiB\"").unwrap();
        assert_eq!(sample.wait, ReadableDuration::secs(10));
        assert_eq!(sample.size, ReadableSize(1 << 30));
        let text = toml::to_string(&sample).unwrap();
        assert_eq!(toml::from_str::<Sample>(&text).unwrap(), sample);
        let err = toml::from_str::<Sample>("wait = \"10 parsecs\"\nsize = \"1GiB\"").unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
    }
}
