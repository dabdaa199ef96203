//! CheckTxnStatus, one test per case the client sends, and CheckSecondaryLocks.

use super::*;

/// Start of the transactions below, in physical milliseconds; their locks live 3000 ms.
const T0: u64 = 1_000_000;

fn lock_ts() -> u64 {
    ms(T0).into_inner()
}

#[test]
fn live_lock_is_reported_untouched() {
    let store = Store::new();
    store.must_prewrite_put(b"pk", b"v", b"pk", lock_ts());
    let status = store
        .check_txn_status(b"pk", lock_ts(), 0, ms(T0 + 100), false)
        .unwrap();
    let TxnStatus::Uncommitted {
        lock,
        min_commit_ts_pushed,
    } = status
    else {
        panic!("{status:?}");
    };
    assert_eq!(lock.ttl, 3000);
    assert!(!min_commit_ts_pushed);
    store.must_locked(b"pk", lock_ts());
}

#[test]
fn expired_lock_is_rolled_back() {
    let store = Store::new();
    store.must_prewrite_put(b"pk", b"v", b"pk", lock_ts());
    let status = store
        .check_txn_status(b"pk", lock_ts(), 0, ms(T0 + 3001), false)
        .unwrap();
    assert_eq!(status, TxnStatus::TtlExpire);
    store.must_unlocked(b"pk");
    store.must_rolled_back(b"pk", lock_ts());
    // Asked again, the rollback record answers.
    let status = store
        .check_txn_status(b"pk", lock_ts(), 0, ms(T0 + 5000), false)
        .unwrap();
    assert_eq!(status, TxnStatus::RolledBack);
    // The maximum current ts (cleanup_locks) treats every lock as expired.
    store.must_prewrite_put(b"other", b"v", b"other", lock_ts() + 1);
    let status = store
        .check_txn_status(b"other", lock_ts() + 1, 0, TimeStamp::max(), true)
        .unwrap();
    assert_eq!(status, TxnStatus::TtlExpire);
}

#[test]
fn expired_pessimistic_primary() {
    let store = Store::new();
    store.must_pessimistic_lock(b"pk", b"pk", lock_ts(), lock_ts());
    let mut cmd = CheckTxnStatus {
        ctx: ctx(),
        primary_key: Key::from_raw(b"pk"),
        lock_ts: ts(lock_ts()),
        caller_start_ts: TimeStamp::zero(),
        current_ts: ms(T0 + 20_001),
        rollback_if_not_exist: false,
        force_sync_commit: false,
        resolving_pessimistic_lock: true,
        verify_is_primary: true,
    };
    // Resolving a pessimistic lock just removes it, without a rollback record.
    assert_eq!(store.sched(cmd).unwrap(), TxnStatus::PessimisticRollBack);
    store.must_unlocked(b"pk");
    assert_eq!(store.write(b"pk", lock_ts()), None);
    // Not resolving a pessimistic lock: a full rollback.
    store.must_pessimistic_lock(b"pk2", b"pk2", lock_ts(), lock_ts());
    cmd = CheckTxnStatus {
        ctx: ctx(),
        primary_key: Key::from_raw(b"pk2"),
        lock_ts: ts(lock_ts()),
        caller_start_ts: TimeStamp::zero(),
        current_ts: ms(T0 + 20_001),
        rollback_if_not_exist: false,
        force_sync_commit: false,
        resolving_pessimistic_lock: false,
        verify_is_primary: true,
    };
    assert_eq!(store.sched(cmd).unwrap(), TxnStatus::TtlExpire);
    store.must_rolled_back(b"pk2", lock_ts());
}

#[test]
fn async_commit_primary_is_never_rolled_back_here() {
    let store = Store::new();
    store
        .prewrite_with(
            vec![put(b"pk", b"v"), put(b"s", b"v")],
            b"pk",
            lock_ts(),
            0,
            CommitKind::Async,
        )
        .unwrap();
    let status = store
        .check_txn_status(b"pk", lock_ts(), 0, TimeStamp::max(), true)
        .unwrap();
    assert!(matches!(
        status,
        TxnStatus::Uncommitted {
            min_commit_ts_pushed: false,
            ..
        }
    ));
    store.must_locked(b"pk", lock_ts());
    // Unless the client falls back to 2PC.
    let status = store
        .sched(CheckTxnStatus {
            ctx: ctx(),
            primary_key: Key::from_raw(b"pk"),
            lock_ts: ts(lock_ts()),
            caller_start_ts: TimeStamp::zero(),
            current_ts: TimeStamp::max(),
            rollback_if_not_exist: true,
            force_sync_commit: true,
            resolving_pessimistic_lock: false,
            verify_is_primary: true,
        })
        .unwrap();
    assert_eq!(status, TxnStatus::TtlExpire);
}

#[test]
fn min_commit_ts_is_pushed_past_the_caller() {
    let store = Store::new();
    let start = lock_ts();
    store
        .sched(Prewrite {
            ctx: ctx(),
            mutations: vec![(put(b"pk", b"v"), PessimisticAction::SkipPessimisticCheck)],
            primary: b"pk".to_vec(),
            start_ts: ts(start),
            for_update_ts: TimeStamp::zero(),
            lock_ttl: 3000,
            txn_size: 0,
            min_commit_ts: ts(start + 1),
            commit_kind: CommitKind::TwoPc,
            secondaries: vec![],
        })
        .unwrap();
    let caller = start + 10;
    let current = ms(T0 + 1);
    let status = store
        .check_txn_status(b"pk", start, caller, current, false)
        .unwrap();
    let TxnStatus::Uncommitted {
        lock,
        min_commit_ts_pushed,
    } = status
    else {
        panic!("{status:?}");
    };
    assert!(min_commit_ts_pushed);
    assert_eq!(lock.min_commit_ts, ts(caller + 1).max(current));
    assert_eq!(
        store.must_locked(b"pk", start).min_commit_ts,
        lock.min_commit_ts
    );
    // The caller's own reads now go around the lock.
    store.must_get(b"pk", caller, None);
    // A point read at the maximum ts is told it may ignore the lock, without a push.
    let status = store
        .check_txn_status(b"pk", start, u64::MAX, current, false)
        .unwrap();
    assert!(matches!(
        status,
        TxnStatus::Uncommitted {
            min_commit_ts_pushed: true,
            ..
        }
    ));
}

#[test]
fn missing_lock_cases() {
    let store = Store::new();
    // Committed.
    store.must_put(b"c", b"v", 10, 20);
    assert_eq!(
        store.check_txn_status(b"c", 10, 0, ms(T0), false).unwrap(),
        TxnStatus::Committed { commit_ts: ts(20) }
    );
    // Nothing at all, not asked to roll back: TxnNotFound.
    let e = mvcc_err(store.check_txn_status(b"n", 30, 0, ms(T0), false));
    assert!(matches!(e, mvcc::Error::TxnNotFound { start_ts, .. } if start_ts == ts(30)));
    assert_eq!(store.write(b"n", 30), None);
    // Asked to roll back: a protected rollback record, so a late prewrite fails.
    assert_eq!(
        store.check_txn_status(b"n", 30, 0, ms(T0), true).unwrap(),
        TxnStatus::LockNotExist
    );
    assert!(store.write(b"n", 30).unwrap().is_protected());
    assert!(store.prewrite(vec![put(b"n", b"late")], b"n", 30).is_err());
    // Resolving a pessimistic lock whose primary is gone: nothing to do.
    let status = store
        .sched(CheckTxnStatus {
            ctx: ctx(),
            primary_key: Key::from_raw(b"p"),
            lock_ts: ts(40),
            caller_start_ts: TimeStamp::zero(),
            current_ts: ms(T0),
            rollback_if_not_exist: true,
            force_sync_commit: false,
            resolving_pessimistic_lock: true,
            verify_is_primary: true,
        })
        .unwrap();
    assert_eq!(status, TxnStatus::LockNotExistDoNothing);
    assert_eq!(store.write(b"p", 40), None);
}

#[test]
fn a_secondary_is_not_a_primary() {
    let store = Store::new();
    store.must_prewrite(vec![put(b"pk", b"v"), put(b"s", b"v")], b"pk", 10);
    let e = mvcc_err(store.check_txn_status(b"s", 10, 0, ms(T0), false));
    let mvcc::Error::PrimaryMismatch(info) = e else {
        panic!("{e:?}");
    };
    assert_eq!(info.primary_lock, b"pk");
    store.must_locked(b"s", 10);
}

#[test]
fn zero_ttl_lock_expires_at_once() {
    let store = Store::new();
    let cmd_ttl_zero = Prewrite {
        ctx: ctx(),
        mutations: vec![(put(b"pk", b"v"), PessimisticAction::SkipPessimisticCheck)],
        primary: b"pk".to_vec(),
        start_ts: ts(lock_ts()),
        for_update_ts: TimeStamp::zero(),
        lock_ttl: 0,
        txn_size: 0,
        min_commit_ts: TimeStamp::zero(),
        commit_kind: CommitKind::TwoPc,
        secondaries: vec![],
    };
    store.sched(cmd_ttl_zero).unwrap();
    let status = store
        .check_txn_status(b"pk", lock_ts(), 0, ms(T0 + 1), false)
        .unwrap();
    assert_eq!(status, TxnStatus::TtlExpire);
}

fn check_secondaries(store: &Store, keys: &[&[u8]], start_ts: u64) -> SecondaryLocksStatus {
    store
        .sched(CheckSecondaryLocks {
            ctx: ctx(),
            keys: keys.iter().map(|k| Key::from_raw(k)).collect(),
            start_ts: ts(start_ts),
        })
        .unwrap()
}

#[test]
fn check_secondary_locks_cases() {
    let store = Store::new();
    store
        .prewrite_with(
            vec![put(b"pk", b"v"), put(b"s1", b"v"), put(b"s2", b"v")],
            b"pk",
            10,
            0,
            CommitKind::Async,
        )
        .unwrap();
    let SecondaryLocksStatus::Locked(locks) = check_secondaries(&store, &[b"s1", b"s2"], 10) else {
        panic!("locked expected");
    };
    assert_eq!(locks.len(), 2);
    assert!(locks.iter().all(|l| l.use_async_commit));
    // Once a secondary committed, the answer is its commit ts.
    store.must_commit(b"s1", 10, 30);
    assert_eq!(
        check_secondaries(&store, &[b"s1", b"s2"], 10),
        SecondaryLocksStatus::Committed(ts(30))
    );
    // A secondary that was never prewritten is rolled back for good.
    assert_eq!(
        check_secondaries(&store, &[b"s3"], 40),
        SecondaryLocksStatus::RolledBack
    );
    assert!(store.write(b"s3", 40).unwrap().is_protected());
    assert!(store
        .prewrite(vec![put(b"s3", b"late")], b"s3", 40)
        .is_err());
    // A pessimistic lock is rolled back too.
    store.must_pessimistic_lock(b"s4", b"pk", 50, 50);
    assert_eq!(
        check_secondaries(&store, &[b"s4"], 50),
        SecondaryLocksStatus::RolledBack
    );
    store.must_unlocked(b"s4");
    store.must_rolled_back(b"s4", 50);
}

#[test]
fn resolve_lock_commits_and_rolls_back_whole_transactions() {
    let store = Store::new();
    store.must_prewrite(vec![put(b"a", b"1"), put(b"b", b"1")], b"a", 10);
    store.must_prewrite(vec![put(b"c", b"2"), put(b"d", b"2")], b"c", 20);
    store.must_prewrite(vec![put(b"e", b"3")], b"e", 30);
    store.resolve(&[(10, 15), (20, 0)]).unwrap();
    store.must_get(b"b", 15, Some(b"1"));
    for key in [b"a", b"b", b"c", b"d"] {
        store.must_unlocked(key);
    }
    store.must_rolled_back(b"d", 20);
    store.must_locked(b"e", 30);
    // Resolving again, or a transaction with no locks, is fine.
    store.resolve(&[(10, 15), (99, 0)]).unwrap();
}

#[test]
fn heartbeat_raises_ttl_only() {
    let store = Store::new();
    store.must_prewrite_put(b"pk", b"v", b"pk", 10);
    let heartbeat = |advise_ttl| {
        store.sched(TxnHeartBeat {
            ctx: ctx(),
            primary_key: Key::from_raw(b"pk"),
            start_ts: ts(10),
            advise_ttl,
        })
    };
    assert_eq!(heartbeat(10_000).unwrap(), 10_000);
    assert_eq!(heartbeat(5_000).unwrap(), 10_000);
    assert_eq!(store.must_locked(b"pk", 10).ttl, 10_000);
    store.must_commit(b"pk", 10, 20);
    assert!(matches!(
        mvcc_err(heartbeat(20_000)),
        mvcc::Error::TxnNotFound { .. }
    ));
}
