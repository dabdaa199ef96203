//! Optimistic prewrite, commit and rollback.

use super::*;

#[test]
fn prewrite_commit_read_short_and_long_values() {
    let store = Store::new();
    let long = vec![b'v'; 300];
    store.must_prewrite(vec![put(b"k1", b"short"), put(b"k2", &long)], b"k1", 10);
    // The short value sits in the lock, the long one in the default CF.
    assert_eq!(
        store.must_locked(b"k1", 10).short_value.as_deref(),
        Some(&b"short"[..])
    );
    assert_eq!(store.must_locked(b"k2", 10).short_value, None);
    assert_eq!(store.default_value(b"k2", 10), Some(long.clone()));
    store.commit(&[b"k1", b"k2"], 10, 20).unwrap();
    store.must_unlocked(b"k1");
    store.must_written(b"k1", 10, 20, WriteType::Put);
    store.must_get(b"k1", 19, None);
    store.must_get(b"k1", 20, Some(b"short"));
    store.must_get(b"k2", 25, Some(&long));
    // Overwrite and delete: every read sees the version of its timestamp.
    store.must_put(b"k1", b"second", 30, 40);
    store.must_prewrite_delete(b"k1", b"k1", 50);
    store.must_commit(b"k1", 50, 60);
    for (read_ts, expected) in [(25, Some(&b"short"[..])), (45, Some(b"second")), (60, None)] {
        store.must_get(b"k1", read_ts, expected);
    }
}

#[test]
fn lock_records_are_invisible_to_reads() {
    let store = Store::new();
    store.must_put(b"k", b"v", 10, 20);
    store.must_prewrite(vec![Mutation::lock(Key::from_raw(b"k"))], b"k", 30);
    // A Lock-type lock never blocks a read.
    store.must_get(b"k", 35, Some(b"v"));
    store.must_commit(b"k", 30, 40);
    store.must_written(b"k", 30, 40, WriteType::Lock);
    store.must_get(b"k", 45, Some(b"v"));
}

#[test]
fn prewrite_conflicts_and_constraints() {
    let store = Store::new();
    store.must_put(b"k", b"v", 10, 20);
    // A transaction that started before the commit conflicts.
    let e = mvcc_err(store.prewrite(vec![put(b"k", b"x")], b"k", 15));
    assert!(
        matches!(
            e,
            mvcc::Error::WriteConflict {
                reason: mvcc::WriteConflictReason::Optimistic,
                ..
            }
        ),
        "{e:?}"
    );
    // Insert and CheckNotExists refuse an existing key; CheckNotExists writes no lock.
    let insert = Mutation::insert(Key::from_raw(b"k"), b"x".to_vec());
    assert!(matches!(
        mvcc_err(store.prewrite(vec![insert], b"k", 30)),
        mvcc::Error::AlreadyExist { .. }
    ));
    let check = Mutation::check_not_exists(Key::from_raw(b"k"));
    assert!(matches!(
        mvcc_err(store.prewrite(vec![check], b"k", 30)),
        mvcc::Error::AlreadyExist { .. }
    ));
    store.must_prewrite(
        vec![Mutation::check_not_exists(Key::from_raw(b"new"))],
        b"new",
        30,
    );
    store.must_unlocked(b"new");
    // A Lock record does not hide the Put under it from the existence check.
    store.must_prewrite(vec![Mutation::lock(Key::from_raw(b"k"))], b"k", 40);
    store.must_commit(b"k", 40, 50);
    let insert = Mutation::insert(Key::from_raw(b"k"), b"x".to_vec());
    assert!(matches!(
        mvcc_err(store.prewrite(vec![insert], b"k", 60)),
        mvcc::Error::AlreadyExist { .. }
    ));
    // After a delete, Insert succeeds.
    store.must_prewrite_delete(b"k", b"k", 70);
    store.must_commit(b"k", 70, 80);
    store.must_prewrite(
        vec![Mutation::insert(Key::from_raw(b"k"), b"x".to_vec())],
        b"k",
        90,
    );
}

#[test]
fn prewrite_is_all_or_nothing_and_reports_every_lock() {
    let store = Store::new();
    store.must_prewrite_put(b"a", b"1", b"a", 10);
    store.must_prewrite_put(b"c", b"1", b"a", 10);
    let result = store
        .prewrite(
            vec![put(b"a", b"2"), put(b"b", b"2"), put(b"c", b"2")],
            b"b",
            20,
        )
        .unwrap();
    let locked: Vec<_> = result
        .locks
        .iter()
        .map(|l| (l.key.clone(), l.lock_version))
        .collect();
    assert_eq!(locked, [(b"a".to_vec(), 10), (b"c".to_vec(), 10)]);
    store.must_unlocked(b"b");
    // Any other error writes nothing either.
    store.must_put(b"z", b"1", 30, 40);
    assert!(store
        .prewrite(vec![put(b"y", b"2"), put(b"z", b"2")], b"y", 35)
        .is_err());
    store.must_unlocked(b"y");
}

#[test]
fn prewrite_and_commit_are_idempotent() {
    let store = Store::new();
    store.must_prewrite_put(b"k", b"v", b"k", 10);
    store.must_prewrite_put(b"k", b"v", b"k", 10);
    store.must_commit(b"k", 10, 20);
    store.must_commit(b"k", 10, 20);
    // A prewrite retried after the commit succeeds and writes nothing.
    store.must_prewrite_put(b"k", b"v", b"k", 10);
    store.must_unlocked(b"k");
}

#[test]
fn commit_errors() {
    let store = Store::new();
    // Nothing there at all.
    assert!(matches!(
        mvcc_err(store.commit(&[b"k"], 10, 20)),
        mvcc::Error::TxnLockNotFound { .. }
    ));
    // Rolled back.
    store.must_prewrite_put(b"k", b"v", b"k", 10);
    store.rollback(&[b"k"], 10).unwrap();
    assert!(matches!(
        mvcc_err(store.commit(&[b"k"], 10, 20)),
        mvcc::Error::TxnLockNotFound { .. }
    ));
    // Below min_commit_ts.
    store.must_prewrite_put(b"m", b"v", b"m", 30);
    let mut lock = store.must_locked(b"m", 30);
    lock.min_commit_ts = ts(50);
    block_on(crate::kv::Engine::async_write(
        &store.engine,
        &ctx(),
        crate::kv::WriteData::new(vec![crate::kv::Modify::Put {
            cf: CF_LOCK,
            key: Key::from_raw(b"m").into_encoded(),
            value: lock.to_bytes(),
        }]),
    ))
    .unwrap();
    let e = mvcc_err(store.commit(&[b"m"], 30, 40));
    assert!(
        matches!(e, mvcc::Error::CommitTsExpired { min_commit_ts, .. } if min_commit_ts == ts(50))
    );
    store.must_commit(b"m", 30, 50);
    // A commit ts not after the start ts.
    store.must_prewrite_put(b"n", b"v", b"n", 60);
    assert!(matches!(
        mvcc_err(store.commit(&[b"n"], 60, 60)),
        mvcc::Error::InvalidRequest(_)
    ));
}

#[test]
fn rollback_removes_lock_and_value_and_blocks_late_prewrites() {
    let store = Store::new();
    let long = vec![b'v'; 300];
    store.must_prewrite_put(b"k", &long, b"k", 10);
    store.rollback(&[b"k"], 10).unwrap();
    store.must_unlocked(b"k");
    assert_eq!(store.default_value(b"k", 10), None);
    store.must_rolled_back(b"k", 10);
    // The prewrite arriving late must not succeed.
    let e = mvcc_err(store.prewrite(vec![put(b"k", b"late")], b"k", 10));
    assert!(matches!(
        e,
        mvcc::Error::WriteConflict {
            reason: mvcc::WriteConflictReason::SelfRolledBack,
            ..
        }
    ));
    // Rolling back a key never prewritten leaves the record too.
    store.rollback(&[b"other"], 20).unwrap();
    store.must_rolled_back(b"other", 20);
    // A committed transaction cannot be rolled back.
    store.must_put(b"c", b"v", 30, 40);
    assert!(matches!(
        mvcc_err(store.rollback(&[b"c"], 30)),
        mvcc::Error::Committed { .. }
    ));
}

#[test]
fn rollback_at_another_txns_commit_ts_flags_that_record() {
    let store = Store::new();
    // Transaction A commits at 20; transaction B started at exactly 20 is rolled back.
    store.must_put(b"k", b"v", 10, 20);
    store.rollback(&[b"k"], 20).unwrap();
    // The commit record stays (the value is still readable) and now also says "rolled back".
    store.must_get(b"k", 25, Some(b"v"));
    let write = store.write(b"k", 20).unwrap();
    assert_eq!((write.write_type, write.start_ts), (WriteType::Put, ts(10)));
    assert!(write.has_overlapped_rollback);
    // So B's late prewrite fails, and B's status reads as rolled back.
    let e = mvcc_err(store.prewrite(vec![put(b"k", b"late")], b"k", 20));
    assert!(matches!(
        e,
        mvcc::Error::WriteConflict {
            reason: mvcc::WriteConflictReason::SelfRolledBack,
            ..
        }
    ));
    assert_eq!(
        store.check_txn_status(b"k", 20, 0, ms(1), false).unwrap(),
        TxnStatus::RolledBack
    );
}

#[test]
fn async_commit_prewrite_commits_above_every_read() {
    let store = Store::new();
    store.must_get(b"k", 100, None);
    let result = store
        .prewrite_with(
            vec![put(b"k", b"v"), put(b"s", b"v")],
            b"k",
            50,
            0,
            CommitKind::Async,
        )
        .unwrap();
    assert_eq!(result.min_commit_ts, ts(101));
    let primary = store.must_locked(b"k", 50);
    assert!(primary.use_async_commit);
    assert_eq!(primary.secondaries, [b"s".to_vec()]);
    let secondary = store.must_locked(b"s", 50);
    assert!(secondary.use_async_commit && secondary.secondaries.is_empty());
    assert_eq!(secondary.min_commit_ts, ts(101));
    // The in-memory locks are gone once the write is applied.
    assert_eq!(store.cm.lock_table_len(), 0);
    // Readers at or above min_commit_ts are blocked until it commits.
    assert!(matches!(
        mvcc_err(store.get(b"k", 101)),
        mvcc::Error::KeyIsLocked(_)
    ));
    store.must_get(b"k", 100, None);
    store.commit(&[b"k", b"s"], 50, 101).unwrap();
    store.must_get(b"s", 101, Some(b"v"));
}

#[test]
fn one_pc_commits_in_the_prewrite() {
    let store = Store::new();
    store.must_get(b"k", 70, None);
    let long = vec![b'x'; 400];
    let result = store
        .prewrite_with(
            vec![put(b"k", b"v"), put(b"l", &long)],
            b"k",
            50,
            0,
            CommitKind::OnePc,
        )
        .unwrap();
    assert_eq!(result.one_pc_commit_ts, ts(71));
    assert_eq!(result.min_commit_ts, TimeStamp::zero());
    store.must_unlocked(b"k");
    store.must_written(b"k", 50, 71, WriteType::Put);
    store.must_get(b"k", 71, Some(b"v"));
    store.must_get(b"l", 71, Some(&long));
    store.must_get(b"k", 70, None);
}

#[test]
fn memory_locks_block_reads_while_a_prewrite_is_in_flight() {
    let store = Store::new();
    let key = Key::from_raw(b"k");
    let guard = store.cm.lock_key(&key);
    guard.publish_lock(|max_ts| {
        Lock::new(txn_types::LockType::Put, b"k".to_vec(), ts(10), 3000)
            .with_min_commit_ts(max_ts.next())
    });
    assert!(matches!(
        mvcc_err(store.get(b"k", 50)),
        mvcc::Error::KeyIsLocked(_)
    ));
    let pairs = block_on(
        store
            .storage
            .scan(&ctx(), vec![], vec![], 10, ts(50), false, false),
    );
    assert!(matches!(mvcc_err(pairs), mvcc::Error::KeyIsLocked(_)));
    drop(guard);
    store.must_get(b"k", 50, None);
}
