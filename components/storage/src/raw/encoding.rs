//! How raw values are laid out in the engine (keys: see [`crate::api_version`]).
//!
//! Every raw value, in both API versions, is stored as
//!
//! ```text
//! user value | expire time (u64 big-endian Unix seconds, only with a TTL) | flags (1 byte)
//! ```
//!
//! with flag bit 0 meaning "has an expire time". This is TiKV's API V2 raw value layout. A value
//! whose expire time is not after the current time is expired and reads as missing.

use crate::{Error, Result};

/// Flag bit 0 of a stored value: an expire time precedes the flags.
const FLAG_EXPIRE_TIME: u8 = 0b1;
const EXPIRE_TIME_LEN: usize = 8;

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
}
