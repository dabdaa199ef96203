//! Pessimistic locks, their prewrite and their rollback.

use super::*;

#[test]
fn lock_then_prewrite_then_commit() {
    let store = Store::new();
    store.must_put(b"k", b"old", 5, 8);
    let values = store.pessimistic_lock(b"k", b"k", 10, 12).unwrap();
    assert_eq!(values, [Some(b"old".to_vec())]);
    let lock = store.must_locked(b"k", 10);
    assert!(lock.is_pessimistic_lock());
    assert_eq!(lock.for_update_ts, ts(12));
    // Locks of this kind never block reads.
    store.must_get(b"k", 20, Some(b"old"));
    store
        .prewrite_with(vec![put(b"k", b"new")], b"k", 10, 12, CommitKind::TwoPc)
        .unwrap();
    let lock = store.must_locked(b"k", 10);
    assert_eq!(lock.lock_type, txn_types::LockType::Put);
    assert_eq!(lock.for_update_ts, ts(12));
    store.must_commit(b"k", 10, 15);
    store.must_get(b"k", 15, Some(b"new"));
}

#[test]
fn conflicts_and_locks_of_others() {
    let store = Store::new();
    store.must_put(b"k", b"v", 10, 20);
    // A commit after for_update_ts: retry with a newer one.
    let e = mvcc_err(store.pessimistic_lock(b"k", b"k", 5, 15));
    assert!(matches!(
        e,
        mvcc::Error::WriteConflict {
            reason: mvcc::WriteConflictReason::PessimisticRetry,
            ..
        }
    ));
    store.must_pessimistic_lock(b"k", b"k", 5, 25);
    // Another transaction meets the lock.
    let e = mvcc_err(store.pessimistic_lock(b"k", b"k", 30, 30));
    assert!(matches!(e, mvcc::Error::KeyIsLocked(ref info) if info.lock_version == 5));
    // Locking again raises for_update_ts.
    store.must_pessimistic_lock(b"k", b"k", 5, 40);
    assert_eq!(store.must_locked(b"k", 5).for_update_ts, ts(40));
    // A prewritten key cannot be locked pessimistically again.
    store.must_prewrite_put(b"p", b"v", b"p", 50);
    let e = mvcc_err(store.pessimistic_lock(b"p", b"p", 50, 50));
    assert!(matches!(e, mvcc::Error::LockTypeNotMatch { .. }));
}

#[test]
fn request_is_all_or_nothing() {
    let store = Store::new();
    store.must_prewrite_put(b"b", b"v", b"b", 5);
    let result = store.sched(AcquirePessimisticLock {
        ctx: ctx(),
        keys: vec![(Key::from_raw(b"a"), false), (Key::from_raw(b"b"), false)],
        primary: b"a".to_vec(),
        start_ts: ts(10),
        for_update_ts: ts(10),
        lock_ttl: 20000,
        min_commit_ts: TimeStamp::zero(),
        return_values: false,
        check_existence: false,
        lock_only_if_exists: false,
        allow_lock_with_conflict: false,
    });
    assert!(matches!(mvcc_err(result), mvcc::Error::KeyIsLocked(_)));
    store.must_unlocked(b"a");
}

#[test]
fn value_existence_and_assertions() {
    let store = Store::new();
    store.must_put(b"k", b"v", 10, 20);
    let lock =
        |key: &[u8], should_not_exist, check_existence, lock_only_if_exists, return_values| {
            store.sched(AcquirePessimisticLock {
                ctx: ctx(),
                keys: vec![(Key::from_raw(key), should_not_exist)],
                primary: key.to_vec(),
                start_ts: ts(30),
                for_update_ts: ts(30),
                lock_ttl: 20000,
                min_commit_ts: TimeStamp::zero(),
                return_values,
                check_existence,
                lock_only_if_exists,
                allow_lock_with_conflict: false,
            })
        };
    assert!(matches!(
        mvcc_err(lock(b"k", true, false, false, false)),
        mvcc::Error::AlreadyExist { .. }
    ));
    assert_eq!(lock(b"missing", false, true, false, false).unwrap(), [None]);
    // Lock only if the key exists: no value, no lock.
    assert_eq!(lock(b"absent", false, false, true, true).unwrap(), [None]);
    store.must_unlocked(b"absent");
    assert_eq!(
        lock(b"k", false, false, true, true).unwrap(),
        [Some(b"v".to_vec())]
    );
    store.must_locked(b"k", 30);
}

#[test]
fn rolled_back_lock_cannot_be_taken() {
    let store = Store::new();
    store.rollback(&[b"k"], 10).unwrap();
    let e = mvcc_err(store.pessimistic_lock(b"k", b"k", 10, 10));
    assert!(matches!(e, mvcc::Error::PessimisticLockRolledBack { .. }));
}

#[test]
fn prewrite_without_its_pessimistic_lock() {
    let store = Store::new();
    // Nothing written since the start: the prewrite takes the lock (amend).
    store
        .prewrite_with(vec![put(b"a", b"v")], b"a", 10, 12, CommitKind::TwoPc)
        .unwrap();
    store.must_locked(b"a", 10);
    // Something committed since: the lock was lost.
    store.must_put(b"b", b"v", 15, 20);
    let e = mvcc_err(store.prewrite_with(vec![put(b"b", b"x")], b"b", 10, 12, CommitKind::TwoPc));
    assert!(matches!(e, mvcc::Error::PessimisticLockNotFound { .. }));
    // Another transaction's lock: lost too.
    store.must_prewrite_put(b"c", b"v", b"c", 30);
    let e = mvcc_err(store.prewrite_with(vec![put(b"c", b"x")], b"c", 10, 12, CommitKind::TwoPc));
    assert!(matches!(e, mvcc::Error::PessimisticLockNotFound { .. }));
    // An optimistic prewrite meeting its own pessimistic lock is refused.
    store.must_pessimistic_lock(b"d", b"d", 40, 40);
    let e = mvcc_err(store.prewrite(vec![put(b"d", b"x")], b"d", 40));
    assert!(matches!(e, mvcc::Error::LockTypeNotMatch { .. }));
}

#[test]
fn pessimistic_rollback_removes_only_pessimistic_locks() {
    let store = Store::new();
    store.must_pessimistic_lock(b"a", b"a", 10, 10);
    store.must_pessimistic_lock(b"b", b"a", 10, 20);
    store.must_prewrite_put(b"c", b"v", b"c", 10);
    store
        .sched(PessimisticRollback {
            ctx: ctx(),
            keys: vec![
                Key::from_raw(b"a"),
                Key::from_raw(b"b"),
                Key::from_raw(b"c"),
                Key::from_raw(b"z"),
            ],
            start_ts: ts(10),
            for_update_ts: ts(15),
        })
        .unwrap();
    store.must_unlocked(b"a");
    // Locked at a later for_update_ts than the rollback names: kept.
    store.must_locked(b"b", 10);
    store.must_locked(b"c", 10);
    assert_eq!(store.write(b"a", 10), None, "no rollback record");
}

#[test]
fn committing_a_leftover_pessimistic_lock_writes_a_lock_record() {
    let store = Store::new();
    store.must_put(b"k", b"v", 5, 6);
    store.must_pessimistic_lock(b"k", b"k", 10, 10);
    store.must_commit(b"k", 10, 20);
    store.must_written(b"k", 10, 20, WriteType::Lock);
    store.must_get(b"k", 25, Some(b"v"));
}
