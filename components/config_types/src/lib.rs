//! Human-readable units for TOML configuration, in the form TiKV and PD accept:
//! durations such as `"50ms"`, `"3s"`, `"30m"`, `"1h30m"` and sizes such as `"8KiB"`, `"96MiB"`.
//!
//! Both types serialize back to the same notation, so a printed config can be loaded again.
//!
//! [`foreign`] loads a config file written for the program a server stands in for (TiKV or PD):
//! the foreign program's keys that the server does not implement are accepted and reported,
//! anything else unknown is an error. This crate depends on nothing of ours.

pub mod foreign;

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

/// A size in bytes written with binary units: `B`, `KiB`, `MiB`, `GiB`, `TiB`, `PiB`.
///
/// As in TiKV's config files, `KB`, `MB`, `GB`, `TB`, `PB` and the bare `K`, `M`, `G`, `T`, `P`
/// mean the same binary units (`"1MB"` is 1,048,576 bytes), the number may have a decimal
/// fraction (`"1.5GiB"`), and a bare TOML integer is a count of bytes (`max-key-size = 8192`).
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

const SIZE_UNITS: [(&str, u64); 6] = [
    ("PiB", 1 << 50),
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
        let number_len = trimmed
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(number_len);
        let unit = unit.trim();
        let scale: u64 = match unit {
            "" | "B" => 1,
            "K" | "KB" | "KiB" => 1 << 10,
            "M" | "MB" | "MiB" => 1 << 20,
            "G" | "GB" | "GiB" => 1 << 30,
            "T" | "TB" | "TiB" => 1 << 40,
            "P" | "PB" | "PiB" => 1 << 50,
            _ => {
                return Err(format!(
                "invalid size {text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB or PiB)"
            ))
            }
        };
        let bad_number = || format!("invalid size {text:?}: write it like \"96MiB\"");
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad_number());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad_number())?
        };
        // The fraction is exact in u128 arithmetic: at most 18 digits times a 2^50 scale.
        let fraction_bytes = if fraction.is_empty() {
            0
        } else if fraction.len() > 18 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_number());
        } else {
            let digits: u128 = fraction.parse().map_err(|_| bad_number())?;
            let bytes = digits * u128::from(scale) / 10u128.pow(fraction.len() as u32);
            bytes as u64
        };
        whole
            .checked_mul(scale)
            .and_then(|bytes| bytes.checked_add(fraction_bytes))
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

impl Serialize for ReadableDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ReadableDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ReadableDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"10s\" or \"30m\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ReadableDuration, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl Serialize for ReadableSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ReadableSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ReadableSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"8KiB\" or \"96MiB\", or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ReadableSize, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<ReadableSize, E> {
                Ok(ReadableSize(bytes))
            }
            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<ReadableSize, E> {
                u64::try_from(bytes)
                    .map(ReadableSize)
                    .map_err(|_| E::custom(format!("a size cannot be negative: {bytes}")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

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
        assert_eq!(ReadableSize(1 << 50).to_string(), "1PiB");
        for bad in [
            "",
            "MB",
            ".MB",
            "12XB",
            "1.2.3MB",
            "-1MB",
            "1 MiB extra",
            "1mb",
        ] {
            assert!(bad.parse::<ReadableSize>().is_err(), "{bad:?}");
        }
        assert!("20000PB".parse::<ReadableSize>().is_err(), "overflow");
    }

    /// TiKV writes sizes with decimal-looking units that mean binary ones (its ReadableSize),
    /// as in the official clients' test configs: `"1MB"`, `"0MiB"`, `"1B"`.
    #[test]
    fn tikv_size_notation() {
        let cases = [
            ("1B", 1),
            ("0MiB", 0),
            ("1KB", 1 << 10),
            ("1MB", 1 << 20),
            ("1GB", 1 << 30),
            ("1TB", 1 << 40),
            ("1PB", 1 << 50),
            ("1PiB", 1 << 50),
            ("10M", 10 << 20),
            ("128 MiB", 128 << 20),
            ("1.5GiB", 3 << 29),
            ("0.5KB", 512),
            (".5KB", 512),
            ("2.", 2),
        ];
        for (text, bytes) in cases {
            assert_eq!(
                text.parse::<ReadableSize>(),
                Ok(ReadableSize(bytes)),
                "{text}"
            );
        }
    }

    #[test]
    fn a_bare_integer_size_is_bytes() {
        #[derive(Deserialize, Debug)]
        struct Sample {
            size: ReadableSize,
        }
        let sample: Sample = toml::from_str("size = 8192").unwrap();
        assert_eq!(sample.size, ReadableSize::kib(8));
        let err = toml::from_str::<Sample>("size = -1").unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
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
