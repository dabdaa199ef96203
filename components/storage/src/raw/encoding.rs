//! How raw keys and values are laid out in the engine.
//!
//! # Keys
//!
//! | API version | user key | storage key |
//! |---|---|---|
//! | V1 (and V1TTL) | any bytes | the user key itself |
//! | V2 | `'r'` + 3-byte keyspace id + key | `memcomparable::encode(user key)` |
//!
//! In V2 the user key keeps its keyspace prefix and the whole of it is memcomparable encoded.
//! PD splits regions at *encoded* keyspace boundaries (`enc("r\0\0\0")`, `enc("r\0\0\1")`, ...),
//! so the engine key space must be PD's key space for a region's bounds to mean the same thing on
//! both sides. Encoding preserves order, so scans and range bounds encode the same way.
//!
//! Mixing API versions on one cluster is not supported. A V1 key that starts with `r` (or `x`)
//! bytes and happens to be a valid encoding collides with a V2 key; V2 scans skip V1 keys that
//! do not decode, and V1 scans see V2 keys in their encoded form.
//!
//! # Values
//!
//! Every raw value, in both API versions, is stored as
//!
//! ```text
//! user value | expire time (u64 big-endian Unix seconds, only with a TTL) | flags (1 byte)
//! ```
//!
//! with flag bit 0 meaning "has an expire time". This is TiKV's API V2 raw value layout. A value
//! whose expire time is not after the current time is expired and reads as missing.

use codec::memcomparable;
use kvproto::kvrpcpb;

use crate::{Error, Result};

/// The mode byte API V2 raw keys start with.
const RAW_MODE: u8 = b'r';
/// The byte after [`RAW_MODE`]: every raw key is below `[RAW_MODE_END]`.
const RAW_MODE_END: u8 = RAW_MODE + 1;

/// Flag bit 0 of a stored value: an expire time precedes the flags.
const FLAG_EXPIRE_TIME: u8 = 0b1;
const EXPIRE_TIME_LEN: usize = 8;

/// How a request's keys map to storage keys, from `Context.api_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    /// Plain keys: the storage key is the user key. Also used for `V1TTL`, which differs from
    /// V1 only in allowing TTLs, and storage allows them in every version.
    V1,
    /// Keyspace-prefixed keys, stored memcomparable encoded.
    V2,
}

impl ApiVersion {
    /// Reads the API version of a request.
    ///
    /// # Errors
    /// [`Error::InvalidApiVersion`] for a value that is not a `kvrpcpb::ApiVersion`.
    pub fn from_context(ctx: &kvrpcpb::Context) -> Result<Self> {
        match kvrpcpb::ApiVersion::try_from(ctx.api_version) {
            Ok(kvrpcpb::ApiVersion::V1 | kvrpcpb::ApiVersion::V1ttl) => Ok(ApiVersion::V1),
            Ok(kvrpcpb::ApiVersion::V2) => Ok(ApiVersion::V2),
            Err(_) => Err(Error::InvalidApiVersion {
                version: ctx.api_version,
            }),
        }
    }

    /// Returns the storage key of a user key.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMode`] in V2 when `key` does not start with `r`.
    pub fn encode_key(self, cmd: &'static str, key: &[u8]) -> Result<Vec<u8>> {
        match self {
            ApiVersion::V1 => Ok(key.to_vec()),
            ApiVersion::V2 if key.first() == Some(&RAW_MODE) => Ok(memcomparable::encode(key)),
            ApiVersion::V2 => Err(invalid_key_mode(cmd, key)),
        }
    }

    /// Returns the user key of a storage key, or `None` when the storage key cannot have been
    /// written through this API version (a V1 key seen by a V2 scan).
    pub fn decode_key(self, storage_key: &[u8]) -> Option<Vec<u8>> {
        match self {
            ApiVersion::V1 => Some(storage_key.to_vec()),
            ApiVersion::V2 => memcomparable::decode(storage_key)
                .ok()
                .filter(|key| key.first() == Some(&RAW_MODE)),
        }
    }

    /// Returns the storage key of an inclusive lower range bound. An empty bound means the
    /// start of the key space: empty in V1, the first raw key in V2.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMode`] in V2 for a non-empty bound outside the raw mode.
    pub fn encode_lower_bound(self, cmd: &'static str, key: &[u8]) -> Result<Vec<u8>> {
        match self {
            ApiVersion::V2 if key.is_empty() => Ok(memcomparable::encode(&[RAW_MODE])),
            _ => self.encode_key(cmd, key),
        }
    }

    /// Returns the storage key of an exclusive upper range bound. An empty bound means the end
    /// of the key space: empty (unbounded) in V1, the end of the raw mode in V2, which is past
    /// every raw key, so it acts as +∞ without reaching into transactional keys. In V2 the bound
    /// may also be the raw mode's end itself (`s` followed by zero bytes), which is what the
    /// client sends as the end of the last keyspace.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMode`] in V2 for a bound that is neither a raw key nor the raw end.
    pub fn encode_upper_bound(self, cmd: &'static str, key: &[u8]) -> Result<Vec<u8>> {
        match self {
            ApiVersion::V1 => Ok(key.to_vec()),
            ApiVersion::V2 if key.is_empty() => Ok(memcomparable::encode(&[RAW_MODE_END])),
            ApiVersion::V2 if is_raw_mode_end(key) => Ok(memcomparable::encode(key)),
            ApiVersion::V2 => self.encode_key(cmd, key),
        }
    }
}

fn is_raw_mode_end(key: &[u8]) -> bool {
    matches!(key.split_first(), Some((&RAW_MODE_END, rest)) if rest.iter().all(|&b| b == 0))
}

fn invalid_key_mode(cmd: &'static str, key: &[u8]) -> Error {
    Error::InvalidKeyMode {
        cmd,
        key: key.to_vec(),
    }
}

/// A raw value as stored: the user's bytes and when they expire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawValue {
    pub user_value: Vec<u8>,
    /// Unix seconds at which the value expires; `None` means never.
    pub expire_secs: Option<u64>,
}

impl RawValue {
    /// A value written at `now_secs` that lives `ttl_secs` seconds; a TTL of 0 means forever.
    pub fn new(user_value: Vec<u8>, ttl_secs: u64, now_secs: u64) -> Self {
        let expire_secs = (ttl_secs != 0).then(|| now_secs.saturating_add(ttl_secs));
        RawValue {
            user_value,
            expire_secs,
        }
    }

    /// Returns the stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.user_value.len() + EXPIRE_TIME_LEN + 1);
        out.extend_from_slice(&self.user_value);
        let mut flags = 0;
        if let Some(expire_secs) = self.expire_secs {
            out.extend_from_slice(&expire_secs.to_be_bytes());
            flags |= FLAG_EXPIRE_TIME;
        }
        out.push(flags);
        out
    }

    /// Parses stored bytes.
    ///
    /// # Errors
    /// [`Error::MalformedValue`] when the bytes lack the flag byte, carry unknown flags, or
    /// are too short for the expire time their flags announce.
    pub fn decode(stored: &[u8]) -> Result<Self> {
        let (&flags, rest) = stored.split_last().ok_or(Error::MalformedValue {
            reason: "missing flag byte",
        })?;
        if flags & !FLAG_EXPIRE_TIME != 0 {
            return Err(Error::MalformedValue {
                reason: "unknown flag bits",
            });
        }
        if flags & FLAG_EXPIRE_TIME == 0 {
            return Ok(RawValue {
                user_value: rest.to_vec(),
                expire_secs: None,
            });
        }
        let split = rest
            .len()
            .checked_sub(EXPIRE_TIME_LEN)
            .ok_or(Error::MalformedValue {
                reason: "too short for its expire time",
            })?;
        let (user_value, expire) = rest.split_at(split);
        let expire: [u8; EXPIRE_TIME_LEN] = expire
            .try_into()
            .expect("split leaves exactly EXPIRE_TIME_LEN bytes");
        Ok(RawValue {
            user_value: user_value.to_vec(),
            expire_secs: Some(u64::from_be_bytes(expire)),
        })
    }

    /// Whether the value is gone at `now_secs`.
    pub fn is_expired(&self, now_secs: u64) -> bool {
        self.expire_secs.is_some_and(|expire| expire <= now_secs)
    }

    /// Seconds left to live at `now_secs`; 0 for a value without TTL.
    pub fn remaining_ttl(&self, now_secs: u64) -> u64 {
        self.expire_secs
            .map_or(0, |expire| expire.saturating_sub(now_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_layout() {
        let cases: &[(&[u8], Option<u64>, &[u8])] = &[
            (b"", None, &[0]),
            (b"v", None, b"v\0"),
            (b"v", Some(0x0102), &[b'v', 0, 0, 0, 0, 0, 0, 1, 2, 1]),
            (
                b"",
                Some(u64::MAX),
                &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1],
            ),
        ];
        for &(user_value, expire_secs, stored) in cases {
            let value = RawValue {
                user_value: user_value.to_vec(),
                expire_secs,
            };
            assert_eq!(value.encode(), stored, "encode {value:?}");
            assert_eq!(
                RawValue::decode(stored).unwrap(),
                value,
                "decode {stored:?}"
            );
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        let cases: &[&[u8]] = &[b"", b"v\x02", &[0, 0, 0, 1], b"\x80"];
        for stored in cases {
            let result = RawValue::decode(stored);
            assert!(
                matches!(result, Err(Error::MalformedValue { .. })),
                "{stored:?}: {result:?}"
            );
        }
    }

    #[test]
    fn ttl_and_expiry() {
        let forever = RawValue::new(b"v".to_vec(), 0, 100);
        assert_eq!(forever.expire_secs, None);
        assert!(!forever.is_expired(u64::MAX));
        assert_eq!(forever.remaining_ttl(100), 0);

        let ten = RawValue::new(b"v".to_vec(), 10, 100);
        assert_eq!(ten.expire_secs, Some(110));
        assert_eq!(ten.remaining_ttl(100), 10);
        assert_eq!(ten.remaining_ttl(109), 1);
        assert!(!ten.is_expired(109));
        assert!(ten.is_expired(110));

        let huge = RawValue::new(vec![], u64::MAX, 100);
        assert_eq!(huge.expire_secs, Some(u64::MAX));
    }

    #[test]
    fn v1_keys_are_stored_as_is() {
        let v1 = ApiVersion::V1;
        assert_eq!(v1.encode_key("t", b"abc").unwrap(), b"abc");
        assert_eq!(v1.encode_lower_bound("t", b"").unwrap(), b"");
        assert_eq!(v1.encode_upper_bound("t", b"").unwrap(), b"");
        assert_eq!(v1.decode_key(b"abc"), Some(b"abc".to_vec()));
    }

    #[test]
    fn v2_keys_are_memcomparable_encoded() {
        let v2 = ApiVersion::V2;
        let key = b"r\0\0\0foo";
        let stored = v2.encode_key("t", key).unwrap();
        assert_eq!(stored, [0x72, 0, 0, 0, 0x66, 0x6F, 0x6F, 0, 0xFE]);
        assert_eq!(v2.decode_key(&stored), Some(key.to_vec()));
        assert_eq!(v2.decode_key(b"rabc"), None, "not an encoding");
        assert_eq!(v2.decode_key(&memcomparable::encode(b"xabc")), None);

        for bad in [&b"x\0\0\0foo"[..], b"", b"abc"] {
            let result = v2.encode_key("raw_put", bad);
            assert!(matches!(
                result,
                Err(Error::InvalidKeyMode { cmd: "raw_put", .. })
            ));
        }
    }

    #[test]
    fn v2_bounds_cover_exactly_the_raw_mode() {
        let v2 = ApiVersion::V2;
        let lower = v2.encode_lower_bound("t", b"").unwrap();
        let upper = v2.encode_upper_bound("t", b"").unwrap();
        for key in [
            &b"r"[..],
            b"r\0\0\0",
            b"r\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            let stored = v2.encode_key("t", key).unwrap();
            assert!(lower <= stored && stored < upper, "{key:?}");
        }
        assert!(memcomparable::encode(b"s") >= upper);
        assert!(memcomparable::encode(b"q\xff") < lower);

        // The end of the last keyspace is accepted as an upper bound, not as a lower bound.
        assert_eq!(
            v2.encode_upper_bound("t", b"s\0\0\0").unwrap(),
            memcomparable::encode(b"s\0\0\0")
        );
        assert!(v2.encode_lower_bound("t", b"s\0\0\0").is_err());
        assert!(v2.encode_upper_bound("t", b"s\0\0\x01").is_err());
        assert!(v2.encode_upper_bound("t", b"x\0\0\0").is_err());
    }

    #[test]
    fn api_version_from_context() {
        let ctx = |api_version| kvrpcpb::Context {
            api_version,
            ..Default::default()
        };
        assert_eq!(ApiVersion::from_context(&ctx(0)).unwrap(), ApiVersion::V1);
        assert_eq!(ApiVersion::from_context(&ctx(1)).unwrap(), ApiVersion::V1);
        assert_eq!(ApiVersion::from_context(&ctx(2)).unwrap(), ApiVersion::V2);
        assert!(matches!(
            ApiVersion::from_context(&ctx(7)),
            Err(Error::InvalidApiVersion { version: 7 })
        ));
    }
}
