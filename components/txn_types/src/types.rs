//! MVCC keys and mutations.

use std::fmt;

use codec::memcomparable;
use kvproto::kvrpcpb;

use crate::{Error, Result, TimeStamp};

/// A value as the user wrote it.
pub type Value = Vec<u8>;

const TS_LEN: usize = 8;

/// A user key in its stored form: the memcomparable encoding of the raw key, optionally followed
/// by a timestamp written as `!ts` in big-endian, so that newer versions sort first.
///
/// `Debug` and `Display` print the encoded bytes in hex; user keys never reach logs as text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Vec<u8>);

impl Key {
    /// The key of `raw`, without a timestamp.
    pub fn from_raw(raw: &[u8]) -> Key {
        Key(memcomparable::encode(raw))
    }

    /// Wraps bytes that are already in encoded form (as read from the engine).
    pub fn from_encoded(encoded: Vec<u8>) -> Key {
        Key(encoded)
    }

    pub fn from_encoded_slice(encoded: &[u8]) -> Key {
        Key(encoded.to_vec())
    }

    pub fn as_encoded(&self) -> &[u8] {
        &self.0
    }

    pub fn into_encoded(self) -> Vec<u8> {
        self.0
    }

    /// The raw user key. A key with a timestamp decodes to its user key too.
    ///
    /// # Errors
    /// [`Error::KeyDecode`] when the bytes are not a memcomparable encoding.
    pub fn to_raw(&self) -> Result<Vec<u8>> {
        Ok(memcomparable::decode_prefix(&self.0)?.0)
    }

    /// As [`Key::to_raw`].
    ///
    /// # Errors
    /// As [`Key::to_raw`].
    pub fn into_raw(self) -> Result<Vec<u8>> {
        self.to_raw()
    }

    /// This key with `ts` appended.
    #[must_use]
    pub fn append_ts(mut self, ts: TimeStamp) -> Key {
        self.0.extend_from_slice(&(!ts.into_inner()).to_be_bytes());
        self
    }

    /// This key with its timestamp cut off.
    ///
    /// # Errors
    /// [`Error::KeyWithoutTimestamp`] when the key is too short to carry one.
    pub fn truncate_ts(mut self) -> Result<Key> {
        let len = self.0.len();
        if len < TS_LEN {
            return Err(Error::KeyWithoutTimestamp);
        }
        self.0.truncate(len - TS_LEN);
        Ok(self)
    }

    /// Splits an encoded key with a timestamp into the key part and the timestamp.
    ///
    /// # Errors
    /// [`Error::KeyWithoutTimestamp`] when the key is too short to carry one.
    pub fn split_on_ts_for(encoded: &[u8]) -> Result<(&[u8], TimeStamp)> {
        let split = encoded
            .len()
            .checked_sub(TS_LEN)
            .ok_or(Error::KeyWithoutTimestamp)?;
        let (key, ts) = encoded.split_at(split);
        let ts = u64::from_be_bytes(ts.try_into().expect("exactly eight bytes"));
        Ok((key, TimeStamp::new(!ts)))
    }

    /// Whether this key (without a timestamp) is the encoding of `raw`.
    pub fn is_encoded_from(&self, raw: &[u8]) -> bool {
        memcomparable::encoded_len(raw) == self.0.len() && memcomparable::encode(raw) == self.0
    }

    /// The length of the encoded key.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// Cuts a trailing timestamp (or anything else) off a key that starts with a memcomparable
/// encoding; a key that does not (a raw API V1 key) is returned whole. Split keys go through
/// this so that the versions of one key never straddle two regions.
pub fn strip_timestamp_if_exists(key: &[u8]) -> &[u8] {
    match memcomparable::decode_prefix(key) {
        Ok((_, consumed)) => &key[..consumed],
        Err(_) => key,
    }
}

/// What a prewrite does to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutationOp {
    Put,
    Delete,
    /// Lock the key without changing it (becomes a `Lock` write record on commit).
    Lock,
    /// Put, failing with AlreadyExist if the key has a value.
    Insert,
    /// Only check that the key has no value; writes nothing.
    CheckNotExists,
}

impl MutationOp {
    /// The op of a prewrite mutation; `None` for ops a prewrite cannot carry (Rollback,
    /// PessimisticLock) or unknown values.
    pub fn from_pb(op: i32) -> Option<MutationOp> {
        match kvrpcpb::Op::try_from(op).ok()? {
            kvrpcpb::Op::Put => Some(MutationOp::Put),
            kvrpcpb::Op::Del => Some(MutationOp::Delete),
            kvrpcpb::Op::Lock => Some(MutationOp::Lock),
            kvrpcpb::Op::Insert => Some(MutationOp::Insert),
            kvrpcpb::Op::CheckNotExists => Some(MutationOp::CheckNotExists),
            kvrpcpb::Op::Rollback | kvrpcpb::Op::PessimisticLock => None,
        }
    }
}

/// One change a prewrite carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    pub op: MutationOp,
    pub key: Key,
    /// The value for Put and Insert; empty otherwise.
    pub value: Value,
}

impl Mutation {
    pub fn put(key: Key, value: Value) -> Self {
        Mutation {
            op: MutationOp::Put,
            key,
            value,
        }
    }

    pub fn delete(key: Key) -> Self {
        Self::keyed(MutationOp::Delete, key)
    }

    pub fn lock(key: Key) -> Self {
        Self::keyed(MutationOp::Lock, key)
    }

    pub fn insert(key: Key, value: Value) -> Self {
        Mutation {
            op: MutationOp::Insert,
            key,
            value,
        }
    }

    pub fn check_not_exists(key: Key) -> Self {
        Self::keyed(MutationOp::CheckNotExists, key)
    }

    fn keyed(op: MutationOp, key: Key) -> Self {
        Mutation {
            op,
            key,
            value: vec![],
        }
    }

    /// Whether the key must have no value (Insert and CheckNotExists).
    pub fn should_not_exist(&self) -> bool {
        matches!(self.op, MutationOp::Insert | MutationOp::CheckNotExists)
    }

    /// Whether the mutation leaves a lock (every op but CheckNotExists).
    pub fn should_write_lock(&self) -> bool {
        self.op != MutationOp::CheckNotExists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_newest_first() {
        let older = Key::from_raw(b"k").append_ts(TimeStamp::new(5));
        let newer = Key::from_raw(b"k").append_ts(TimeStamp::new(9));
        assert!(newer < older);
        let next_key = Key::from_raw(b"k\0").append_ts(TimeStamp::new(100));
        assert!(older < next_key);
        let (key, ts) = Key::split_on_ts_for(newer.as_encoded()).unwrap();
        assert_eq!(key, Key::from_raw(b"k").as_encoded());
        assert_eq!(ts, TimeStamp::new(9));
        assert_eq!(newer.clone().truncate_ts().unwrap(), Key::from_raw(b"k"));
        assert_eq!(newer.to_raw().unwrap(), b"k");
    }

    #[test]
    fn is_encoded_from_compares_the_whole_key() {
        let key = Key::from_raw(b"primary");
        assert!(key.is_encoded_from(b"primary"));
        assert!(!key.is_encoded_from(b"primar"));
        assert!(!key.is_encoded_from(b"primary\0"));
    }

    #[test]
    fn strip_timestamp_keeps_raw_v1_keys() {
        let with_ts = Key::from_raw(b"abc").append_ts(TimeStamp::new(42));
        assert_eq!(
            strip_timestamp_if_exists(with_ts.as_encoded()),
            Key::from_raw(b"abc").as_encoded()
        );
        // A key that is not an encoding (too short) is returned as it is.
        assert_eq!(strip_timestamp_if_exists(b"abc"), b"abc");
    }

    #[test]
    fn mutation_ops_from_the_wire() {
        assert_eq!(
            MutationOp::from_pb(kvrpcpb::Op::Insert as i32),
            Some(MutationOp::Insert)
        );
        assert_eq!(MutationOp::from_pb(kvrpcpb::Op::Rollback as i32), None);
        assert_eq!(MutationOp::from_pb(99), None);
        assert!(Mutation::check_not_exists(Key::from_raw(b"k")).should_not_exist());
        assert!(!Mutation::check_not_exists(Key::from_raw(b"k")).should_write_lock());
    }
}
