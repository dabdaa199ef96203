//! API V2 keyspace prefixes.
//!
//! Every key of keyspace `id` starts with four bytes: the mode byte (`'r'` for raw, `'x'` for
//! transactional) followed by the low 24 bits of `id` in big-endian order. Keyspace `DEFAULT` is id
//! 0, so its raw keys start with `72 00 00 00`.

use std::fmt;

use crate::{memcomparable, Error};

/// The largest keyspace id: ids have 24 bits.
pub const MAX_KEYSPACE_ID: u32 = (1 << 24) - 1;

/// A keyspace id (24 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyspaceId(u32);

impl KeyspaceId {
    /// The `DEFAULT` keyspace, created when the cluster is bootstrapped.
    pub const DEFAULT: KeyspaceId = KeyspaceId(0);

    /// # Errors
    ///
    /// [`Error::KeyspaceIdTooLarge`] if `id` needs more than 24 bits.
    pub fn new(id: u32) -> Result<KeyspaceId, Error> {
        if id > MAX_KEYSPACE_ID {
            return Err(Error::KeyspaceIdTooLarge { id });
        }
        Ok(KeyspaceId(id))
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    /// Returns the 4-byte key prefix of this keyspace in `mode`.
    pub fn prefix(self, mode: KeyMode) -> [u8; 4] {
        let [_, b1, b2, b3] = self.0.to_be_bytes();
        [mode.byte(), b1, b2, b3]
    }

    /// Returns the exclusive end of this keyspace's keys in `mode`: the prefix of the next id.
    /// For the last id this is the prefix with the id bits overflowed into the mode byte, which
    /// still sorts after every key of the keyspace.
    pub fn end_prefix(self, mode: KeyMode) -> [u8; 4] {
        let value = (u32::from(mode.byte()) << 24 | self.0) + 1;
        value.to_be_bytes()
    }

    /// Returns the region boundaries that give this keyspace its own regions, memcomparable
    /// encoded and in ascending order: raw start, raw end, txn start, txn end. These are the
    /// keys PD splits at when a keyspace is created.
    pub fn region_boundaries(self) -> [Vec<u8>; 4] {
        [
            memcomparable::encode(&self.prefix(KeyMode::Raw)),
            memcomparable::encode(&self.end_prefix(KeyMode::Raw)),
            memcomparable::encode(&self.prefix(KeyMode::Txn)),
            memcomparable::encode(&self.end_prefix(KeyMode::Txn)),
        ]
    }
}

impl fmt::Display for KeyspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keyspace {}", self.0)
    }
}

/// Whether a key belongs to the raw or the transactional API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    Raw,
    Txn,
}

impl KeyMode {
    pub const fn byte(self) -> u8 {
        match self {
            KeyMode::Raw => b'r',
            KeyMode::Txn => b'x',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keyspace_boundaries_match_pd() {
        let enc = |b: &[u8]| {
            let mut v = b.to_vec();
            v.extend_from_slice(&[0, 0, 0, 0, 0xFB]);
            v
        };
        assert_eq!(
            KeyspaceId::DEFAULT.region_boundaries(),
            [
                enc(b"r\0\0\0"),
                enc(b"r\0\0\x01"),
                enc(b"x\0\0\0"),
                enc(b"x\0\0\x01")
            ]
        );
    }

    #[test]
    fn prefixes_use_24_bits() {
        let id = KeyspaceId::new(0x01_02_03).unwrap();
        assert_eq!(id.prefix(KeyMode::Raw), [b'r', 1, 2, 3]);
        assert_eq!(id.end_prefix(KeyMode::Txn), [b'x', 1, 2, 4]);
        let last = KeyspaceId::new(MAX_KEYSPACE_ID).unwrap();
        assert_eq!(last.end_prefix(KeyMode::Raw), [b's', 0, 0, 0]);
        assert_eq!(
            KeyspaceId::new(1 << 24),
            Err(Error::KeyspaceIdTooLarge { id: 1 << 24 })
        );
    }
}
