//! Scans and batch scans: bounds, direction, limits, region clipping and API V2 ranges.

use codec::memcomparable;
use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, CF_DEFAULT};

use super::*;
use crate::raw::RawValue;
use crate::Error;

fn opts(limit: usize, reverse: bool) -> ScanOptions {
    ScanOptions {
        limit,
        key_only: false,
        reverse,
    }
}

/// (start suffix, end suffix, limit, reverse, indexes of the expected `k<i>`).
type ScanCase = (&'static [u8], &'static [u8], usize, bool, &'static [u32]);

#[tokio::test]
async fn forward_and_reverse_scans() {
    // Reverse scans take the client's swapped bounds: start is the exclusive upper bound, end
    // the inclusive lower one.
    let cases: &[ScanCase] = &[
        (b"", b"", 10, false, &[1, 2, 3, 4, 5]),
        (b"k2", b"k4", 10, false, &[2, 3]),
        (b"k2", b"", 2, false, &[2, 3]),
        (b"k2", b"k2", 10, false, &[]),
        (b"k4", b"k2", 10, false, &[]),
        (b"k1", b"", 0, false, &[]),
        (b"", b"", 10, true, &[5, 4, 3, 2, 1]),
        (b"k4", b"k2", 10, true, &[3, 2]),
        (b"", b"k2", 2, true, &[5, 4]),
        (b"k3", b"", 10, true, &[2, 1]),
        (b"k2", b"k4", 10, true, &[]),
        (b"k5", b"k1", 0, true, &[]),
    ];
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        f.put_k1_to_k5().await;
        for &(start, end, limit, reverse, expected) in cases {
            let (start_key, end_key) = (bound(&f, start), bound(&f, end));
            let got = f
                .storage
                .raw_scan(&f.ctx(), "", start_key, end_key, opts(limit, reverse))
                .await
                .unwrap();
            let case = format!("{api:?} {start:?}..{end:?} limit {limit} reverse {reverse}");
            assert_eq!(got, f.pairs(expected), "{case}");
        }
    }
}

/// An empty bound stays empty (unbounded); any other gets the API's key prefix.
fn bound(f: &Fixture, suffix: &[u8]) -> Vec<u8> {
    if suffix.is_empty() {
        vec![]
    } else {
        f.key(suffix)
    }
}

#[tokio::test]
async fn key_only_scans_return_empty_values() {
    let f = Fixture::new(ApiVersion::V2);
    f.put_k1_to_k5().await;
    let scan = ScanOptions {
        limit: 2,
        key_only: true,
        reverse: false,
    };
    let got = f
        .storage
        .raw_scan(&f.ctx(), "", f.key(b"k3"), vec![], scan)
        .await
        .unwrap();
    assert_eq!(got, vec![(f.key(b"k3"), vec![]), (f.key(b"k4"), vec![])]);
}

#[tokio::test]
async fn scans_are_clipped_to_the_region() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        f.put_k1_to_k5().await;
        f.engine.set_region(Some(f.region(3, b"k2", b"k4")));
        let ctx = f.ctx();
        let forward = f
            .storage
            .raw_scan(&ctx, "", bound(&f, b""), bound(&f, b""), opts(10, false))
            .await
            .unwrap();
        assert_eq!(forward, f.pairs(&[2, 3]), "{api:?}");
        let reverse = f
            .storage
            .raw_scan(&ctx, "", bound(&f, b"k5"), bound(&f, b"k1"), opts(10, true))
            .await
            .unwrap();
        assert_eq!(reverse, f.pairs(&[3, 2]), "{api:?}");
    }
}

#[tokio::test]
async fn batch_scan_handles_each_range_separately() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        f.put_k1_to_k5().await;
        let ctx = f.ctx();
        // The client's `[..="k3", "k2"..="k5"]`: inclusive ends become `key\0`.
        let ranges = vec![
            (bound(&f, b""), f.key(b"k3\0")),
            (f.key(b"k2"), f.key(b"k5\0")),
        ];
        let got = f
            .storage
            .raw_batch_scan(&ctx, "", ranges.clone(), opts(4, false))
            .await
            .unwrap();
        assert_eq!(got, f.pairs(&[1, 2, 3, 2, 3, 4, 5]), "{api:?}");

        let limited = f
            .storage
            .raw_batch_scan(&ctx, "", ranges.clone(), opts(1, false))
            .await
            .unwrap();
        assert_eq!(limited, f.pairs(&[1, 2]), "{api:?}");

        let none = f
            .storage
            .raw_batch_scan(&ctx, "", ranges, opts(0, false))
            .await
            .unwrap();
        assert_eq!(none, vec![], "{api:?}");
    }
}

#[tokio::test]
async fn reverse_batch_scan_swaps_each_range() {
    let f = Fixture::new(ApiVersion::V1);
    f.put_k1_to_k5().await;
    let ranges = vec![(b"k3".to_vec(), b"k1".to_vec()), (vec![], b"k4".to_vec())];
    let got = f
        .storage
        .raw_batch_scan(&f.ctx(), "", ranges, opts(10, true))
        .await
        .unwrap();
    assert_eq!(got, f.pairs(&[2, 1, 5, 4]));
}

/// Plants a stored entry directly, bypassing storage's key encoding.
fn plant(f: &Fixture, storage_key: &[u8], value: &[u8]) {
    let mut batch = f.engine.kv_engine().write_batch();
    let stored = RawValue::new(value.to_vec(), 0, START_SECS).encode();
    batch.put_cf(CF_DEFAULT, storage_key, &stored).unwrap();
    batch.write_opt(WriteOptions::default()).unwrap();
}

#[tokio::test]
async fn v2_scans_stay_in_the_raw_mode() {
    let f = Fixture::new(ApiVersion::V2);
    f.put_k1_to_k5().await;
    // A transactional key, a V1 key that sorts inside the raw range but is no encoding, and a
    // raw key of the next keyspace.
    plant(&f, &memcomparable::encode(b"x\0\0\0k"), b"txn");
    plant(&f, b"r\0\0\0v1-key", b"v1");
    plant(&f, b"q", b"below");
    f.put(b"\xff", b"max").await;
    let other_keyspace = b"r\0\0\x01k".to_vec();
    f.storage
        .raw_put(
            &f.ctx(),
            "",
            other_keyspace.clone(),
            b"other".to_vec(),
            0,
            true,
        )
        .await
        .unwrap();

    let ctx = f.ctx();
    let all = f
        .storage
        .raw_scan(&ctx, "", vec![], vec![], scan_all())
        .await
        .unwrap();
    let mut expected = f.pairs(&[1, 2, 3, 4, 5]);
    expected.push((f.key(b"\xff"), b"max".to_vec()));
    expected.push((other_keyspace, b"other".to_vec()));
    assert_eq!(all, expected);

    // The client's keyspace bounds: `r\0\0\0` to `r\0\0\1`.
    let keyspace = f
        .storage
        .raw_scan(
            &ctx,
            "",
            V2_PREFIX.to_vec(),
            b"r\0\0\x01".to_vec(),
            scan_all(),
        )
        .await
        .unwrap();
    assert_eq!(keyspace, expected[..6]);

    // The end of the last keyspace is a valid upper bound.
    let to_mode_end = f
        .storage
        .raw_scan(
            &ctx,
            "",
            b"r\0\0\x01".to_vec(),
            b"s\0\0\0".to_vec(),
            scan_all(),
        )
        .await
        .unwrap();
    assert_eq!(to_mode_end, expected[6..]);
}

#[tokio::test]
async fn v2_scan_bounds_must_be_raw_keys() {
    let f = Fixture::new(ApiVersion::V2);
    let ctx = f.ctx();
    let cases: &[(&[u8], &[u8], bool)] = &[
        (b"x\0\0\0", b"", false),
        (b"", b"x\0\0\0", false),
        (b"a", b"r\0\0\x01", false),
        (b"x\0\0\0", b"r", true),
    ];
    for &(start, end, reverse) in cases {
        let result = f
            .storage
            .raw_scan(&ctx, "", start.to_vec(), end.to_vec(), opts(1, reverse))
            .await;
        assert!(
            matches!(
                result,
                Err(Error::InvalidKeyMode {
                    cmd: "raw_scan",
                    ..
                })
            ),
            "{start:?}..{end:?}: {result:?}"
        );
    }
    let ranges = vec![(f.key(b"a"), f.key(b"b")), (b"t".to_vec(), vec![])];
    let result = f
        .storage
        .raw_batch_scan(&ctx, "", ranges, opts(1, false))
        .await;
    assert!(matches!(result, Err(Error::InvalidKeyMode { .. })));
}
