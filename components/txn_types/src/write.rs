//! Write records: the values of the `write` column family, stored at `key + commit_ts`.
//!
//! Byte format (TiKV's):
//!
//! ```text
//! type (1 byte: P D L R) | start_ts (varint)
//! then optional fields: 'v' short value (u8 length + bytes), 'R' overlapped rollback (no
//! payload), 'F' gc fence (u64 BE); TiKV's 'l' last change and 's' txn source are read and ignored.
//! ```
//!
//! A rollback record lives at `key + start_ts` of the rolled-back transaction. A *protected*
//! rollback carries the short value `p`; TiKV may collapse unprotected ones, this store never
//! does.

use crate::number::{decode_short_value, decode_u64, decode_u8, decode_var_u64, encode_var_u64};
use crate::{Error, LockType, Result, TimeStamp, Value};

const FLAG_PUT: u8 = b'P';
const FLAG_DELETE: u8 = b'D';
const FLAG_LOCK: u8 = b'L';
const FLAG_ROLLBACK: u8 = b'R';

const SHORT_VALUE_PREFIX: u8 = b'v';
const FLAG_OVERLAPPED_ROLLBACK: u8 = b'R';
const GC_FENCE_PREFIX: u8 = b'F';
const LAST_CHANGE_PREFIX: u8 = b'l';
const TXN_SOURCE_PREFIX: u8 = b's';

/// The short value that marks a rollback record as protected.
const PROTECTED_ROLLBACK_SHORT_VALUE: &[u8] = b"p";

/// What a committed transaction did to a key, or that it rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteType {
    Put,
    Delete,
    /// Locked without a change; readers skip it.
    Lock,
    /// The transaction at this record's start ts rolled back; readers skip it.
    Rollback,
}

impl WriteType {
    /// The record a committed lock of `lock_type` becomes; a pessimistic lock commits as `Lock`.
    pub fn from_lock_type(lock_type: LockType) -> WriteType {
        match lock_type {
            LockType::Put => WriteType::Put,
            LockType::Delete => WriteType::Delete,
            LockType::Lock | LockType::Pessimistic => WriteType::Lock,
        }
    }

    fn flag(self) -> u8 {
        match self {
            WriteType::Put => FLAG_PUT,
            WriteType::Delete => FLAG_DELETE,
            WriteType::Lock => FLAG_LOCK,
            WriteType::Rollback => FLAG_ROLLBACK,
        }
    }

    fn from_flag(flag: u8) -> Option<WriteType> {
        match flag {
            FLAG_PUT => Some(WriteType::Put),
            FLAG_DELETE => Some(WriteType::Delete),
            FLAG_LOCK => Some(WriteType::Lock),
            FLAG_ROLLBACK => Some(WriteType::Rollback),
            _ => None,
        }
    }
}

/// A commit or rollback record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub write_type: WriteType,
    pub start_ts: TimeStamp,
    /// The value of a Put, when short enough to keep inline.
    pub short_value: Option<Value>,
    /// Another transaction rolled back at exactly this record's commit ts; the record stands
    /// for both.
    pub has_overlapped_rollback: bool,
    pub gc_fence: Option<TimeStamp>,
}

impl Write {
    pub fn new(write_type: WriteType, start_ts: TimeStamp, short_value: Option<Value>) -> Self {
        Write {
            write_type,
            start_ts,
            short_value,
            has_overlapped_rollback: false,
            gc_fence: None,
        }
    }

    /// A rollback record of the transaction that started at `start_ts`.
    pub fn new_rollback(start_ts: TimeStamp, protected: bool) -> Self {
        let short_value = protected.then(|| PROTECTED_ROLLBACK_SHORT_VALUE.to_vec());
        Write::new(WriteType::Rollback, start_ts, short_value)
    }

    #[must_use]
    pub fn set_overlapped_rollback(mut self, has_overlapped_rollback: bool) -> Self {
        self.has_overlapped_rollback = has_overlapped_rollback;
        self
    }

    /// Whether this is a protected rollback record.
    pub fn is_protected(&self) -> bool {
        self.write_type == WriteType::Rollback
            && self.short_value.as_deref() == Some(PROTECTED_ROLLBACK_SHORT_VALUE)
    }

    /// Whether the record says the transaction at `ts` rolled back, by being its rollback or by
    /// carrying the overlapped-rollback flag at that commit ts.
    pub fn is_rollback(&self) -> bool {
        self.write_type == WriteType::Rollback || self.has_overlapped_rollback
    }

    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.short_value.as_ref().map_or(0, Vec::len));
        out.push(self.write_type.flag());
        encode_var_u64(&mut out, self.start_ts.into_inner());
        if let Some(value) = &self.short_value {
            out.push(SHORT_VALUE_PREFIX);
            // Short values are at most SHORT_VALUE_MAX_LEN (255) bytes by construction.
            out.push(value.len() as u8);
            out.extend_from_slice(value);
        }
        if self.has_overlapped_rollback {
            out.push(FLAG_OVERLAPPED_ROLLBACK);
        }
        if let Some(fence) = self.gc_fence {
            out.push(GC_FENCE_PREFIX);
            out.extend_from_slice(&fence.into_inner().to_be_bytes());
        }
        out
    }

    /// Reads a stored record.
    ///
    /// # Errors
    /// [`Error::BadFormatWrite`] for bytes this format cannot produce.
    pub fn parse(mut data: &[u8]) -> Result<Write> {
        let bad = |reason| Error::BadFormatWrite { reason };
        let flag = decode_u8(&mut data).ok_or(bad("empty"))?;
        let write_type = WriteType::from_flag(flag).ok_or(bad("unknown write type"))?;
        let start_ts = decode_var_u64(&mut data).ok_or(bad("start ts"))?;
        let mut write = Write::new(write_type, TimeStamp::new(start_ts), None);
        while let Some(prefix) = decode_u8(&mut data) {
            match prefix {
                SHORT_VALUE_PREFIX => {
                    write.short_value =
                        Some(decode_short_value(&mut data).ok_or(bad("short value"))?);
                }
                FLAG_OVERLAPPED_ROLLBACK => write.has_overlapped_rollback = true,
                GC_FENCE_PREFIX => {
                    write.gc_fence = Some(decode_u64(&mut data).ok_or(bad("gc fence"))?.into());
                }
                LAST_CHANGE_PREFIX => {
                    decode_u64(&mut data).ok_or(bad("last change"))?;
                    decode_var_u64(&mut data).ok_or(bad("last change"))?;
                }
                TXN_SOURCE_PREFIX => {
                    decode_var_u64(&mut data).ok_or(bad("txn source"))?;
                }
                _ => return Err(bad("unknown field tag")),
            }
        }
        Ok(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut fenced = Write::new(WriteType::Delete, TimeStamp::new(1), None);
        fenced.gc_fence = Some(TimeStamp::new(9));
        let writes = [
            Write::new(WriteType::Put, TimeStamp::new(300), Some(b"value".to_vec())),
            Write::new(WriteType::Put, TimeStamp::new(300), None),
            Write::new(WriteType::Lock, TimeStamp::max(), None).set_overlapped_rollback(true),
            Write::new_rollback(TimeStamp::new(5), true),
            Write::new_rollback(TimeStamp::new(5), false),
            fenced,
        ];
        for write in writes {
            assert_eq!(Write::parse(&write.to_bytes()).unwrap(), write);
        }
    }

    #[test]
    fn byte_layout_is_tikvs() {
        let put = Write::new(WriteType::Put, TimeStamp::new(300), Some(b"ab".to_vec()));
        assert_eq!(put.to_bytes(), [b'P', 0xac, 0x02, b'v', 2, b'a', b'b']);
        assert_eq!(
            Write::new_rollback(TimeStamp::new(1), true).to_bytes(),
            [b'R', 1, b'v', 1, b'p']
        );
        assert!(Write::parse(&[b'R', 1, b'v', 1, b'p'])
            .unwrap()
            .is_protected());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Write::parse(b"").is_err());
        assert!(Write::parse(b"Z\x01").is_err());
        assert!(Write::parse(&[b'P', 0x80]).is_err());
        assert!(Write::parse(&[b'P', 1, b'v', 3, b'a']).is_err());
        assert!(Write::parse(&[b'P', 1, b'?']).is_err());
    }

    #[test]
    fn pessimistic_locks_commit_as_lock_records() {
        assert_eq!(
            WriteType::from_lock_type(LockType::Pessimistic),
            WriteType::Lock
        );
        assert_eq!(WriteType::from_lock_type(LockType::Put), WriteType::Put);
    }
}
