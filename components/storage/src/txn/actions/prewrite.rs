//! Prewrite one key: the first phase of two-phase commit.

use engine_traits::Snapshot;
use txn_types::{
    Key, Lock, LockType, Mutation, MutationOp, TimeStamp, WriteType, SHORT_VALUE_MAX_LEN,
};

use super::check_data_constraint;
use crate::concurrency_manager::{ConcurrencyManager, KeyHandleGuard};
use crate::mvcc::{Error, MvccReader, MvccTxn, Result, WriteConflictReason};

/// How the transaction will commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitKind {
    /// Classic Percolator: the client commits the primary at a TSO timestamp.
    TwoPc,
    /// Async commit: the transaction is committed once every key is prewritten, at the largest
    /// `min_commit_ts` the prewrites computed.
    Async,
    /// One-phase commit: the prewrite itself commits, at the computed `min_commit_ts`.
    OnePc,
}

/// What a pessimistic transaction's prewrite expects of a key (`PrewriteRequest.
/// pessimistic_actions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PessimisticAction {
    /// The key was not locked pessimistically: check conflicts against `for_update_ts`.
    SkipPessimisticCheck,
    /// The key must hold this transaction's pessimistic lock.
    DoPessimisticCheck,
    /// Not locked; check conflicts and constraints as an optimistic transaction would.
    DoConstraintCheck,
}

impl PessimisticAction {
    pub fn from_pb(action: i32) -> Self {
        match action {
            1 => PessimisticAction::DoPessimisticCheck,
            2 => PessimisticAction::DoConstraintCheck,
            _ => PessimisticAction::SkipPessimisticCheck,
        }
    }
}

/// What every prewrite of one request shares.
#[derive(Clone, Debug)]
pub struct TransactionProperties<'a> {
    pub start_ts: TimeStamp,
    /// Zero for optimistic transactions.
    pub for_update_ts: TimeStamp,
    pub commit_kind: CommitKind,
    /// The raw primary key.
    pub primary: &'a [u8],
    /// Secondaries of an async-commit transaction, stored on its primary lock.
    pub secondaries: &'a [Vec<u8>],
    pub txn_size: u64,
    pub lock_ttl: u64,
    /// The client's lower bound on the commit ts (0: none).
    pub min_commit_ts: TimeStamp,
}

impl TransactionProperties<'_> {
    pub fn is_pessimistic(&self) -> bool {
        !self.for_update_ts.is_zero()
    }
}

/// What one key's prewrite did.
#[derive(Debug, PartialEq, Eq)]
pub enum PrewriteOutcome {
    /// A lock was written (or was already there): the commit ts must be at least this (zero
    /// for 2PC).
    Locked { min_commit_ts: TimeStamp },
    /// Nothing to write (CheckNotExists passed).
    Checked,
    /// 1PC: the key's lock is kept back, to become a commit record once every key passed;
    /// `unlock` says a pessimistic lock on the key must go then.
    OnePc { key: Key, lock: Lock, unlock: bool },
}

/// What an existing lock on the key means for the prewrite.
enum LockStatus {
    None,
    /// The transaction's own pessimistic lock.
    Pessimistic(Lock),
}

/// Prewrites `mutation`: checks conflicts and constraints, then writes a lock (and the value
/// to the default CF when it is too long to inline). An async-commit or 1PC prewrite computes
/// the lock's `min_commit_ts` above every read this store served, holding the key in the
/// concurrency manager (`guards`) until the write is applied.
///
/// # Errors
/// [`Error::KeyIsLocked`] (another transaction's lock), [`Error::WriteConflict`],
/// [`Error::AlreadyExist`], [`Error::PessimisticLockNotFound`], [`Error::LockTypeNotMatch`];
/// engine errors.
#[allow(clippy::too_many_arguments)]
pub fn prewrite<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    props: &TransactionProperties<'_>,
    mutation: Mutation,
    action: PessimisticAction,
    cm: &ConcurrencyManager,
    guards: &mut Vec<KeyHandleGuard>,
) -> Result<PrewriteOutcome> {
    if mutation.should_not_exist() {
        // Checking that a key does not exist is a read at start_ts.
        cm.update_max_ts(props.start_ts);
    }
    let status = match reader.load_lock(&mutation.key)? {
        Some(lock) => match check_lock(props, &mutation.key, lock, action)? {
            Ok(status) => status,
            Err(duplicate) => return Ok(duplicate),
        },
        None if action == PessimisticAction::DoPessimisticCheck => {
            amend_pessimistic_lock(props, reader, &mutation)?;
            LockStatus::None
        }
        None => LockStatus::None,
    };
    let checked_by_pessimistic_lock =
        props.is_pessimistic() && action == PessimisticAction::DoPessimisticCheck;
    if !checked_by_pessimistic_lock {
        check_for_newer_version(props, reader, &mutation, action)?;
    }
    let Some(lock_type) = LockType::from_mutation(mutation.op) else {
        return Ok(PrewriteOutcome::Checked);
    };
    write_lock(txn, props, mutation, lock_type, status, cm, guards)
}

/// Looks at a lock already on the key. `Ok(Err(outcome))` means the prewrite is a duplicate
/// that is already done.
fn check_lock(
    props: &TransactionProperties<'_>,
    key: &Key,
    lock: Lock,
    action: PessimisticAction,
) -> Result<std::result::Result<LockStatus, PrewriteOutcome>> {
    if lock.ts != props.start_ts {
        // A pessimistic prewrite finding someone else's lock lost its own pessimistic lock.
        if action == PessimisticAction::DoPessimisticCheck {
            return Err(Error::PessimisticLockNotFound {
                start_ts: props.start_ts,
                key: key.to_raw()?,
            });
        }
        return Err(Error::KeyIsLocked(Box::new(
            lock.into_lock_info(key.to_raw()?),
        )));
    }
    if lock.is_pessimistic_lock() {
        if !props.is_pessimistic() {
            return Err(Error::LockTypeNotMatch {
                start_ts: props.start_ts,
                key: key.to_raw()?,
                lock_type: lock.lock_type,
            });
        }
        return Ok(Ok(LockStatus::Pessimistic(lock)));
    }
    // The key is already prewritten by this transaction: a retried request.
    let min_commit_ts = match lock.use_async_commit {
        true => lock.min_commit_ts,
        false => TimeStamp::zero(),
    };
    Ok(Err(PrewriteOutcome::Locked { min_commit_ts }))
}

/// A pessimistic prewrite found no lock on a key it locked. That is fine only if nothing was
/// written to the key since the transaction started (then the prewrite takes the lock now, as
/// TiKV's amend does); otherwise the lock was lost and resolved by someone else.
fn amend_pessimistic_lock<S: Snapshot>(
    props: &TransactionProperties<'_>,
    reader: &mut MvccReader<S>,
    mutation: &Mutation,
) -> Result<()> {
    if let Some((commit_ts, write)) = reader.seek_write(&mutation.key, TimeStamp::max())? {
        if commit_ts >= props.start_ts {
            return Err(Error::PessimisticLockNotFound {
                start_ts: props.start_ts,
                key: mutation.key.to_raw()?,
            });
        }
        check_data_constraint(
            reader,
            mutation.should_not_exist(),
            &write,
            commit_ts,
            &mutation.key,
        )?;
    }
    Ok(())
}

/// Write-conflict and constraint checks against the newest records of the key.
fn check_for_newer_version<S: Snapshot>(
    props: &TransactionProperties<'_>,
    reader: &mut MvccReader<S>,
    mutation: &Mutation,
    action: PessimisticAction,
) -> Result<()> {
    let key = &mutation.key;
    let mut seek_ts = TimeStamp::max();
    while let Some((commit_ts, write)) = reader.seek_write(key, seek_ts)? {
        let conflict = |reason| -> Result<()> {
            Err(Error::WriteConflict {
                start_ts: props.start_ts,
                conflict_start_ts: write.start_ts,
                conflict_commit_ts: commit_ts,
                key: key.to_raw()?,
                primary: props.primary.to_vec(),
                reason,
            })
        };
        // The transaction's own rollback: a prewrite after it must not succeed.
        if commit_ts == props.start_ts && write.is_rollback() {
            return conflict(WriteConflictReason::SelfRolledBack);
        }
        if !props.is_pessimistic() {
            if commit_ts > props.start_ts {
                return conflict(WriteConflictReason::Optimistic);
            }
        } else {
            if action == PessimisticAction::DoConstraintCheck && commit_ts > props.start_ts {
                return conflict(WriteConflictReason::LazyUniquenessCheck);
            }
            if commit_ts > props.for_update_ts {
                // Rollbacks of other transactions are no conflict for a pessimistic
                // transaction: they only keep late prewrites of those transactions out.
                if write.write_type == WriteType::Rollback {
                    seek_ts = commit_ts.prev();
                    continue;
                }
                return conflict(WriteConflictReason::PessimisticRetry);
            }
        }
        return check_data_constraint(reader, mutation.should_not_exist(), &write, commit_ts, key);
    }
    Ok(())
}

/// Writes the lock (and a long value) for a prewrite that passed its checks.
fn write_lock(
    txn: &mut MvccTxn,
    props: &TransactionProperties<'_>,
    mutation: Mutation,
    lock_type: LockType,
    status: LockStatus,
    cm: &ConcurrencyManager,
    guards: &mut Vec<KeyHandleGuard>,
) -> Result<PrewriteOutcome> {
    let mut lock = Lock::new(
        lock_type,
        props.primary.to_vec(),
        props.start_ts,
        props.lock_ttl,
    )
    .with_for_update_ts(props.for_update_ts)
    .with_txn_size(props.txn_size)
    .with_min_commit_ts(props.min_commit_ts);
    let had_pessimistic_lock = match &status {
        LockStatus::Pessimistic(pessimistic) => {
            lock.ttl = lock.ttl.max(pessimistic.ttl);
            lock.min_commit_ts = lock.min_commit_ts.max(pessimistic.min_commit_ts);
            true
        }
        LockStatus::None => false,
    };
    let key = mutation.key;
    if matches!(mutation.op, MutationOp::Put | MutationOp::Insert) {
        if mutation.value.len() <= SHORT_VALUE_MAX_LEN {
            lock.short_value = Some(mutation.value);
        } else {
            txn.put_value(key.clone(), props.start_ts, mutation.value);
        }
    }
    let mut min_commit_ts = TimeStamp::zero();
    if props.commit_kind != CommitKind::TwoPc {
        if props.commit_kind == CommitKind::Async {
            let secondaries = match key.is_encoded_from(props.primary) {
                true => props.secondaries.to_vec(),
                false => vec![],
            };
            lock = lock.use_async_commit(secondaries);
        }
        let guard = cm.lock_key(&key);
        let floor = props.start_ts.max(props.for_update_ts).next();
        lock = guard.publish_lock(|max_ts| {
            let min_commit_ts = max_ts.next().max(floor).max(lock.min_commit_ts);
            lock.with_min_commit_ts(min_commit_ts)
        });
        guards.push(guard);
        min_commit_ts = lock.min_commit_ts;
        if props.commit_kind == CommitKind::OnePc {
            return Ok(PrewriteOutcome::OnePc {
                key,
                lock,
                unlock: had_pessimistic_lock,
            });
        }
    }
    txn.put_lock(key, &lock);
    Ok(PrewriteOutcome::Locked { min_commit_ts })
}
