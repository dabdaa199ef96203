//! Locks: the values of the `lock` column family.
//!
//! A lock is what a prewrite or a pessimistic lock request leaves on a key until the transaction
//! commits or rolls back. Byte format (TiKV's):
//!
//! ```text
//! type (1 byte: P D L S) | primary (compact bytes) | start_ts (varint) | ttl (varint)
//! then optional fields, each a one-byte tag and its payload:
//!   'v' short value (u8 length + bytes)   'f' for_update_ts (u64 BE)   't' txn_size (u64 BE)
//!   'c' min_commit_ts (u64 BE)            'a' async commit: varint count + compact-bytes secondaries
//!   'r' rollback timestamps: varint count + u64 BE each
//! ```
//!
//! Tags TiKV writes that this store does not use (`l` last change, `s` txn source, `F`, `g`
//! generation) are read and ignored.

use kvproto::kvrpcpb;

use crate::number::{
    decode_compact_bytes, decode_short_value, decode_u64, decode_u8, decode_var_u64,
    encode_compact_bytes, encode_var_u64,
};
use crate::{Error, MutationOp, Result, TimeStamp, Value};

const FLAG_PUT: u8 = b'P';
const FLAG_DELETE: u8 = b'D';
const FLAG_LOCK: u8 = b'L';
const FLAG_PESSIMISTIC: u8 = b'S';

const SHORT_VALUE_PREFIX: u8 = b'v';
const FOR_UPDATE_TS_PREFIX: u8 = b'f';
const TXN_SIZE_PREFIX: u8 = b't';
const MIN_COMMIT_TS_PREFIX: u8 = b'c';
const ASYNC_COMMIT_PREFIX: u8 = b'a';
const ROLLBACK_TS_PREFIX: u8 = b'r';
const LAST_CHANGE_PREFIX: u8 = b'l';
const TXN_SOURCE_PREFIX: u8 = b's';
const PESSIMISTIC_LOCK_WITH_CONFLICT_PREFIX: u8 = b'F';
const GENERATION_PREFIX: u8 = b'g';

/// What a lock will become when its transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    Put,
    Delete,
    /// A lock without a change; commits as a `Lock` write record.
    Lock,
    /// A pessimistic lock: taken before prewrite, turned into one of the others by it.
    Pessimistic,
}

impl LockType {
    /// The lock a prewrite of `op` leaves; `None` for CheckNotExists, which leaves none.
    pub fn from_mutation(op: MutationOp) -> Option<LockType> {
        match op {
            MutationOp::Put | MutationOp::Insert => Some(LockType::Put),
            MutationOp::Delete => Some(LockType::Delete),
            MutationOp::Lock => Some(LockType::Lock),
            MutationOp::CheckNotExists => None,
        }
    }

    fn flag(self) -> u8 {
        match self {
            LockType::Put => FLAG_PUT,
            LockType::Delete => FLAG_DELETE,
            LockType::Lock => FLAG_LOCK,
            LockType::Pessimistic => FLAG_PESSIMISTIC,
        }
    }

    fn from_flag(flag: u8) -> Option<LockType> {
        match flag {
            FLAG_PUT => Some(LockType::Put),
            FLAG_DELETE => Some(LockType::Delete),
            FLAG_LOCK => Some(LockType::Lock),
            FLAG_PESSIMISTIC => Some(LockType::Pessimistic),
            _ => None,
        }
    }

    /// The op a client sees in `LockInfo.lock_type`.
    pub fn to_op(self) -> kvrpcpb::Op {
        match self {
            LockType::Put => kvrpcpb::Op::Put,
            LockType::Delete => kvrpcpb::Op::Del,
            LockType::Lock => kvrpcpb::Op::Lock,
            LockType::Pessimistic => kvrpcpb::Op::PessimisticLock,
        }
    }
}

/// A lock on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub lock_type: LockType,
    /// The raw primary key of the transaction.
    pub primary: Vec<u8>,
    /// The transaction's start timestamp.
    pub ts: TimeStamp,
    /// Milliseconds after `physical(ts)` that the lock lives unless its owner renews it.
    pub ttl: u64,
    /// The value, when short enough to keep inline.
    pub short_value: Option<Value>,
    /// Non-zero for locks of pessimistic transactions.
    pub for_update_ts: TimeStamp,
    pub txn_size: u64,
    /// The transaction will commit at no lower timestamp than this (0: no constraint).
    pub min_commit_ts: TimeStamp,
    pub use_async_commit: bool,
    /// The other keys of an async-commit transaction; kept on its primary lock only.
    pub secondaries: Vec<Vec<u8>>,
    /// Rollbacks of other transactions at timestamps this transaction may commit at: its commit
    /// record then carries the overlapped-rollback flag instead of hiding them.
    pub rollback_ts: Vec<TimeStamp>,
}

impl Lock {
    /// A lock with no value, for_update_ts, size or min_commit_ts; the `with_*` methods add
    /// them.
    pub fn new(lock_type: LockType, primary: Vec<u8>, ts: TimeStamp, ttl: u64) -> Self {
        Lock {
            lock_type,
            primary,
            ts,
            ttl,
            short_value: None,
            for_update_ts: TimeStamp::zero(),
            txn_size: 0,
            min_commit_ts: TimeStamp::zero(),
            use_async_commit: false,
            secondaries: vec![],
            rollback_ts: vec![],
        }
    }

    #[must_use]
    pub fn with_short_value(mut self, short_value: Option<Value>) -> Self {
        self.short_value = short_value;
        self
    }

    #[must_use]
    pub fn with_for_update_ts(mut self, for_update_ts: TimeStamp) -> Self {
        self.for_update_ts = for_update_ts;
        self
    }

    #[must_use]
    pub fn with_txn_size(mut self, txn_size: u64) -> Self {
        self.txn_size = txn_size;
        self
    }

    #[must_use]
    pub fn with_min_commit_ts(mut self, min_commit_ts: TimeStamp) -> Self {
        self.min_commit_ts = min_commit_ts;
        self
    }

    /// Marks the lock as one of an async-commit transaction with these secondaries.
    #[must_use]
    pub fn use_async_commit(mut self, secondaries: Vec<Vec<u8>>) -> Self {
        self.use_async_commit = true;
        self.secondaries = secondaries;
        self
    }

    pub fn is_pessimistic_lock(&self) -> bool {
        self.lock_type == LockType::Pessimistic
    }

    /// Whether the lock belongs to a pessimistic transaction (prewritten or not).
    pub fn is_pessimistic_txn(&self) -> bool {
        !self.for_update_ts.is_zero()
    }

    /// Whether the lock has outlived its TTL at `current_ts`.
    pub fn is_expired(&self, current_ts: TimeStamp) -> bool {
        self.ts.physical().saturating_add(self.ttl) < current_ts.physical()
    }

    /// Whether this lock stops a snapshot read at `ts` of `raw_key` (TiKV's
    /// `check_ts_conflict` for snapshot isolation): only a Put or Delete lock of a transaction
    /// that started at or before `ts` and may still commit at or before it blocks; so do neither
    /// locks of transactions in `bypass_locks` nor, for a read at the maximum timestamp, the
    /// primary lock of a non-async-commit transaction (such a read wants the latest committed
    /// value).
    pub fn blocks_read(&self, raw_key: &[u8], ts: TimeStamp, bypass_locks: &[u64]) -> bool {
        if self.ts > ts || matches!(self.lock_type, LockType::Lock | LockType::Pessimistic) {
            return false;
        }
        if !self.min_commit_ts.is_zero() && self.min_commit_ts > ts {
            return false;
        }
        if bypass_locks.contains(&self.ts.into_inner()) {
            return false;
        }
        !(ts.is_max() && raw_key == self.primary.as_slice() && !self.use_async_commit)
    }

    /// The lock as a client sees it, on `raw_key`.
    pub fn into_lock_info(self, raw_key: Vec<u8>) -> kvrpcpb::LockInfo {
        kvrpcpb::LockInfo {
            primary_lock: self.primary,
            lock_version: self.ts.into_inner(),
            key: raw_key,
            lock_ttl: self.ttl,
            txn_size: self.txn_size,
            lock_type: self.lock_type.to_op() as i32,
            lock_for_update_ts: self.for_update_ts.into_inner(),
            use_async_commit: self.use_async_commit,
            min_commit_ts: self.min_commit_ts.into_inner(),
            secondaries: self.secondaries,
            ..Default::default()
        }
    }

    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            32 + self.primary.len() + self.short_value.as_ref().map_or(0, Vec::len),
        );
        out.push(self.lock_type.flag());
        encode_compact_bytes(&mut out, &self.primary);
        encode_var_u64(&mut out, self.ts.into_inner());
        encode_var_u64(&mut out, self.ttl);
        if let Some(value) = &self.short_value {
            out.push(SHORT_VALUE_PREFIX);
            // Short values are at most SHORT_VALUE_MAX_LEN (255) bytes by construction.
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        }
        let mut push_u64 = |prefix: u8, value: u64| {
            if value != 0 {
                out.push(prefix);
                out.extend_from_slice(&value.to_be_bytes());
            }
        };
        push_u64(FOR_UPDATE_TS_PREFIX, self.for_update_ts.into_inner());
        push_u64(TXN_SIZE_PREFIX, self.txn_size);
        push_u64(MIN_COMMIT_TS_PREFIX, self.min_commit_ts.into_inner());
        if self.use_async_commit {
            out.push(ASYNC_COMMIT_PREFIX);
            encode_var_u64(&mut out, self.secondaries.len() as u64);
            for secondary in &self.secondaries {
                encode_compact_bytes(&mut out, secondary);
            }
        }
        if !self.rollback_ts.is_empty() {
            out.push(ROLLBACK_TS_PREFIX);
            encode_var_u64(&mut out, self.rollback_ts.len() as u64);
            for ts in &self.rollback_ts {
                out.extend_from_slice(&ts.into_inner().to_be_bytes());
            }
        }
        out
    }

    /// Reads a stored lock.
    ///
    /// # Errors
    /// [`Error::BadFormatLock`] for bytes this format cannot produce.
    pub fn parse(mut data: &[u8]) -> Result<Lock> {
        let bad = |reason| Error::BadFormatLock { reason };
        let flag = decode_u8(&mut data).ok_or(bad("empty"))?;
        let lock_type = LockType::from_flag(flag).ok_or(bad("unknown lock type"))?;
        let primary = decode_compact_bytes(&mut data).ok_or(bad("primary"))?;
        let ts = decode_var_u64(&mut data).ok_or(bad("start ts"))?;
        let ttl = decode_var_u64(&mut data).ok_or(bad("ttl"))?;
        let mut lock = Lock::new(lock_type, primary, TimeStamp::new(ts), ttl);
        while let Some(prefix) = decode_u8(&mut data) {
            match prefix {
                SHORT_VALUE_PREFIX => {
                    lock.short_value =
                        Some(decode_short_value(&mut data).ok_or(bad("short value"))?);
                }
                FOR_UPDATE_TS_PREFIX => {
                    lock.for_update_ts = decode_u64(&mut data).ok_or(bad("for update ts"))?.into();
                }
                TXN_SIZE_PREFIX => lock.txn_size = decode_u64(&mut data).ok_or(bad("txn size"))?,
                MIN_COMMIT_TS_PREFIX => {
                    lock.min_commit_ts = decode_u64(&mut data).ok_or(bad("min commit ts"))?.into();
                }
                ASYNC_COMMIT_PREFIX => {
                    let count = decode_var_u64(&mut data).ok_or(bad("secondaries"))?;
                    lock.use_async_commit = true;
                    for _ in 0..count {
                        let secondary = decode_compact_bytes(&mut data).ok_or(bad("secondary"))?;
                        lock.secondaries.push(secondary);
                    }
                }
                ROLLBACK_TS_PREFIX => {
                    let count = decode_var_u64(&mut data).ok_or(bad("rollback ts"))?;
                    for _ in 0..count {
                        let ts = decode_u64(&mut data).ok_or(bad("rollback ts"))?;
                        lock.rollback_ts.push(ts.into());
                    }
                }
                LAST_CHANGE_PREFIX => {
                    decode_u64(&mut data).ok_or(bad("last change"))?;
                    decode_var_u64(&mut data).ok_or(bad("last change"))?;
                }
                TXN_SOURCE_PREFIX => {
                    decode_var_u64(&mut data).ok_or(bad("txn source"))?;
                }
                PESSIMISTIC_LOCK_WITH_CONFLICT_PREFIX => {}
                GENERATION_PREFIX => {
                    decode_u64(&mut data).ok_or(bad("generation"))?;
                }
                _ => return Err(bad("unknown field tag")),
            }
        }
        Ok(lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        Lock::new(LockType::Put, b"pk".to_vec(), TimeStamp::new(10), 3000)
            .with_short_value(Some(b"v".to_vec()))
    }

    #[test]
    fn round_trips_every_field() {
        let mut locks = vec![sample()];
        let mut full = Lock::new(
            LockType::Pessimistic,
            vec![],
            TimeStamp::new(u64::MAX - 1),
            u64::MAX,
        )
        .with_short_value(Some(vec![7; 255]))
        .with_for_update_ts(TimeStamp::new(12))
        .with_txn_size(u64::MAX)
        .with_min_commit_ts(TimeStamp::new(13))
        .use_async_commit(vec![b"s1".to_vec(), vec![], b"s3".to_vec()]);
        full.rollback_ts = vec![TimeStamp::new(5), TimeStamp::new(6)];
        locks.push(full);
        locks.push(Lock::new(
            LockType::Delete,
            b"p".to_vec(),
            TimeStamp::new(1),
            0,
        ));
        for lock in locks {
            assert_eq!(Lock::parse(&lock.to_bytes()).unwrap(), lock);
        }
    }

    #[test]
    fn byte_layout_is_tikvs() {
        let bytes = sample().to_bytes();
        // 'P', compact "pk" (len 2 zigzag = 4), ts 10, ttl 3000 (varint b8 17), 'v' 1 "v".
        assert_eq!(
            bytes,
            [b'P', 4, b'p', b'k', 10, 0xb8, 0x17, b'v', 1, b'v'].to_vec()
        );
        let mut with_ts = sample();
        with_ts.short_value = None;
        with_ts.for_update_ts = TimeStamp::new(1);
        let bytes = with_ts.to_bytes();
        assert_eq!(&bytes[7..], &[b'f', 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn foreign_tags_are_skipped_and_garbage_refused() {
        let mut bytes = sample().to_bytes();
        bytes.push(b'l');
        bytes.extend_from_slice(&7u64.to_be_bytes());
        bytes.push(3);
        bytes.push(b's');
        bytes.push(1);
        assert_eq!(Lock::parse(&bytes).unwrap(), sample());
        assert!(Lock::parse(b"").is_err());
        assert!(Lock::parse(b"X").is_err());
        let mut truncated = sample().to_bytes();
        truncated.pop();
        assert!(Lock::parse(&truncated).is_err());
        let mut unknown = sample().to_bytes();
        unknown.push(b'?');
        assert!(Lock::parse(&unknown).is_err());
    }

    #[test]
    fn read_conflicts_follow_snapshot_isolation() {
        let lock = sample(); // Put lock at ts 10 on primary "pk".
        assert!(lock.blocks_read(b"k", TimeStamp::new(10), &[]));
        assert!(!lock.blocks_read(b"k", TimeStamp::new(9), &[]));
        assert!(!lock.blocks_read(b"k", TimeStamp::new(20), &[10]));
        // A point get of the primary at max ts reads the latest committed value.
        assert!(!lock.blocks_read(b"pk", TimeStamp::max(), &[]));
        assert!(lock.blocks_read(b"k", TimeStamp::max(), &[]));
        let mut pushed = sample();
        pushed.min_commit_ts = TimeStamp::new(30);
        assert!(!pushed.blocks_read(b"k", TimeStamp::new(20), &[]));
        assert!(pushed.blocks_read(b"k", TimeStamp::new(30), &[]));
        for lock_type in [LockType::Lock, LockType::Pessimistic] {
            let mut lock = sample();
            lock.lock_type = lock_type;
            assert!(!lock.blocks_read(b"k", TimeStamp::new(20), &[]));
        }
    }

    #[test]
    fn lock_info_carries_what_clients_read() {
        let info = sample()
            .use_async_commit(vec![b"s".to_vec()])
            .into_lock_info(b"k".to_vec());
        assert_eq!(info.primary_lock, b"pk");
        assert_eq!(info.lock_version, 10);
        assert_eq!(info.key, b"k");
        assert_eq!(info.lock_ttl, 3000);
        assert_eq!(info.lock_type, kvrpcpb::Op::Put as i32);
        assert!(info.use_async_commit);
        assert_eq!(info.secondaries, [b"s".to_vec()]);
    }

    #[test]
    fn expiry_compares_physical_time() {
        let lock = Lock::new(LockType::Put, vec![], TimeStamp::compose(1000, 0), 100);
        assert!(!lock.is_expired(TimeStamp::compose(1100, 5)));
        assert!(lock.is_expired(TimeStamp::compose(1101, 0)));
        assert!(lock.is_expired(TimeStamp::max()));
    }
}
