//! The conformance suite every engine implementation must pass.
//!
//! An implementation crate runs it from its tests with
//! `engine_traits::conformance_tests!(path::to::new_engine);` where `new_engine() -> (E, Guard)`
//! returns a fresh, empty engine and anything that must outlive it (a temporary directory).
//! Each case is a plain function so a failure names the case.

use crate::{
    EngineIterator, IterOptions, Iterable, KvEngine, Mutable, Peekable, SeekKey, WriteBatch,
    WriteOptions, ALL_CFS, CF_DEFAULT, CF_LOCK, CF_RAFT, CF_WRITE,
};

/// Generates one `#[test]` per conformance case for the engine made by `$new_engine`.
#[macro_export]
macro_rules! conformance_tests {
    ($new_engine:path) => {
        $crate::conformance_tests!(@cases $new_engine;
            point_ops_per_cf, unknown_cf_is_an_error, write_batch_is_ordered_and_reusable,
            delete_range_is_half_open, forward_iteration_respects_bounds,
            reverse_iteration_respects_bounds, iterator_changes_direction,
            snapshot_is_isolated_from_later_writes, iterator_outlives_its_engine_handle,
            scan_stops_when_asked, invalid_range_is_an_error, binary_keys_and_empty_values,
            approximate_range_stats_track_data);
    };
    (@cases $new_engine:path; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let (engine, _guard) = $new_engine();
                $crate::conformance::$case(&engine);
            }
        )*
    };
}

fn put<E: KvEngine>(engine: &E, cf: &'static str, key: &[u8], value: &[u8]) {
    let mut wb = engine.write_batch();
    wb.put_cf(cf, key, value).expect("put");
    wb.write_opt(WriteOptions::default()).expect("write");
}

fn get<P: Peekable>(p: &P, cf: &'static str, key: &[u8]) -> Option<Vec<u8>> {
    p.get_value_cf(cf, key).expect("get")
}

/// Collects `[lower, upper)` of `cf` forward through an iterator.
fn collect_forward<I: Iterable>(
    i: &I,
    cf: &'static str,
    lower: &[u8],
    upper: &[u8],
) -> Vec<Vec<u8>> {
    let mut it = i
        .iterator_opt(cf, IterOptions::range(lower, upper))
        .expect("iterator");
    drain(&mut it)
}

fn keys(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|k| k.as_bytes().to_vec()).collect()
}

fn fill<E: KvEngine>(engine: &E, cf: &'static str, list: &[&str]) {
    let mut wb = engine.write_batch();
    for k in list {
        wb.put_cf(cf, k.as_bytes(), format!("v-{k}").as_bytes())
            .expect("put");
    }
    wb.write_opt(WriteOptions { sync: false }).expect("write");
}

pub fn point_ops_per_cf<E: KvEngine>(engine: &E) {
    for (i, cf) in ALL_CFS.iter().enumerate() {
        put(engine, cf, b"k", format!("value-{i}").as_bytes());
    }
    for (i, cf) in ALL_CFS.iter().enumerate() {
        assert_eq!(
            get(engine, cf, b"k"),
            Some(format!("value-{i}").into_bytes()),
            "cf {cf}"
        );
    }
    let mut wb = engine.write_batch();
    wb.delete_cf(CF_LOCK, b"k").unwrap();
    wb.write_opt(WriteOptions { sync: true }).unwrap();
    assert_eq!(get(engine, CF_LOCK, b"k"), None);
    assert_eq!(
        get(engine, CF_WRITE, b"k"),
        Some(b"value-2".to_vec()),
        "other cfs untouched"
    );
    assert_eq!(get(engine, CF_DEFAULT, b"missing"), None);
    put(engine, CF_DEFAULT, b"k", b"overwritten");
    assert_eq!(get(engine, CF_DEFAULT, b"k"), Some(b"overwritten".to_vec()));
}

pub fn unknown_cf_is_an_error<E: KvEngine>(engine: &E) {
    assert!(matches!(
        engine.get_value_cf("no-such-cf", b"k"),
        Err(crate::Error::CfNotFound { .. })
    ));
    assert!(engine
        .iterator_opt("no-such-cf", IterOptions::default())
        .is_err());
    let mut wb = engine.write_batch();
    let queued = wb.put_cf("no-such-cf", b"k", b"v");
    assert!(queued.is_err() || wb.write_opt(WriteOptions::default()).is_err());
}

pub fn write_batch_is_ordered_and_reusable<E: KvEngine>(engine: &E) {
    let mut wb = engine.write_batch();
    assert!(wb.is_empty());
    wb.put_cf(CF_DEFAULT, b"a", b"1").unwrap();
    wb.delete_cf(CF_DEFAULT, b"a").unwrap();
    wb.put_cf(CF_DEFAULT, b"b", b"1").unwrap();
    wb.put_cf(CF_DEFAULT, b"b", b"2").unwrap();
    wb.put_cf(CF_WRITE, b"c", b"3").unwrap();
    assert_eq!(wb.count(), 5);
    assert!(wb.data_size() >= 5, "data size counts keys and values");
    // Nothing is visible before the write.
    assert_eq!(get(engine, CF_DEFAULT, b"b"), None);
    wb.write_opt(WriteOptions::default()).unwrap();
    assert_eq!(get(engine, CF_DEFAULT, b"a"), None, "later delete wins");
    assert_eq!(
        get(engine, CF_DEFAULT, b"b"),
        Some(b"2".to_vec()),
        "later put wins"
    );
    assert_eq!(get(engine, CF_WRITE, b"c"), Some(b"3".to_vec()));
    assert!(wb.is_empty(), "a written batch is empty");
    wb.put_cf(CF_DEFAULT, b"x", b"dropped").unwrap();
    wb.clear();
    assert!(wb.is_empty());
    wb.put_cf(CF_DEFAULT, b"d", b"4").unwrap();
    wb.write_opt(WriteOptions::default()).unwrap();
    assert_eq!(get(engine, CF_DEFAULT, b"d"), Some(b"4".to_vec()));
    assert_eq!(
        get(engine, CF_DEFAULT, b"x"),
        None,
        "a cleared mutation is not written"
    );
}

pub fn delete_range_is_half_open<E: KvEngine>(engine: &E) {
    let all = ["a", "b", "c", "d", "e", "f"];
    fill(engine, CF_DEFAULT, &all);
    fill(engine, CF_WRITE, &all);
    let mut wb = engine.write_batch();
    wb.delete_range_cf(CF_DEFAULT, b"b", b"d").unwrap();
    wb.write_opt(WriteOptions::default()).unwrap();
    assert_eq!(
        collect_forward(engine, CF_DEFAULT, b"", b""),
        keys(&["a", "d", "e", "f"])
    );
    assert_eq!(
        collect_forward(engine, CF_WRITE, b"", b""),
        keys(&all),
        "other cf untouched"
    );
    assert!(wb.is_empty(), "a written batch is empty");
    // An engine has no largest key, so an unbounded delete-range is refused.
    assert!(matches!(
        wb.delete_range_cf(CF_DEFAULT, b"e", b""),
        Err(crate::Error::InvalidRange { .. })
    ));
    assert!(wb.delete_range_cf(CF_DEFAULT, b"e", b"a").is_err());
    wb.clear();
    wb.delete_range_cf(CF_DEFAULT, b"e", b"e").unwrap();
    wb.write_opt(WriteOptions::default()).unwrap();
    assert_eq!(
        collect_forward(engine, CF_DEFAULT, b"", b""),
        keys(&["a", "d", "e", "f"])
    );
    // A put after a delete-range in the same batch survives.
    wb.delete_range_cf(CF_WRITE, b"a", b"z").unwrap();
    wb.put_cf(CF_WRITE, b"c", b"new").unwrap();
    wb.write_opt(WriteOptions::default()).unwrap();
    assert_eq!(collect_forward(engine, CF_WRITE, b"", b""), keys(&["c"]));
}

pub fn forward_iteration_respects_bounds<E: KvEngine>(engine: &E) {
    fill(engine, CF_DEFAULT, &["a", "b", "c", "d", "e"]);
    assert_eq!(
        collect_forward(engine, CF_DEFAULT, b"b", b"d"),
        keys(&["b", "c"])
    );
    assert_eq!(
        collect_forward(engine, CF_DEFAULT, b"", b"c"),
        keys(&["a", "b"])
    );
    assert_eq!(
        collect_forward(engine, CF_DEFAULT, b"bb", b""),
        keys(&["c", "d", "e"])
    );
    let mut it = engine
        .iterator_opt(CF_DEFAULT, IterOptions::range(b"b", b"d"))
        .unwrap();
    assert!(it.seek(SeekKey::Key(b"bz")).unwrap());
    assert_eq!(it.key(), b"c");
    assert_eq!(it.value(), b"v-c");
    assert!(!it.next().unwrap(), "upper bound is exclusive");
    assert!(!it.valid().unwrap());
    assert!(
        !it.seek(SeekKey::Key(b"d")).unwrap(),
        "seek at the upper bound"
    );
    assert!(
        it.seek(SeekKey::Key(b"a")).unwrap(),
        "seek below the lower bound clamps"
    );
    assert_eq!(it.key(), b"b");
}

pub fn reverse_iteration_respects_bounds<E: KvEngine>(engine: &E) {
    fill(engine, CF_DEFAULT, &["a", "b", "c", "d", "e"]);
    let mut it = engine
        .iterator_opt(CF_DEFAULT, IterOptions::range(b"b", b"e"))
        .unwrap();
    let mut seen = vec![];
    let mut valid = it.seek_for_prev(SeekKey::End).unwrap();
    while valid {
        seen.push(it.key().to_vec());
        valid = it.prev().unwrap();
    }
    assert_eq!(seen, keys(&["d", "c", "b"]));
    assert!(it.seek_for_prev(SeekKey::Key(b"cc")).unwrap());
    assert_eq!(it.key(), b"c");
    assert!(
        it.seek_for_prev(SeekKey::Key(b"c")).unwrap(),
        "seek_for_prev is inclusive"
    );
    assert_eq!(it.key(), b"c");
    assert!(
        it.seek_for_prev(SeekKey::Key(b"zz")).unwrap(),
        "clamped to the upper bound"
    );
    assert_eq!(it.key(), b"d");
    assert!(
        !it.seek_for_prev(SeekKey::Key(b"a")).unwrap(),
        "below the lower bound"
    );
    let mut unbounded = engine
        .iterator_opt(CF_DEFAULT, IterOptions::default())
        .unwrap();
    assert!(unbounded.seek_for_prev(SeekKey::End).unwrap());
    assert_eq!(unbounded.key(), b"e");
    assert!(unbounded.seek(SeekKey::Start).unwrap());
    assert_eq!(unbounded.key(), b"a");
}

pub fn iterator_changes_direction<E: KvEngine>(engine: &E) {
    fill(engine, CF_LOCK, &["a", "b", "c"]);
    let mut it = engine
        .iterator_opt(CF_LOCK, IterOptions::default())
        .unwrap();
    assert!(it.seek(SeekKey::Key(b"b")).unwrap());
    assert!(it.next().unwrap());
    assert_eq!(it.key(), b"c");
    assert!(it.prev().unwrap());
    assert_eq!(it.key(), b"b");
    assert!(it.prev().unwrap());
    assert_eq!(it.key(), b"a");
    assert!(!it.prev().unwrap());
    assert!(
        it.seek(SeekKey::Start).unwrap(),
        "an exhausted iterator can seek again"
    );
    assert_eq!(it.key(), b"a");
}

pub fn snapshot_is_isolated_from_later_writes<E: KvEngine>(engine: &E) {
    fill(engine, CF_DEFAULT, &["a", "b"]);
    let snap = engine.snapshot();
    let mut wb = engine.write_batch();
    wb.put_cf(CF_DEFAULT, b"c", b"new").unwrap();
    wb.delete_cf(CF_DEFAULT, b"a").unwrap();
    wb.put_cf(CF_DEFAULT, b"b", b"changed").unwrap();
    wb.write_opt(WriteOptions::default()).unwrap();
    assert_eq!(get(&snap, CF_DEFAULT, b"a"), Some(b"v-a".to_vec()));
    assert_eq!(get(&snap, CF_DEFAULT, b"b"), Some(b"v-b".to_vec()));
    assert_eq!(get(&snap, CF_DEFAULT, b"c"), None);
    assert_eq!(
        collect_forward(&snap, CF_DEFAULT, b"", b""),
        keys(&["a", "b"])
    );
    let cloned = snap.clone();
    drop(snap);
    assert_eq!(
        collect_forward(&cloned, CF_DEFAULT, b"", b""),
        keys(&["a", "b"])
    );
    assert_eq!(
        collect_forward(engine, CF_DEFAULT, b"", b""),
        keys(&["b", "c"])
    );
    // A snapshot can be read from another thread.
    let handle = std::thread::spawn(move || get(&cloned, CF_DEFAULT, b"b"));
    assert_eq!(handle.join().unwrap(), Some(b"v-b".to_vec()));
}

pub fn iterator_outlives_its_engine_handle<E: KvEngine>(engine: &E) {
    fill(engine, CF_RAFT, &["a", "b"]);
    let handle = engine.clone();
    let snap = handle.snapshot();
    let mut from_engine = handle
        .iterator_opt(CF_RAFT, IterOptions::default())
        .unwrap();
    let mut from_snap = snap.iterator_opt(CF_RAFT, IterOptions::default()).unwrap();
    drop(handle);
    drop(snap);
    fill(engine, CF_RAFT, &["c"]);
    let expected = keys(&["a", "b"]);
    assert_eq!(
        drain(&mut from_engine),
        expected,
        "an iterator reads one consistent view"
    );
    assert_eq!(
        drain(&mut from_snap),
        expected,
        "an iterator reads one consistent view"
    );
}

fn drain(it: &mut impl EngineIterator) -> Vec<Vec<u8>> {
    let mut seen = vec![];
    let mut valid = it.seek(SeekKey::Start).expect("seek");
    while valid {
        seen.push(it.key().to_vec());
        valid = it.next().expect("next");
    }
    seen
}

pub fn scan_stops_when_asked<E: KvEngine>(engine: &E) {
    fill(engine, CF_DEFAULT, &["a", "b", "c", "d"]);
    let mut seen = vec![];
    engine
        .scan(CF_DEFAULT, b"b", b"", |k, v| {
            assert_eq!(v, format!("v-{}", String::from_utf8_lossy(k)).as_bytes());
            seen.push(k.to_vec());
            Ok(seen.len() < 2)
        })
        .unwrap();
    assert_eq!(seen, keys(&["b", "c"]));
}

pub fn invalid_range_is_an_error<E: KvEngine>(engine: &E) {
    let result = engine.scan(CF_DEFAULT, b"z", b"a", |_, _| Ok(true));
    assert!(matches!(result, Err(crate::Error::InvalidRange { .. })));
    assert!(engine
        .approximate_range_stats(CF_DEFAULT, b"z", b"a")
        .is_err());
}

pub fn binary_keys_and_empty_values<E: KvEngine>(engine: &E) {
    let mut wb = engine.write_batch();
    wb.put_cf(CF_DEFAULT, &[0x00], b"").unwrap();
    wb.put_cf(CF_DEFAULT, &[0x00, 0x00], b"zero").unwrap();
    wb.put_cf(CF_DEFAULT, &[0xff, 0xff], b"max").unwrap();
    wb.put_cf(CF_DEFAULT, b"", b"empty key").unwrap();
    wb.write_opt(WriteOptions::default()).unwrap();
    assert_eq!(
        get(engine, CF_DEFAULT, &[0x00]),
        Some(vec![]),
        "empty value is not absent"
    );
    assert_eq!(get(engine, CF_DEFAULT, b""), Some(b"empty key".to_vec()));
    let all = collect_forward(engine, CF_DEFAULT, b"", b"");
    assert_eq!(
        all,
        vec![vec![], vec![0x00], vec![0x00, 0x00], vec![0xff, 0xff]]
    );
}

pub fn approximate_range_stats_track_data<E: KvEngine>(engine: &E) {
    const KEYS: u64 = 20_000;
    const VALUE_LEN: usize = 256;
    let value = vec![b'x'; VALUE_LEN];
    let mut wb = engine.write_batch();
    for i in 0..KEYS {
        wb.put_cf(CF_WRITE, format!("key{i:08}").as_bytes(), &value)
            .unwrap();
        if wb.count() == 1000 {
            wb.write_opt(WriteOptions::default()).unwrap();
        }
    }
    wb.write_opt(WriteOptions::default()).unwrap();
    engine.flush().unwrap();
    let real_size = KEYS * (11 + VALUE_LEN as u64);
    let whole = engine.approximate_range_stats(CF_WRITE, b"", b"").unwrap();
    let within = |got: u64, want: u64| got >= want / 3 && got <= want * 3;
    assert!(
        within(whole.size, real_size),
        "size {} vs {real_size}",
        whole.size
    );
    assert!(within(whole.keys, KEYS), "keys {} vs {KEYS}", whole.keys);
    let half = engine
        .approximate_range_stats(CF_WRITE, b"key00010000", b"")
        .unwrap();
    assert!(within(half.keys, KEYS / 2), "half keys {}", half.keys);
    assert!(half.size < whole.size);
    let empty = engine
        .approximate_range_stats(CF_WRITE, b"zz", b"zzz")
        .unwrap();
    assert!(empty.keys < KEYS / 20, "empty range keys {}", empty.keys);
    let other_cf = engine.approximate_range_stats(CF_LOCK, b"", b"").unwrap();
    assert_eq!(other_cf.keys, 0);
}
