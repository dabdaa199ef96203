//! Snapshot reads: get, batch get, scan in both directions, lock scans.

use super::*;

fn scan(
    store: &Store,
    start: &[u8],
    end: &[u8],
    limit: usize,
    read_ts: u64,
    reverse: bool,
) -> Vec<super::super::KvPairResult> {
    block_on(store.storage.scan(
        &ctx(),
        start.to_vec(),
        end.to_vec(),
        limit,
        ts(read_ts),
        false,
        reverse,
    ))
    .unwrap()
}

fn keys(pairs: &[super::super::KvPairResult]) -> Vec<String> {
    pairs
        .iter()
        .map(|pair| match pair {
            Ok((key, _)) => String::from_utf8(key.clone()).unwrap(),
            Err(mvcc::Error::KeyIsLocked(info)) => {
                format!("locked:{}", String::from_utf8_lossy(&info.key))
            }
            Err(e) => panic!("{e:?}"),
        })
        .collect()
}

/// Keys a..e at various versions: a (put), b (put then delete), c (put, then Lock record),
/// d (put after the read ts), e (long value).
fn fixture() -> Store {
    let store = Store::new();
    store.must_put(b"a", b"a1", 10, 11);
    store.must_put(b"b", b"b1", 10, 11);
    store.must_prewrite_delete(b"b", b"b", 12);
    store.must_commit(b"b", 12, 13);
    store.must_put(b"c", b"c1", 10, 11);
    store.must_prewrite(vec![Mutation::lock(Key::from_raw(b"c"))], b"c", 14);
    store.must_commit(b"c", 14, 15);
    store.must_put(b"d", b"d1", 30, 31);
    store.must_put(b"e", &[b'e'; 300], 10, 11);
    store
}

#[test]
fn forward_and_reverse_scans() {
    let store = fixture();
    assert_eq!(
        keys(&scan(&store, b"", b"", 10, 20, false)),
        ["a", "c", "e"]
    );
    assert_eq!(
        keys(&scan(&store, b"", b"", 10, 40, false)),
        ["a", "c", "d", "e"]
    );
    assert_eq!(keys(&scan(&store, b"b", b"e", 10, 40, false)), ["c", "d"]);
    assert_eq!(keys(&scan(&store, b"", b"", 2, 40, false)), ["a", "c"]);
    // Reverse: start is the exclusive upper bound, end the inclusive lower one.
    assert_eq!(
        keys(&scan(&store, b"", b"", 10, 40, true)),
        ["e", "d", "c", "a"]
    );
    assert_eq!(keys(&scan(&store, b"e", b"b", 10, 40, true)), ["d", "c"]);
    assert_eq!(keys(&scan(&store, b"", b"", 2, 20, true)), ["e", "c"]);
    assert!(scan(&store, b"", b"", 0, 40, false).is_empty());
    // Values, long ones too, and keys only.
    let pairs = scan(&store, b"e", b"", 1, 40, false);
    assert_eq!(pairs[0].as_ref().unwrap().1, vec![b'e'; 300]);
    let key_only = block_on(
        store
            .storage
            .scan(&ctx(), vec![], vec![], 10, ts(40), true, false),
    )
    .unwrap();
    assert!(key_only
        .iter()
        .all(|pair| pair.as_ref().unwrap().1.is_empty()));
}

#[test]
fn scans_report_locks_per_key_and_go_on() {
    let store = fixture();
    store.must_prewrite_put(b"b", b"new", b"b", 35);
    store.must_prewrite_put(b"bb", b"new", b"b", 35);
    assert_eq!(
        keys(&scan(&store, b"", b"", 10, 40, false)),
        ["a", "locked:b", "locked:bb", "c", "d", "e"]
    );
    assert_eq!(
        keys(&scan(&store, b"", b"", 10, 40, true)),
        ["e", "d", "c", "locked:bb", "locked:b", "a"]
    );
    // A read below the lock's start does not see it.
    assert_eq!(
        keys(&scan(&store, b"", b"", 10, 34, false)),
        ["a", "c", "d", "e"]
    );
    // The locked keys count towards the limit.
    assert_eq!(
        keys(&scan(&store, b"", b"", 2, 40, false)),
        ["a", "locked:b"]
    );
}

#[test]
fn batch_get_in_request_order_with_locks_per_key() {
    let store = fixture();
    store.must_prewrite_put(b"a", b"new", b"a", 35);
    let pairs = block_on(store.storage.batch_get(
        &ctx(),
        vec![
            b"e".to_vec(),
            b"a".to_vec(),
            b"missing".to_vec(),
            b"c".to_vec(),
        ],
        ts(40),
    ))
    .unwrap();
    assert_eq!(keys(&pairs), ["e", "locked:a", "c"]);
}

#[test]
fn resolved_locks_and_read_committed_skip_locks() {
    let store = fixture();
    store.must_prewrite_put(b"a", b"new", b"a", 35);
    let mut bypass = ctx();
    bypass.resolved_locks = vec![35];
    let value = block_on(store.storage.get(&bypass, b"a".to_vec(), ts(40))).unwrap();
    assert_eq!(value.as_deref(), Some(&b"a1"[..]));
    let mut rc = ctx();
    rc.isolation_level = kvrpcpb::IsolationLevel::Rc as i32;
    let value = block_on(store.storage.get(&rc, b"a".to_vec(), ts(40))).unwrap();
    assert_eq!(value.as_deref(), Some(&b"a1"[..]));
}

#[test]
fn scan_lock_filters_by_version_and_range() {
    let store = Store::new();
    store.must_prewrite(vec![put(b"a", b"v"), put(b"b", b"v")], b"a", 10);
    store.must_pessimistic_lock(b"c", b"c", 20, 20);
    store.must_prewrite_put(b"d", b"v", b"d", 30);
    let scan_lock = |max_ts, start: &[u8], end: &[u8], limit| {
        block_on(
            store
                .storage
                .scan_lock(&ctx(), ts(max_ts), start.to_vec(), end.to_vec(), limit),
        )
        .unwrap()
        .into_iter()
        .map(|info| (info.key, info.lock_version))
        .collect::<Vec<_>>()
    };
    assert_eq!(
        scan_lock(20, b"", b"", 0),
        [
            (b"a".to_vec(), 10),
            (b"b".to_vec(), 10),
            (b"c".to_vec(), 20)
        ]
    );
    assert_eq!(
        scan_lock(100, b"b", b"d", 0),
        [(b"b".to_vec(), 10), (b"c".to_vec(), 20)]
    );
    assert_eq!(scan_lock(100, b"", b"", 1), [(b"a".to_vec(), 10)]);
}

#[test]
fn api_v2_requires_txn_mode_keys() {
    let store = Store::new();
    let mut v2 = ctx();
    v2.api_version = kvrpcpb::ApiVersion::V2 as i32;
    let err = block_on(store.storage.get(&v2, b"r\0\0\0k".to_vec(), ts(10))).unwrap_err();
    assert!(matches!(err, Error::InvalidKeyMode { .. }), "{err:?}");
    block_on(store.storage.get(&v2, b"x\0\0\0k".to_vec(), ts(10))).unwrap();
}
