//! Pessimistic lock requests waiting for other transactions' locks, and deadlocks among them.

use std::time::{Duration, Instant};

use super::*;

/// A pessimistic lock request on `key` (which is its own primary), asking for its value, as the
/// service makes it: a newer commit is no conflict for a request that reads with its lock.
fn lock_request(key: &[u8], start_ts: u64, for_update_ts: u64) -> AcquirePessimisticLock {
    AcquirePessimisticLock {
        allow_lock_with_conflict: true,
        ..pessimistic_lock_request(key, key, start_ts, for_update_ts)
    }
}

/// Runs `request` with lock waiting (`wait_timeout` in TiKV's encoding) on its own task.
fn spawn_lock(
    store: &Store,
    request: AcquirePessimisticLock,
    wait_timeout: i64,
) -> tokio::task::JoinHandle<Result<Vec<Option<Vec<u8>>>>> {
    let storage = store.storage.clone();
    tokio::spawn(async move {
        storage
            .acquire_pessimistic_lock(request, wait_timeout, false)
            .await
    })
}

/// Waits until `count` requests are parked.
async fn wait_parked(store: &Store, count: usize) {
    while store.storage.lock_manager().waiting() != count {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Txn 10 holds a, txn 20 holds b, and txn 10's request for b is parked.
async fn txn_10_waits_for_txn_20(
    store: &Store,
) -> tokio::task::JoinHandle<Result<Vec<Option<Vec<u8>>>>> {
    store.must_pessimistic_lock(b"a", b"a", 10, 10);
    store.must_pessimistic_lock(b"b", b"b", 20, 20);
    let waiter = spawn_lock(store, lock_request(b"b", 10, 11), 0);
    wait_parked(store, 1).await;
    waiter
}

fn pessimistic_rollback(store: &Store, key: &[u8], start_ts: u64, for_update_ts: u64) {
    store
        .sched(PessimisticRollback {
            ctx: ctx(),
            keys: vec![Key::from_raw(key)],
            start_ts: ts(start_ts),
            for_update_ts: ts(for_update_ts),
        })
        .unwrap();
}

#[tokio::test]
async fn a_waiter_woken_by_a_commit_locks_the_new_value() {
    let store = Store::new();
    store.must_put(b"k", b"1", 5, 6);
    store.must_pessimistic_lock(b"k", b"k", 10, 10);
    let waiter = spawn_lock(&store, lock_request(b"k", 20, 20), 0);
    wait_parked(&store, 1).await;
    store
        .prewrite_with(vec![put(b"k", b"2")], b"k", 10, 10, CommitKind::TwoPc)
        .unwrap();
    let released = Instant::now();
    store.must_commit(b"k", 10, 30);
    // Committed after the waiter's for_update_ts, yet it gets the lock and the newest value.
    let values = waiter.await.unwrap().unwrap();
    let woken_in = released.elapsed();
    assert_eq!(values, [Some(b"2".to_vec())]);
    assert!(
        woken_in < Duration::from_millis(500),
        "woken after {woken_in:?}"
    );
    // The lock keeps the client's for_update_ts (its rollback still matches), and the read at
    // the newer commit counts for async-commit timestamps.
    assert_eq!(store.must_locked(b"k", 20).for_update_ts, ts(20));
    assert!(store.cm.max_ts() >= ts(30));
    // A retried request reads what the first one read, not the value at its for_update_ts.
    let again = block_on(store.storage.sched(lock_request(b"k", 20, 20))).unwrap();
    assert_eq!(again, [Some(b"2".to_vec())]);
    store
        .prewrite_with(vec![put(b"k", b"3")], b"k", 20, 20, CommitKind::TwoPc)
        .unwrap();
    store.must_commit(b"k", 20, 40);
    store.must_get(b"k", 40, Some(b"3"));
}

#[test]
fn a_late_lock_request_of_a_finished_transaction_does_not_lock_over_its_outcome() {
    let store = Store::new();
    // Txn 10 locked, wrote and committed k at 20; another transaction wrote it at 30.
    store.must_pessimistic_lock(b"k", b"k", 10, 10);
    store
        .prewrite_with(vec![put(b"k", b"mine")], b"k", 10, 10, CommitKind::TwoPc)
        .unwrap();
    store.must_commit(b"k", 10, 20);
    store.must_put(b"k", b"theirs", 25, 30);
    // A late copy of txn 10's lock request is a conflict, not a new lock.
    let e = mvcc_err(block_on(store.storage.sched(lock_request(b"k", 10, 11))));
    assert!(matches!(e, mvcc::Error::WriteConflict { .. }), "{e:?}");
    store.must_unlocked(b"k");
    store.must_get(b"k", 25, Some(b"mine"));
    // The same for a rolled-back transaction.
    store.must_pessimistic_lock(b"r", b"r", 40, 40);
    pessimistic_rollback(&store, b"r", 40, 40);
    store.rollback(&[b"r"], 40).unwrap();
    store.must_put(b"r", b"v", 45, 50);
    assert!(block_on(store.storage.sched(lock_request(b"r", 40, 41))).is_err());
    store.must_unlocked(b"r");
}

#[tokio::test]
async fn a_waiter_without_values_sees_the_conflict_but_not_a_rollback() {
    let store = Store::new();
    store.must_pessimistic_lock(b"k", b"k", 10, 10);
    let mut request = lock_request(b"k", 20, 20);
    request.return_values = false;
    request.allow_lock_with_conflict = false;
    let waiter = spawn_lock(&store, request.clone(), 0);
    wait_parked(&store, 1).await;
    pessimistic_rollback(&store, b"k", 10, 10);
    assert_eq!(waiter.await.unwrap().unwrap(), [None]);
    store.must_locked(b"k", 20);

    // Txn 20 commits at 30; txn 25 read nothing under its lock, so it must start over.
    let waiter = spawn_lock(
        &store,
        AcquirePessimisticLock {
            start_ts: ts(25),
            for_update_ts: ts(25),
            ..request
        },
        0,
    );
    wait_parked(&store, 1).await;
    store
        .prewrite_with(vec![put(b"k", b"v")], b"k", 20, 20, CommitKind::TwoPc)
        .unwrap();
    store.must_commit(b"k", 20, 30);
    let e = mvcc_err(waiter.await.unwrap());
    assert!(matches!(
        e,
        mvcc::Error::WriteConflict {
            conflict_commit_ts,
            reason: mvcc::WriteConflictReason::PessimisticRetry,
            ..
        } if conflict_commit_ts == ts(30)
    ));
}

#[tokio::test]
async fn a_wait_ends_with_the_lock_after_its_timeout_or_at_once_when_negative() {
    let store = Store::new();
    store.must_pessimistic_lock(b"k", b"k", 10, 10);
    let started = Instant::now();
    let e = mvcc_err(
        store
            .storage
            .acquire_pessimistic_lock(lock_request(b"k", 20, 20), 50, false)
            .await,
    );
    assert!(matches!(e, mvcc::Error::KeyIsLocked(ref lock) if lock.lock_version == 10));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(store.storage.lock_manager().waiting(), 0);
    let e = mvcc_err(
        store
            .storage
            .acquire_pessimistic_lock(lock_request(b"k", 20, 20), -1, false)
            .await,
    );
    assert!(matches!(e, mvcc::Error::KeyIsLocked(_)));
}

#[tokio::test]
async fn two_transactions_locking_in_opposite_orders_get_one_deadlock() {
    let store = Store::new();
    let first = txn_10_waits_for_txn_20(&store).await;
    // Txn 20 would wait for a: a cycle.
    let e = mvcc_err(
        store
            .storage
            .acquire_pessimistic_lock(lock_request(b"a", 20, 21), 0, false)
            .await,
    );
    let mvcc::Error::Deadlock {
        start_ts,
        lock_ts,
        lock_key,
        deadlock_key_hash,
        wait_chain,
    } = e
    else {
        panic!("expected a deadlock, got {e:?}");
    };
    assert_eq!(
        (start_ts, lock_ts, lock_key),
        (ts(20), ts(10), b"a".to_vec())
    );
    // Txn 20 holds b, which txn 10 waits for.
    assert_eq!(deadlock_key_hash, crate::lock_manager::key_hash(b"b"));
    let edges: Vec<_> = wait_chain.iter().map(|e| (e.txn, e.wait_for_txn)).collect();
    assert_eq!(edges, [(10, 20), (20, 10)]);
    // Txn 20 gives up; txn 10 gets b.
    pessimistic_rollback(&store, b"b", 20, 20);
    first.await.unwrap().unwrap();
    store.must_locked(b"b", 10);
}

#[tokio::test]
async fn a_wait_whose_client_went_away_leaves_no_edge_behind() {
    let store = Store::new();
    let gone = txn_10_waits_for_txn_20(&store).await;
    // Its request is dropped (the client's deadline passed).
    gone.abort();
    let _ = gone.await;
    assert_eq!(store.storage.lock_manager().waiting(), 0);
    // Txn 20 waiting for a closes no cycle: it only times out.
    let e = mvcc_err(
        store
            .storage
            .acquire_pessimistic_lock(lock_request(b"a", 20, 21), 50, false)
            .await,
    );
    assert!(matches!(e, mvcc::Error::KeyIsLocked(_)), "{e:?}");
}
