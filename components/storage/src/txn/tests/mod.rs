//! Tests of the transactional commands and reads on a [`MockEngine`], one module per area.
//! The helpers follow TiKV's `must_*` style: each runs one command and asserts its outcome.

mod check_txn_status;
mod lock_wait;
mod pessimistic;
mod prewrite_commit;
mod reads;
mod recovery;
mod service;

use std::collections::HashMap;

use engine_traits::{Peekable, CF_DEFAULT, CF_LOCK, CF_WRITE};
use futures::executor::block_on;
use kvproto::kvrpcpb;
use txn_types::{Key, Lock, Mutation, TimeStamp, Write, WriteType};

use super::actions::{CommitKind, PessimisticAction, TxnStatus};
use super::commands::*;
use super::{GcOptions, TxnStorage};
use crate::concurrency_manager::ConcurrencyManager;
use crate::kv::mock::MockEngine;
use crate::latch::Latches;
use crate::lock_manager::{LockManager, LockWaitConfig};
use crate::mvcc;
use crate::{Error, Result, StorageConfig};

fn ts(ts: u64) -> TimeStamp {
    TimeStamp::new(ts)
}

/// A timestamp at `physical_ms` milliseconds (for TTL checks).
fn ms(physical_ms: u64) -> TimeStamp {
    TimeStamp::compose(physical_ms, 0)
}

fn ctx() -> kvrpcpb::Context {
    kvrpcpb::Context::default()
}

/// The MVCC error inside a storage error, for matching.
fn mvcc_err<T: std::fmt::Debug>(result: Result<T>) -> mvcc::Error {
    match result {
        Err(Error::Mvcc(e)) => e,
        other => panic!("expected an mvcc error, got {other:?}"),
    }
}

struct Store {
    engine: MockEngine,
    storage: TxnStorage<MockEngine>,
    cm: ConcurrencyManager,
}

impl Store {
    fn new() -> Self {
        let engine = MockEngine::new();
        let cm = ConcurrencyManager::new(ts(1));
        let storage = TxnStorage::new(
            engine.clone(),
            StorageConfig::default(),
            std::sync::Arc::new(Latches::default()),
            cm.clone(),
            LockManager::local(LockWaitConfig::default()),
        );
        Store {
            engine,
            storage,
            cm,
        }
    }

    fn sched<C: WriteCommand>(&self, cmd: C) -> Result<C::Output> {
        block_on(self.storage.sched(cmd))
    }

    // ---- prewrite ----

    fn prewrite_with(
        &self,
        mutations: Vec<Mutation>,
        primary: &[u8],
        start_ts: u64,
        for_update_ts: u64,
        commit_kind: CommitKind,
    ) -> Result<PrewriteResult> {
        let action = match for_update_ts {
            0 => PessimisticAction::SkipPessimisticCheck,
            _ => PessimisticAction::DoPessimisticCheck,
        };
        let secondaries = mutations
            .iter()
            .map(|m| m.key.to_raw().unwrap())
            .filter(|key| key.as_slice() != primary)
            .collect();
        self.sched(Prewrite {
            ctx: ctx(),
            mutations: mutations.into_iter().map(|m| (m, action)).collect(),
            primary: primary.to_vec(),
            start_ts: ts(start_ts),
            for_update_ts: ts(for_update_ts),
            lock_ttl: 3000,
            txn_size: 0,
            min_commit_ts: TimeStamp::zero(),
            commit_kind,
            secondaries,
        })
    }

    fn prewrite(
        &self,
        mutations: Vec<Mutation>,
        primary: &[u8],
        start_ts: u64,
    ) -> Result<PrewriteResult> {
        self.prewrite_with(mutations, primary, start_ts, 0, CommitKind::TwoPc)
    }

    fn must_prewrite(&self, mutations: Vec<Mutation>, primary: &[u8], start_ts: u64) {
        let result = self.prewrite(mutations, primary, start_ts).unwrap();
        assert!(result.locks.is_empty(), "{result:?}");
    }

    fn must_prewrite_put(&self, key: &[u8], value: &[u8], primary: &[u8], start_ts: u64) {
        self.must_prewrite(vec![put(key, value)], primary, start_ts);
    }

    fn must_prewrite_delete(&self, key: &[u8], primary: &[u8], start_ts: u64) {
        self.must_prewrite(
            vec![Mutation::delete(Key::from_raw(key))],
            primary,
            start_ts,
        );
    }

    // ---- commit and rollback ----

    fn commit(&self, keys: &[&[u8]], start_ts: u64, commit_ts: u64) -> Result<()> {
        self.sched(Commit {
            ctx: ctx(),
            keys: keys.iter().map(|k| Key::from_raw(k)).collect(),
            start_ts: ts(start_ts),
            commit_ts: ts(commit_ts),
        })
    }

    fn must_commit(&self, key: &[u8], start_ts: u64, commit_ts: u64) {
        self.commit(&[key], start_ts, commit_ts).unwrap();
    }

    /// Prewrites and commits `key = value`.
    fn must_put(&self, key: &[u8], value: &[u8], start_ts: u64, commit_ts: u64) {
        self.must_prewrite_put(key, value, key, start_ts);
        self.must_commit(key, start_ts, commit_ts);
    }

    fn rollback(&self, keys: &[&[u8]], start_ts: u64) -> Result<()> {
        self.sched(Rollback {
            ctx: ctx(),
            keys: keys.iter().map(|k| Key::from_raw(k)).collect(),
            start_ts: ts(start_ts),
        })
    }

    fn check_txn_status(
        &self,
        primary: &[u8],
        lock_ts: u64,
        caller_start_ts: u64,
        current_ts: TimeStamp,
        rollback_if_not_exist: bool,
    ) -> Result<TxnStatus> {
        self.sched(CheckTxnStatus {
            ctx: ctx(),
            primary_key: Key::from_raw(primary),
            lock_ts: ts(lock_ts),
            caller_start_ts: ts(caller_start_ts),
            current_ts,
            rollback_if_not_exist,
            force_sync_commit: false,
            resolving_pessimistic_lock: false,
            verify_is_primary: true,
        })
    }

    fn resolve(&self, txn_status: &[(u64, u64)]) -> Result<()> {
        let status: HashMap<_, _> = txn_status.iter().map(|&(s, c)| (ts(s), ts(c))).collect();
        block_on(self.storage.resolve_lock(&ctx(), status, None))
    }

    // ---- pessimistic ----

    fn pessimistic_lock(
        &self,
        key: &[u8],
        primary: &[u8],
        start_ts: u64,
        for_update_ts: u64,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.sched(pessimistic_lock_request(
            key,
            primary,
            start_ts,
            for_update_ts,
        ))
    }

    fn must_pessimistic_lock(&self, key: &[u8], primary: &[u8], start_ts: u64, for_update_ts: u64) {
        self.pessimistic_lock(key, primary, start_ts, for_update_ts)
            .unwrap();
    }

    // ---- reads and inspection ----

    fn get(&self, key: &[u8], read_ts: u64) -> Result<Option<Vec<u8>>> {
        block_on(self.storage.get(&ctx(), key.to_vec(), ts(read_ts)))
    }

    fn must_get(&self, key: &[u8], read_ts: u64, expected: Option<&[u8]>) {
        assert_eq!(
            self.get(key, read_ts).unwrap().as_deref(),
            expected,
            "read at {read_ts}"
        );
    }

    fn lock(&self, key: &[u8]) -> Option<Lock> {
        let stored = self
            .engine
            .kv_engine()
            .get_value_cf(CF_LOCK, Key::from_raw(key).as_encoded())
            .unwrap();
        stored.map(|bytes| Lock::parse(&bytes).unwrap())
    }

    fn must_locked(&self, key: &[u8], start_ts: u64) -> Lock {
        let lock = self.lock(key).expect("a lock");
        assert_eq!(lock.ts, ts(start_ts));
        lock
    }

    fn must_unlocked(&self, key: &[u8]) {
        assert_eq!(self.lock(key), None);
    }

    fn write(&self, key: &[u8], commit_ts: u64) -> Option<Write> {
        let write_key = Key::from_raw(key).append_ts(ts(commit_ts));
        let stored = self
            .engine
            .kv_engine()
            .get_value_cf(CF_WRITE, write_key.as_encoded())
            .unwrap();
        stored.map(|bytes| Write::parse(&bytes).unwrap())
    }

    fn must_written(&self, key: &[u8], start_ts: u64, commit_ts: u64, write_type: WriteType) {
        let write = self.write(key, commit_ts).expect("a write record");
        assert_eq!(
            (write.start_ts, write.write_type),
            (ts(start_ts), write_type)
        );
    }

    fn must_rolled_back(&self, key: &[u8], start_ts: u64) {
        let write = self.write(key, start_ts).expect("a rollback record");
        assert!(write.is_rollback(), "{write:?}");
    }

    fn default_value(&self, key: &[u8], start_ts: u64) -> Option<Vec<u8>> {
        let data_key = Key::from_raw(key).append_ts(ts(start_ts));
        self.engine
            .kv_engine()
            .get_value_cf(CF_DEFAULT, data_key.as_encoded())
            .unwrap()
    }
}

/// A request to lock `key` pessimistically, returning its value; a commit newer than
/// `for_update_ts` is a conflict.
fn pessimistic_lock_request(
    key: &[u8],
    primary: &[u8],
    start_ts: u64,
    for_update_ts: u64,
) -> AcquirePessimisticLock {
    AcquirePessimisticLock {
        ctx: ctx(),
        keys: vec![(Key::from_raw(key), false)],
        primary: primary.to_vec(),
        start_ts: ts(start_ts),
        for_update_ts: ts(for_update_ts),
        lock_ttl: 20000,
        min_commit_ts: TimeStamp::zero(),
        return_values: true,
        check_existence: false,
        lock_only_if_exists: false,
        allow_lock_with_conflict: false,
    }
}

fn put(key: &[u8], value: &[u8]) -> Mutation {
    Mutation::put(Key::from_raw(key), value.to_vec())
}
