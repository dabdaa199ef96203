//! What an MVCC action can find wrong, and how each becomes a client's `kvrpcpb::KeyError`.

use kvproto::kvrpcpb;
use txn_types::TimeStamp;

pub use kvrpcpb::write_conflict::Reason as WriteConflictReason;

/// Errors of MVCC reads and transactional actions. Keys are raw user keys (with their API V2
/// prefix), as clients sent them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] engine_traits::Error),
    #[error("{0}")]
    Codec(#[from] txn_types::Error),
    /// Another transaction holds a lock that this command must wait out or resolve.
    #[error("key is locked (backoff or cleanup) by txn {}", .0.lock_version)]
    KeyIsLocked(Box<kvrpcpb::LockInfo>),
    #[error(
        "write conflict, start_ts: {start_ts}, conflict_start_ts: {conflict_start_ts}, \
         conflict_commit_ts: {conflict_commit_ts}, reason: {}",
        .reason.as_str_name()
    )]
    WriteConflict {
        start_ts: TimeStamp,
        conflict_start_ts: TimeStamp,
        conflict_commit_ts: TimeStamp,
        key: Vec<u8>,
        primary: Vec<u8>,
        reason: WriteConflictReason,
    },
    #[error("key already exists")]
    AlreadyExist { key: Vec<u8> },
    /// A commit record or lock points at a value that is not in the default column family.
    #[error("default value not found for a committed or locked put at start_ts {start_ts}")]
    DefaultNotFound { key: Vec<u8>, start_ts: TimeStamp },
    /// A commit found no lock of the transaction and no commit record.
    #[error("txn lock not found, start_ts: {start_ts}, commit_ts: {commit_ts}")]
    TxnLockNotFound {
        start_ts: TimeStamp,
        commit_ts: TimeStamp,
        key: Vec<u8>,
    },
    /// The transaction left no trace on its primary key.
    #[error("txn not found, start_ts: {start_ts}")]
    TxnNotFound { start_ts: TimeStamp, key: Vec<u8> },
    #[error(
        "commit ts {commit_ts} expired: the lock of start_ts {start_ts} must commit at or \
         after {min_commit_ts}"
    )]
    CommitTsExpired {
        start_ts: TimeStamp,
        commit_ts: TimeStamp,
        key: Vec<u8>,
        min_commit_ts: TimeStamp,
    },
    /// A rollback or cleanup found the transaction already committed.
    #[error("txn already committed, start_ts: {start_ts}, commit_ts: {commit_ts}")]
    Committed {
        start_ts: TimeStamp,
        commit_ts: TimeStamp,
        key: Vec<u8>,
    },
    #[error("pessimistic lock already rolled back, start_ts: {start_ts}")]
    PessimisticLockRolledBack { start_ts: TimeStamp, key: Vec<u8> },
    #[error("pessimistic lock not found, start_ts: {start_ts}")]
    PessimisticLockNotFound { start_ts: TimeStamp, key: Vec<u8> },
    /// The transaction's lock on the key is of a kind the command cannot act on (for example a
    /// pessimistic lock request meeting its own prewritten lock).
    #[error("lock type not match, start_ts: {start_ts}, lock type: {lock_type:?}")]
    LockTypeNotMatch {
        start_ts: TimeStamp,
        key: Vec<u8>,
        lock_type: txn_types::LockType,
    },
    /// CheckTxnStatus was sent to a key that is not the transaction's primary.
    #[error("primary mismatch: the lock's primary is not the key checked")]
    PrimaryMismatch(Box<kvrpcpb::LockInfo>),
    /// A pessimistic lock would close a cycle of transactions waiting for each other.
    #[error("deadlock: txn {start_ts} waits for txn {lock_ts}")]
    Deadlock {
        start_ts: TimeStamp,
        lock_ts: TimeStamp,
        lock_key: Vec<u8>,
        deadlock_key_hash: u64,
        /// The cycle's wait-for edges, this transaction's last.
        wait_chain: Vec<kvproto::deadlock::WaitForEntry>,
    },
    /// A request that cannot be served as sent (an unknown op, a bad timestamp).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error as a client reads it: the `KeyError` field it acts on (a lock starts lock
    /// resolution, CommitTsExpired a commit retry, TxnNotFound a cleanup decision); everything
    /// else is `abort` with the message, which the client reports to its caller. Write conflicts
    /// also fill `retryable`, as TiKV does.
    ///
    /// # Panics
    /// Never; engine errors that are region errors never reach here (the caller splits them off).
    pub fn to_key_error(&self) -> kvrpcpb::KeyError {
        let mut key_error = kvrpcpb::KeyError::default();
        match self {
            Error::KeyIsLocked(info) => key_error.locked = Some((**info).clone()),
            Error::WriteConflict {
                start_ts,
                conflict_start_ts,
                conflict_commit_ts,
                key,
                primary,
                reason,
            } => {
                key_error.conflict = Some(kvrpcpb::WriteConflict {
                    start_ts: start_ts.into_inner(),
                    conflict_ts: conflict_start_ts.into_inner(),
                    key: key.clone(),
                    primary: primary.clone(),
                    conflict_commit_ts: conflict_commit_ts.into_inner(),
                    reason: *reason as i32,
                });
                key_error.retryable = self.to_string();
            }
            Error::AlreadyExist { key } => {
                key_error.already_exist = Some(kvrpcpb::AlreadyExist { key: key.clone() });
            }
            Error::TxnLockNotFound { .. } => key_error.retryable = self.to_string(),
            Error::TxnNotFound { start_ts, key } => {
                key_error.txn_not_found = Some(kvrpcpb::TxnNotFound {
                    start_ts: start_ts.into_inner(),
                    primary_key: key.clone(),
                });
            }
            Error::CommitTsExpired {
                start_ts,
                commit_ts,
                key,
                min_commit_ts,
            } => {
                key_error.commit_ts_expired = Some(kvrpcpb::CommitTsExpired {
                    start_ts: start_ts.into_inner(),
                    attempted_commit_ts: commit_ts.into_inner(),
                    key: key.clone(),
                    min_commit_ts: min_commit_ts.into_inner(),
                });
            }
            Error::PrimaryMismatch(info) => {
                key_error.primary_mismatch = Some(kvrpcpb::PrimaryMismatch {
                    lock_info: Some((**info).clone()),
                });
            }
            Error::Deadlock {
                lock_ts,
                lock_key,
                deadlock_key_hash,
                wait_chain,
                ..
            } => {
                key_error.deadlock = Some(kvrpcpb::Deadlock {
                    lock_ts: lock_ts.into_inner(),
                    lock_key: lock_key.clone(),
                    deadlock_key_hash: *deadlock_key_hash,
                    wait_chain: wait_chain.clone(),
                });
                key_error.abort = self.to_string();
            }
            _ => key_error.abort = self.to_string(),
        }
        key_error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ts: u64) -> TimeStamp {
        TimeStamp::new(ts)
    }

    #[test]
    fn each_error_fills_the_field_the_client_reads() {
        let locked = Error::KeyIsLocked(Box::new(kvrpcpb::LockInfo {
            lock_version: 5,
            ..Default::default()
        }));
        assert_eq!(locked.to_key_error().locked.unwrap().lock_version, 5);

        let conflict = Error::WriteConflict {
            start_ts: ts(1),
            conflict_start_ts: ts(2),
            conflict_commit_ts: ts(3),
            key: b"k".to_vec(),
            primary: b"p".to_vec(),
            reason: WriteConflictReason::Optimistic,
        }
        .to_key_error();
        let info = conflict.conflict.clone().unwrap();
        assert_eq!(
            (info.start_ts, info.conflict_ts, info.conflict_commit_ts),
            (1, 2, 3)
        );
        assert_eq!(info.reason, WriteConflictReason::Optimistic as i32);
        assert!(!conflict.retryable.is_empty());

        let expired = Error::CommitTsExpired {
            start_ts: ts(1),
            commit_ts: ts(2),
            key: b"k".to_vec(),
            min_commit_ts: ts(9),
        }
        .to_key_error();
        assert_eq!(expired.commit_ts_expired.unwrap().min_commit_ts, 9);

        let not_found = Error::TxnNotFound {
            start_ts: ts(4),
            key: b"p".to_vec(),
        }
        .to_key_error();
        assert_eq!(not_found.txn_not_found.unwrap().primary_key, b"p");

        let exists = Error::AlreadyExist { key: b"k".to_vec() }.to_key_error();
        assert_eq!(exists.already_exist.unwrap().key, b"k");

        let lock_not_found = Error::TxnLockNotFound {
            start_ts: ts(1),
            commit_ts: ts(2),
            key: vec![],
        }
        .to_key_error();
        assert!(lock_not_found.retryable.contains("txn lock not found"));

        let mismatch = Error::PrimaryMismatch(Box::default()).to_key_error();
        assert!(mismatch.primary_mismatch.is_some());

        let committed = Error::Committed {
            start_ts: ts(1),
            commit_ts: ts(2),
            key: vec![],
        }
        .to_key_error();
        assert!(committed.abort.contains("committed"));
    }
}
