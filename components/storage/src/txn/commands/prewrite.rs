//! Prewrite: the first phase of a transaction's commit, for every key of one region.

use engine_traits::Snapshot;
use kvproto::kvrpcpb;
use txn_types::{Key, Mutation, TimeStamp, Write, WriteType};

use super::{WriteCommand, WriteContext, WriteResult};
use crate::mvcc::{Error, MvccReader, MvccTxn, Result, TxnCommitRecord};
use crate::txn::actions::{
    prewrite, CommitKind, PessimisticAction, PrewriteOutcome, TransactionProperties,
};

/// A prewrite request.
#[derive(Debug)]
pub struct Prewrite {
    pub ctx: kvrpcpb::Context,
    pub mutations: Vec<(Mutation, PessimisticAction)>,
    /// The raw primary key.
    pub primary: Vec<u8>,
    pub start_ts: TimeStamp,
    /// Zero for optimistic transactions.
    pub for_update_ts: TimeStamp,
    pub lock_ttl: u64,
    pub txn_size: u64,
    pub min_commit_ts: TimeStamp,
    pub commit_kind: CommitKind,
    /// The secondaries of an async-commit transaction (on the request holding the primary).
    pub secondaries: Vec<Vec<u8>>,
}

/// What a prewrite answers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PrewriteResult {
    /// Locks of other transactions that stopped the prewrite; when any, nothing was written.
    pub locks: Vec<kvrpcpb::LockInfo>,
    /// For async commit: the commit ts must be at least this.
    pub min_commit_ts: TimeStamp,
    /// For a successful 1PC: the transaction committed at this ts.
    pub one_pc_commit_ts: TimeStamp,
}

impl WriteCommand for Prewrite {
    type Output = PrewriteResult;
    const TAG: &'static str = "prewrite";

    fn ctx(&self) -> &kvrpcpb::Context {
        &self.ctx
    }

    fn latch_keys(&self) -> Vec<Key> {
        self.mutations.iter().map(|(m, _)| m.key.clone()).collect()
    }

    fn write_bytes(&self) -> usize {
        self.mutations
            .iter()
            .map(|(m, _)| m.key.len() + m.value.len())
            .sum()
    }

    fn needs_max_ts_synced(&self) -> bool {
        self.commit_kind != CommitKind::TwoPc
    }

    /// All or nothing: every key is checked; locks of other transactions are collected and
    /// reported together (nothing is written then), any other error stops the prewrite. A
    /// retried prewrite of a transaction that already committed succeeds and writes nothing.
    fn process_write<S: Snapshot>(
        self,
        snapshot: S,
        context: WriteContext<'_>,
    ) -> Result<WriteResult<PrewriteResult>> {
        let props = TransactionProperties {
            start_ts: self.start_ts,
            for_update_ts: self.for_update_ts,
            commit_kind: self.commit_kind,
            primary: &self.primary,
            secondaries: &self.secondaries,
            txn_size: self.txn_size,
            lock_ttl: self.lock_ttl,
            min_commit_ts: self.min_commit_ts,
        };
        let mut txn = MvccTxn::new(self.start_ts);
        let mut reader = MvccReader::new(snapshot);
        let mut guards = vec![];
        let mut locks = vec![];
        let mut final_min_commit_ts = TimeStamp::zero();
        let mut one_pc = vec![];
        for (mutation, action) in self.mutations {
            let key = mutation.key.clone();
            let outcome = prewrite(
                &mut txn,
                &mut reader,
                &props,
                mutation,
                action,
                context.concurrency_manager,
                &mut guards,
            );
            match outcome {
                Ok(PrewriteOutcome::Locked { min_commit_ts }) => {
                    final_min_commit_ts = final_min_commit_ts.max(min_commit_ts);
                }
                Ok(PrewriteOutcome::Checked) => {}
                Ok(PrewriteOutcome::OnePc { key, lock, unlock }) => {
                    final_min_commit_ts = final_min_commit_ts.max(lock.min_commit_ts);
                    one_pc.push((key, lock, unlock));
                }
                Err(Error::KeyIsLocked(info)) => locks.push(*info),
                Err(e @ (Error::WriteConflict { .. } | Error::PessimisticLockNotFound { .. })) => {
                    return match committed_at(&mut reader, &key, self.start_ts)? {
                        Some(commit_ts) => Ok(already_committed(self.commit_kind, commit_ts)),
                        None => Err(e),
                    };
                }
                Err(e) => return Err(e),
            }
        }
        if !locks.is_empty() {
            return Ok(WriteResult::read_only(PrewriteResult {
                locks,
                ..PrewriteResult::default()
            }));
        }
        let mut result = PrewriteResult::default();
        match self.commit_kind {
            CommitKind::TwoPc => {}
            CommitKind::Async => result.min_commit_ts = final_min_commit_ts,
            CommitKind::OnePc => {
                for (key, lock, unlock) in one_pc {
                    let write_type = WriteType::from_lock_type(lock.lock_type);
                    let write = Write::new(write_type, self.start_ts, lock.short_value);
                    txn.put_write(key.clone(), final_min_commit_ts, &write);
                    if unlock {
                        txn.unlock_key(key);
                    }
                }
                result.one_pc_commit_ts = final_min_commit_ts;
            }
        }
        let mut write_result = WriteResult::new(txn, result);
        write_result.lock_guards = guards;
        Ok(write_result)
    }
}

/// The commit ts of the transaction on `key`, if it committed there.
fn committed_at<S: Snapshot>(
    reader: &mut MvccReader<S>,
    key: &Key,
    start_ts: TimeStamp,
) -> Result<Option<TimeStamp>> {
    Ok(match reader.get_txn_commit_record(key, start_ts)? {
        TxnCommitRecord::SingleRecord { commit_ts, write }
            if write.write_type != WriteType::Rollback =>
        {
            Some(commit_ts)
        }
        _ => None,
    })
}

/// The answer to a prewrite of a transaction that has committed: nothing to do.
fn already_committed(commit_kind: CommitKind, commit_ts: TimeStamp) -> WriteResult<PrewriteResult> {
    let mut result = PrewriteResult::default();
    match commit_kind {
        CommitKind::TwoPc => {}
        CommitKind::Async => result.min_commit_ts = commit_ts,
        CommitKind::OnePc => result.one_pc_commit_ts = commit_ts,
    }
    WriteResult::read_only(result)
}
