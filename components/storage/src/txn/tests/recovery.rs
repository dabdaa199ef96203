//! Cleaning up after transactions: GC and range deletion.

use super::*;
use crate::kv::Engine;
use crate::mvcc::PointGetter;

#[test]
fn gc_keeps_the_newest_version_at_or_below_the_safe_point() {
    let store = Store::new();
    let long = vec![b'v'; 300];
    store.must_put(b"k", &long, 10, 11);
    store.must_put(b"k", b"v2", 20, 21);
    store.rollback(&[b"k"], 25).unwrap();
    store.must_put(b"k", b"v3", 30, 31);
    store.must_put(b"k", b"v4", 40, 41);
    let result = block_on(store.storage.gc(&ctx(), ts(35), GcOptions::default())).unwrap();
    assert_eq!(result.deleted_versions, 3);
    // Reads at or after the safe point see what they saw before.
    store.must_get(b"k", 35, Some(b"v3"));
    store.must_get(b"k", 41, Some(b"v4"));
    assert_eq!(store.write(b"k", 11), None);
    assert_eq!(store.write(b"k", 21), None);
    assert_eq!(store.write(b"k", 25), None);
    assert_eq!(store.default_value(b"k", 10), None);
    // A key deleted before the safe point disappears entirely.
    store.must_put(b"d", b"v", 10, 11);
    store.must_prewrite_delete(b"d", b"d", 12);
    store.must_commit(b"d", 12, 13);
    block_on(store.storage.gc(&ctx(), ts(35), GcOptions::default())).unwrap();
    assert_eq!(store.write(b"d", 13), None);
    assert_eq!(store.write(b"d", 11), None);
    store.must_get(b"d", 40, None);
}

#[test]
fn gc_of_many_versions_takes_several_writes() {
    let store = Store::new();
    for i in 0..2000 {
        store.must_put(b"hot", format!("v{i}").as_bytes(), 10 + 2 * i, 11 + 2 * i);
    }
    let result = block_on(store.storage.gc(&ctx(), ts(100_000), GcOptions::default())).unwrap();
    assert_eq!(result.deleted_versions, 1999);
    store.must_get(b"hot", 100_000, Some(b"v1999"));
}

/// Issue 10's case: 10,000 overwrites of one key. A GC at a safe point among them keeps what
/// every read at or above the safe point sees, one running with an engine snapshot taken
/// before the GC included; a GC past all of them leaves one version. A read below the safe
/// point is answered from what is left, as TiKV answers it (clients keep their reads above
/// the safe point).
#[test]
fn after_ten_thousand_overwrites_gc_leaves_what_reads_above_the_safe_point_see() {
    let store = Store::new();
    let commit_ts = |i: u64| 11 + 2 * i;
    for i in 0..10_000 {
        store.must_put(b"hot", format!("v{i}").as_bytes(), 10 + 2 * i, commit_ts(i));
    }
    let safe_point = commit_ts(8999);
    // A read just above the safe point, holding its engine snapshot across the GC.
    let snapshot = block_on(store.engine.async_snapshot(&ctx())).unwrap();
    let mut during_gc = PointGetter::new(snapshot, ts(safe_point + 1));
    let result = block_on(
        store
            .storage
            .gc(&ctx(), ts(safe_point), GcOptions::default()),
    )
    .unwrap();
    assert_eq!(result.deleted_versions, 8999);
    assert_eq!(during_gc.get(b"hot").unwrap(), Some(b"v8999".to_vec()));
    store.must_get(b"hot", safe_point, Some(b"v8999"));
    store.must_get(b"hot", safe_point + 1, Some(b"v8999"));
    store.must_get(b"hot", commit_ts(9500), Some(b"v9500"));
    // Below the safe point only the version at it is left.
    store.must_get(b"hot", commit_ts(100), None);

    let past_all = commit_ts(9999) + 1;
    let result = block_on(store.storage.gc(&ctx(), ts(past_all), GcOptions::default())).unwrap();
    assert_eq!(result.deleted_versions, 1000);
    let result = block_on(store.storage.gc(&ctx(), ts(past_all), GcOptions::default())).unwrap();
    assert_eq!((result.found_versions, result.deleted_versions), (1, 0));
    store.must_get(b"hot", past_all, Some(b"v9999"));
}

#[test]
fn delete_range_removes_every_cf() {
    let store = Store::new();
    store.must_put(b"a", b"v", 10, 11);
    store.must_put(b"b", &[b'v'; 300], 10, 11);
    store.must_prewrite_put(b"c", b"v", b"c", 20);
    store.must_put(b"d", b"v", 10, 11);
    block_on(
        store
            .storage
            .delete_range(&ctx(), b"a".to_vec(), b"d".to_vec(), false),
    )
    .unwrap();
    store.must_get(b"a", 30, None);
    store.must_unlocked(b"c");
    assert_eq!(store.default_value(b"b", 10), None);
    store.must_get(b"d", 30, Some(b"v"));
}
