//! Bad input through the request-to-response mapping: each gets TiKV's error in the response,
//! and nothing is written.

use super::*;
use crate::kv::mock::MockRegion;
use crate::txn::service;

fn mutation(key: &[u8], value: &[u8]) -> kvrpcpb::Mutation {
    kvrpcpb::Mutation {
        op: kvrpcpb::Op::Put as i32,
        key: key.to_vec(),
        value: value.to_vec(),
        ..Default::default()
    }
}

fn prewrite_request(
    mutations: Vec<kvrpcpb::Mutation>,
    primary: &[u8],
    start_ts: u64,
) -> kvrpcpb::PrewriteRequest {
    kvrpcpb::PrewriteRequest {
        context: Some(ctx()),
        mutations,
        primary_lock: primary.to_vec(),
        start_version: start_ts,
        lock_ttl: 3000,
        ..Default::default()
    }
}

fn commit_request(key: &[u8], start_ts: u64, commit_ts: u64) -> kvrpcpb::CommitRequest {
    kvrpcpb::CommitRequest {
        context: Some(ctx()),
        start_version: start_ts,
        keys: vec![key.to_vec()],
        commit_version: commit_ts,
        ..Default::default()
    }
}

#[test]
fn prewrite_bad_input() {
    let store = Store::new();
    // No primary.
    let resp = block_on(service::kv_prewrite(
        &store.storage,
        prewrite_request(vec![mutation(b"k", b"v")], b"", 10),
    ));
    assert!(resp.errors[0].abort.contains("primary"), "{resp:?}");
    store.must_unlocked(b"k");
    // A key over the 8 KiB limit.
    let long_key = vec![b'k'; 8 * 1024 + 1];
    let resp = block_on(service::kv_prewrite(
        &store.storage,
        prewrite_request(vec![mutation(&long_key, b"v")], &long_key, 10),
    ));
    assert!(
        resp.errors[0].abort.contains("key is too large"),
        "{resp:?}"
    );
    // An op a prewrite cannot carry.
    let mut rollback = mutation(b"k", b"");
    rollback.op = kvrpcpb::Op::Rollback as i32;
    let resp = block_on(service::kv_prewrite(
        &store.storage,
        prewrite_request(vec![rollback], b"k", 10),
    ));
    assert!(
        resp.errors[0].abort.contains("cannot be prewritten"),
        "{resp:?}"
    );
    // A transactional key of the raw mode in API V2.
    let mut req = prewrite_request(vec![mutation(b"r\0\0\0k", b"v")], b"r\0\0\0k", 10);
    req.context.as_mut().unwrap().api_version = kvrpcpb::ApiVersion::V2 as i32;
    let resp = block_on(service::kv_prewrite(&store.storage, req));
    assert!(
        resp.errors[0].abort.contains("invalid key mode"),
        "{resp:?}"
    );
}

#[test]
fn commit_bad_input() {
    let store = Store::new();
    // A rolled-back transaction: the retryable TxnLockNotFound, as TiKV sends it.
    store.must_prewrite_put(b"k", b"v", b"k", 10);
    store.rollback(&[b"k"], 10).unwrap();
    let resp = block_on(service::kv_commit(
        &store.storage,
        commit_request(b"k", 10, 20),
    ));
    assert!(resp.error.unwrap().retryable.contains("txn lock not found"));
    // Below min_commit_ts: CommitTsExpired with the lock's min_commit_ts (above a read at 100).
    store.must_get(b"a", 100, None);
    let mut req = prewrite_request(vec![mutation(b"a", b"v")], b"a", 30);
    req.use_async_commit = true;
    let prewritten = block_on(service::kv_prewrite(&store.storage, req));
    assert_eq!(prewritten.min_commit_ts, 101);
    let resp = block_on(service::kv_commit(
        &store.storage,
        commit_request(b"a", 30, 31),
    ));
    let expired = resp
        .error
        .unwrap()
        .commit_ts_expired
        .expect("CommitTsExpired");
    assert_eq!(expired.min_commit_ts, prewritten.min_commit_ts);
    // Resolving a transaction that never existed is fine.
    let resp = block_on(service::kv_resolve_lock(
        &store.storage,
        kvrpcpb::ResolveLockRequest {
            context: Some(ctx()),
            start_version: 99,
            commit_version: 100,
            ..Default::default()
        },
    ));
    assert!(resp.error.is_none() && resp.region_error.is_none());
}

#[test]
fn keys_outside_the_region_are_region_errors() {
    let store = Store::new();
    let start = Key::from_raw(b"m").into_encoded();
    store
        .engine
        .set_region(Some(MockRegion::new(7, &start, &[])));
    let resp = block_on(service::kv_prewrite(
        &store.storage,
        prewrite_request(vec![mutation(b"a", b"v")], b"a", 10),
    ));
    let region_error = resp.region_error.expect("a region error");
    assert!(region_error.key_not_in_region.is_some(), "{region_error:?}");
    assert!(resp.errors.is_empty());
    let resp = block_on(service::kv_get(
        &store.storage,
        kvrpcpb::GetRequest {
            context: Some(ctx()),
            key: b"a".to_vec(),
            version: 10,
        },
    ));
    assert!(resp.region_error.unwrap().key_not_in_region.is_some());
}

#[test]
fn check_txn_status_answers_only_the_combinations_clients_accept() {
    let store = Store::new();
    let request = |lock_ts, rollback_if_not_exist| kvrpcpb::CheckTxnStatusRequest {
        context: Some(ctx()),
        primary_key: b"pk".to_vec(),
        lock_ts,
        caller_start_ts: 0,
        current_ts: u64::MAX,
        rollback_if_not_exist,
        verify_is_primary: true,
        ..Default::default()
    };
    // Locked: lock info with its TTL, no commit version.
    store.must_prewrite_put(b"pk", b"v", b"pk", 10);
    let mut req = request(10, false);
    req.current_ts = 20;
    let resp = block_on(service::kv_check_txn_status(&store.storage, req));
    assert_eq!((resp.commit_version, resp.lock_ttl), (0, 3000));
    assert!(resp.lock_info.is_some());
    // Expired: rolled back, nothing else.
    let resp = block_on(service::kv_check_txn_status(
        &store.storage,
        request(10, false),
    ));
    assert_eq!(
        (resp.commit_version, resp.lock_ttl, resp.lock_info),
        (0, 0, None)
    );
    assert_eq!(resp.action, kvrpcpb::Action::TtlExpireRollback as i32);
    // Committed: the commit version alone.
    store.must_put(b"pk", b"v", 30, 40);
    let resp = block_on(service::kv_check_txn_status(
        &store.storage,
        request(30, false),
    ));
    assert_eq!(
        (resp.commit_version, resp.lock_ttl, resp.lock_info),
        (40, 0, None)
    );
    // Unknown: TxnNotFound, or a rollback when asked.
    let resp = block_on(service::kv_check_txn_status(
        &store.storage,
        request(50, false),
    ));
    assert!(resp.error.unwrap().txn_not_found.is_some());
    let resp = block_on(service::kv_check_txn_status(
        &store.storage,
        request(50, true),
    ));
    assert_eq!(resp.action, kvrpcpb::Action::LockNotExistRollback as i32);
}
