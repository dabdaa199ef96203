//! Point reads, TTLs, column families, key layout and read-side errors.

use codec::memcomparable;
use engine_traits::{KvEngine, Mutable, Peekable, WriteBatch, WriteOptions, CF_DEFAULT, CF_WRITE};

use super::*;
use crate::Error;

#[tokio::test]
async fn get_and_batch_get() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        let ctx = f.ctx();
        f.put(b"a", b"1").await;
        f.put(b"c", b"3").await;
        f.put(b"empty", b"").await;
        assert_eq!(f.get(b"a").await, Some(b"1".to_vec()), "{api:?}");
        assert_eq!(f.get(b"b").await, None, "{api:?}");
        assert_eq!(f.get(b"empty").await, Some(vec![]), "{api:?}");

        // Found keys only, in request order (not sorted), with the full user key.
        let keys = vec![f.key(b"c"), f.key(b"b"), f.key(b"a")];
        let pairs = f.storage.raw_batch_get(&ctx, "", keys).await.unwrap();
        let expected = vec![(f.key(b"c"), b"3".to_vec()), (f.key(b"a"), b"1".to_vec())];
        assert_eq!(pairs, expected, "{api:?}");
    }
}

#[tokio::test]
async fn stored_layout_follows_the_api_version() {
    let cases = [
        (ApiVersion::V1, b"k".to_vec()),
        (ApiVersion::V2, memcomparable::encode(b"r\0\0\0k")),
    ];
    for (api, storage_key) in cases {
        let f = Fixture::new(api);
        let ctx = f.ctx();
        f.storage
            .raw_put(&ctx, "", f.key(b"k"), b"v".to_vec(), 10, true)
            .await
            .unwrap();
        let stored = f.engine.kv_engine().get_value_cf(CF_DEFAULT, &storage_key);
        let expire = (START_SECS + 10).to_be_bytes();
        let expected = [&b"v"[..], &expire, &[1]].concat();
        assert_eq!(stored.unwrap(), Some(expected), "{api:?}");
    }
}

#[tokio::test]
async fn ttl_expiry_follows_the_clock() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        let ctx = f.ctx();
        let pairs = vec![(f.key(b"a"), b"1".to_vec()), (f.key(b"b"), b"2".to_vec())];
        f.storage
            .raw_batch_put(&ctx, "", pairs, vec![20, 20], true)
            .await
            .unwrap();
        f.storage
            .raw_put(&ctx, "", f.key(b"short"), b"s".to_vec(), 10, true)
            .await
            .unwrap();
        f.put(b"forever", b"f").await;

        assert_eq!(f.ttl(b"a").await, Some(20), "{api:?}");
        assert_eq!(f.ttl(b"short").await, Some(10), "{api:?}");
        assert_eq!(f.ttl(b"forever").await, Some(0), "{api:?}");
        assert_eq!(f.ttl(b"missing").await, None, "{api:?}");

        f.advance_secs(9);
        assert_eq!(f.ttl(b"short").await, Some(1), "{api:?}");
        assert_eq!(f.get(b"short").await, Some(b"s".to_vec()), "{api:?}");

        // Expired at exactly the expire time, everywhere.
        f.advance_secs(1);
        assert_eq!(f.get(b"short").await, None, "{api:?}");
        assert_eq!(f.ttl(b"short").await, None, "{api:?}");
        let keys = vec![f.key(b"short"), f.key(b"a")];
        let pairs = f.storage.raw_batch_get(&ctx, "", keys).await.unwrap();
        assert_eq!(pairs, vec![(f.key(b"a"), b"1".to_vec())], "{api:?}");
        let all = f
            .storage
            .raw_scan(&ctx, "", vec![], vec![], scan_all())
            .await
            .unwrap();
        let keys: Vec<_> = all.into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![f.key(b"a"), f.key(b"b"), f.key(b"forever")]);

        f.advance_secs(10);
        assert_eq!(f.get(b"a").await, None, "{api:?}");
        assert_eq!(f.get(b"forever").await, Some(b"f".to_vec()), "{api:?}");
    }
}

#[tokio::test]
async fn column_families_are_separate() {
    let f = Fixture::new(ApiVersion::V1);
    let ctx = f.ctx();
    for (cf, value) in [("", "d"), ("lock", "l"), ("write", "w")] {
        f.storage
            .raw_put(&ctx, cf, b"k".to_vec(), value.into(), 0, true)
            .await
            .unwrap();
    }
    for (cf, value) in [("", "d"), ("default", "d"), ("lock", "l"), ("write", "w")] {
        let got = f.storage.raw_get(&ctx, cf, b"k".to_vec()).await.unwrap();
        assert_eq!(got, Some(value.as_bytes().to_vec()), "cf {cf:?}");
    }
    for cf in ["raft", "nope"] {
        let err = f
            .storage
            .raw_get(&ctx, cf, b"k".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidCf { cf: c } if c == cf),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn v2_reads_refuse_keys_outside_the_raw_mode() {
    let f = Fixture::new(ApiVersion::V2);
    let ctx = f.ctx();
    let bad = b"x\0\0\0k".to_vec();
    let err = f.storage.raw_get(&ctx, "", bad.clone()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidKeyMode { cmd: "raw_get", .. }));
    let keys = vec![f.key(b"ok"), bad.clone()];
    let err = f.storage.raw_batch_get(&ctx, "", keys).await.unwrap_err();
    assert!(matches!(err, Error::InvalidKeyMode { .. }));
    let err = f.storage.raw_get_key_ttl(&ctx, "", bad).await.unwrap_err();
    assert!(matches!(err, Error::InvalidKeyMode { .. }));
}

#[tokio::test]
async fn unknown_api_version_is_refused() {
    let f = Fixture::new(ApiVersion::V1);
    let mut ctx = f.ctx();
    ctx.api_version = 5;
    let err = f
        .storage
        .raw_get(&ctx, "", b"k".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidApiVersion { version: 5 }));
}

#[tokio::test]
async fn read_outside_the_region_is_key_not_in_region() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        f.engine.set_region(Some(f.region(9, b"b", b"d")));
        let err = f
            .storage
            .raw_get(&f.ctx(), "", f.key(b"e"))
            .await
            .unwrap_err();
        let region_error = err.region_error().expect("a region error");
        let not_in_region = region_error.key_not_in_region.as_ref().unwrap();
        assert_eq!(not_in_region.region_id, 9, "{api:?}");
        let expected_key = api.encode_key("test", &f.key(b"e")).unwrap();
        assert_eq!(not_in_region.key, expected_key, "{api:?}");
    }
}

#[tokio::test]
async fn injected_not_leader_is_a_region_error() {
    let f = Fixture::new(ApiVersion::V1);
    f.engine.inject_region_error(not_leader(1));
    let err = f
        .storage
        .raw_get(&f.ctx(), "", b"k".to_vec())
        .await
        .unwrap_err();
    assert!(err.region_error().unwrap().not_leader.is_some());
    // Only the next request fails.
    assert_eq!(f.get(b"k").await, None);
}

#[tokio::test]
async fn malformed_stored_values_are_errors() {
    let f = Fixture::new(ApiVersion::V1);
    let mut batch = f.engine.kv_engine().write_batch();
    batch.put_cf(CF_DEFAULT, b"bad", b"v\x80").unwrap();
    batch.put_cf(CF_WRITE, b"short", b"\x01").unwrap();
    batch.write_opt(WriteOptions::default()).unwrap();
    let ctx = f.ctx();
    let err = f
        .storage
        .raw_get(&ctx, "", b"bad".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MalformedValue { .. }), "{err:?}");
    let err = f
        .storage
        .raw_get(&ctx, "write", b"short".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MalformedValue { .. }), "{err:?}");
    let err = f
        .storage
        .raw_scan(&ctx, "", vec![], vec![], scan_all())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MalformedValue { .. }), "{err:?}");
}

/// The futures must be `Send` for the gRPC service to spawn them.
#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let f = Fixture::new(ApiVersion::V1);
    let ctx = f.ctx();
    assert_send(&f.storage.raw_get(&ctx, "", vec![]));
    assert_send(&f.storage.raw_scan(&ctx, "", vec![], vec![], scan_all()));
    assert_send(&f.storage.raw_put(&ctx, "", vec![], vec![], 0, true));
    assert_send(&f.storage.raw_delete_range(&ctx, "", vec![], vec![]));
    assert_send(
        &f.storage
            .raw_compare_and_swap(&ctx, "", vec![], None, vec![], 0),
    );
}
