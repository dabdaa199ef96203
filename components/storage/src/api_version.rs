//! How keys of each API version map to storage keys, and which keys a request may name.
//!
//! | API version | raw key | raw storage key | transactional key | transactional storage key |
//! |---|---|---|---|---|
//! | V1 (and V1TTL) | any bytes | the key itself | any bytes | `enc(key)` (+ timestamp) |
//! | V2 | `'r'` + 3-byte keyspace id + key | `enc(key)` | `'x'` + 3-byte keyspace id + key | `enc(key)` (+ timestamp) |
//!
//! `enc` is the memcomparable encoding. In V2 the user key keeps its keyspace prefix and the
//! whole of it is encoded. PD splits regions at *encoded* keyspace boundaries (`enc("r\0\0\0")`,
//! `enc("r\0\0\1")`, ...), so the engine key space must be PD's key space for a region's bounds to
//! mean the same thing on both sides. Encoding preserves order, so scans and range bounds encode
//! the same way. Transactional keys are encoded in both versions, as in TiKV (see `txn_types`).
//!
//! Mixing API versions on one cluster is not supported. A V1 raw key that starts with `r` (or `x`)
//! bytes and happens to be a valid encoding collides with a V2 key; V2 scans skip V1 keys that
//! do not decode, and V1 scans see V2 keys in their encoded form.

use codec::memcomparable;
use codec::KeyMode;
use kvproto::kvrpcpb;

use crate::{Error, Result};

/// The mode byte API V2 raw keys start with.
const RAW_MODE: u8 = b'r';
/// The byte after [`RAW_MODE`]: every raw key is below `[RAW_MODE_END]`.
const RAW_MODE_END: u8 = RAW_MODE + 1;
/// The mode byte API V2 transactional keys start with.
const TXN_MODE: u8 = b'x';

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

    /// Checks that a transactional request may name `key`: any key in V1, a key of the
    /// transactional mode (starting with `x`) in V2.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMode`] in V2 for a key outside the transactional mode.
    pub fn check_txn_key(self, cmd: &'static str, key: &[u8]) -> Result<()> {
        match self {
            ApiVersion::V2 if key.first() != Some(&TXN_MODE) => Err(Error::InvalidKeyMode {
                cmd,
                key: key.to_vec(),
                mode: KeyMode::Txn,
            }),
            _ => Ok(()),
        }
    }

    /// Checks a transactional range bound: as [`ApiVersion::check_txn_key`], but an empty
    /// bound (unbounded) is allowed, and so is the end of the transactional mode in V2.
    ///
    /// # Errors
    /// As [`ApiVersion::check_txn_key`].
    pub fn check_txn_bound(self, cmd: &'static str, key: &[u8]) -> Result<()> {
        if key.is_empty() || (self == ApiVersion::V2 && key.first() == Some(&(TXN_MODE + 1))) {
            return Ok(());
        }
        self.check_txn_key(cmd, key)
    }
}

fn is_raw_mode_end(key: &[u8]) -> bool {
    matches!(key.split_first(), Some((&RAW_MODE_END, rest)) if rest.iter().all(|&b| b == 0))
}

fn invalid_key_mode(cmd: &'static str, key: &[u8]) -> Error {
    Error::InvalidKeyMode {
        cmd,
        key: key.to_vec(),
        mode: KeyMode::Raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn txn_keys_must_be_in_the_txn_mode_in_v2() {
        ApiVersion::V1.check_txn_key("t", b"anything").unwrap();
        ApiVersion::V2.check_txn_key("t", b"x\0\0\0k").unwrap();
        for bad in [&b"r\0\0\0k"[..], b""] {
            assert!(matches!(
                ApiVersion::V2.check_txn_key("kv_get", bad),
                Err(Error::InvalidKeyMode {
                    cmd: "kv_get",
                    mode: KeyMode::Txn,
                    ..
                })
            ));
        }
        ApiVersion::V2.check_txn_bound("t", b"").unwrap();
        ApiVersion::V2.check_txn_bound("t", b"y\0\0\0").unwrap();
        assert!(ApiVersion::V2.check_txn_bound("t", b"r").is_err());
    }
}
