//! The request → response mapping: which response fields each outcome fills.

use kvproto::kvrpcpb::{self, KvPair};

use super::*;
use crate::raw::service;

fn pair(key: &[u8], value: &[u8]) -> KvPair {
    KvPair {
        error: None,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

#[tokio::test]
async fn get_sets_not_found_for_missing_keys() {
    let f = Fixture::new(ApiVersion::V2);
    f.put(b"a", b"1").await;
    let request = |suffix: &[u8]| kvrpcpb::RawGetRequest {
        context: Some(f.ctx()),
        key: f.key(suffix),
        cf: String::new(),
    };
    let found = service::raw_get(&f.storage, request(b"a")).await;
    assert_eq!(found.value, b"1");
    assert!(!found.not_found);
    let missing = service::raw_get(&f.storage, request(b"b")).await;
    assert!(missing.not_found);
    assert_eq!((missing.region_error, missing.error), (None, String::new()));
}

#[tokio::test]
async fn get_key_ttl_reports_ttl_or_not_found() {
    let f = Fixture::new(ApiVersion::V1);
    let put = kvrpcpb::RawPutRequest {
        context: Some(f.ctx()),
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        ttl: 10,
        for_cas: true,
        ..Default::default()
    };
    let resp = service::raw_put(&f.storage, put).await;
    assert_eq!(resp, kvrpcpb::RawPutResponse::default());
    let request = |key: &[u8]| kvrpcpb::RawGetKeyTtlRequest {
        context: Some(f.ctx()),
        key: key.to_vec(),
        cf: String::new(),
    };
    let resp = service::raw_get_key_ttl(&f.storage, request(b"k")).await;
    assert_eq!((resp.ttl, resp.not_found), (10, false));
    let resp = service::raw_get_key_ttl(&f.storage, request(b"nope")).await;
    assert_eq!((resp.ttl, resp.not_found), (0, true));
}

#[tokio::test]
async fn batch_put_get_and_delete() {
    let f = Fixture::new(ApiVersion::V2);
    let put = kvrpcpb::RawBatchPutRequest {
        context: Some(f.ctx()),
        pairs: vec![pair(&f.key(b"a"), b"1"), pair(&f.key(b"b"), b"2")],
        ttls: vec![0, 0],
        ..Default::default()
    };
    let resp = service::raw_batch_put(&f.storage, put).await;
    assert_eq!(resp, kvrpcpb::RawBatchPutResponse::default());

    let get = kvrpcpb::RawBatchGetRequest {
        context: Some(f.ctx()),
        keys: vec![f.key(b"b"), f.key(b"missing"), f.key(b"a")],
        cf: String::new(),
    };
    let resp = service::raw_batch_get(&f.storage, get.clone()).await;
    let expected = vec![pair(&f.key(b"b"), b"2"), pair(&f.key(b"a"), b"1")];
    assert_eq!(resp.pairs, expected);

    let delete = kvrpcpb::RawBatchDeleteRequest {
        context: Some(f.ctx()),
        keys: vec![f.key(b"a"), f.key(b"b")],
        ..Default::default()
    };
    let resp = service::raw_batch_delete(&f.storage, delete).await;
    assert_eq!(resp, kvrpcpb::RawBatchDeleteResponse::default());
    let resp = service::raw_batch_get(&f.storage, get).await;
    assert!(resp.pairs.is_empty());
}

#[tokio::test]
async fn batch_put_falls_back_to_the_single_ttl() {
    let f = Fixture::new(ApiVersion::V1);
    let put = kvrpcpb::RawBatchPutRequest {
        context: Some(f.ctx()),
        pairs: vec![pair(b"a", b"1"), pair(b"b", b"2")],
        ttl: 30,
        ..Default::default()
    };
    service::raw_batch_put(&f.storage, put).await;
    assert_eq!(f.ttl(b"b").await, Some(30));

    let bad = kvrpcpb::RawBatchPutRequest {
        context: Some(f.ctx()),
        pairs: vec![pair(b"a", b"1"), pair(b"b", b"2"), pair(b"c", b"3")],
        ttls: vec![1, 2],
        ..Default::default()
    };
    let resp = service::raw_batch_put(&f.storage, bad).await;
    assert_eq!(resp.region_error, None);
    assert_eq!(resp.error, "invalid ttls: 2 ttls for 3 pairs");
}

#[tokio::test]
async fn scan_and_delete_range() {
    let f = Fixture::new(ApiVersion::V1);
    f.put_k1_to_k5().await;
    let reverse = kvrpcpb::RawScanRequest {
        context: Some(f.ctx()),
        start_key: b"k4".to_vec(),
        end_key: b"k2".to_vec(),
        limit: 10,
        key_only: true,
        reverse: true,
        ..Default::default()
    };
    let resp = service::raw_scan(&f.storage, reverse).await;
    assert_eq!(resp.kvs, vec![pair(b"k3", b""), pair(b"k2", b"")]);

    let delete = kvrpcpb::RawDeleteRangeRequest {
        context: Some(f.ctx()),
        start_key: b"k2".to_vec(),
        end_key: b"k5".to_vec(),
        cf: String::new(),
    };
    let resp = service::raw_delete_range(&f.storage, delete).await;
    assert_eq!(resp, kvrpcpb::RawDeleteRangeResponse::default());
    let delete_one = kvrpcpb::RawDeleteRequest {
        context: Some(f.ctx()),
        key: b"k1".to_vec(),
        ..Default::default()
    };
    service::raw_delete(&f.storage, delete_one).await;

    let batch = kvrpcpb::RawBatchScanRequest {
        context: Some(f.ctx()),
        ranges: vec![
            kvrpcpb::KeyRange {
                start_key: vec![],
                end_key: vec![],
            },
            kvrpcpb::KeyRange {
                start_key: b"k5".to_vec(),
                end_key: vec![],
            },
        ],
        each_limit: 10,
        ..Default::default()
    };
    let resp = service::raw_batch_scan(&f.storage, batch).await;
    assert_eq!(resp.kvs, vec![pair(b"k5", b"v5"), pair(b"k5", b"v5")]);
}

#[tokio::test]
async fn cas_response_fields() {
    let f = Fixture::new(ApiVersion::V2);
    let request = |previous: Option<&[u8]>, value: &[u8]| kvrpcpb::RawCasRequest {
        context: Some(f.ctx()),
        key: f.key(b"k"),
        value: value.to_vec(),
        previous_not_exist: previous.is_none(),
        previous_value: previous.unwrap_or_default().to_vec(),
        ..Default::default()
    };
    let resp = service::raw_compare_and_swap(&f.storage, request(None, b"1")).await;
    assert!(resp.succeed && resp.previous_not_exist);
    assert!(resp.previous_value.is_empty());

    let resp = service::raw_compare_and_swap(&f.storage, request(Some(b"0"), b"2")).await;
    assert!(!resp.succeed && !resp.previous_not_exist);
    assert_eq!(resp.previous_value, b"1");

    let resp = service::raw_compare_and_swap(&f.storage, request(Some(b"1"), b"2")).await;
    assert!(resp.succeed && !resp.previous_not_exist);
    assert_eq!(resp.previous_value, b"1");
    assert_eq!(f.get(b"k").await, Some(b"2".to_vec()));
}

/// A region error fills `region_error` and nothing else, in every response shape.
#[tokio::test]
async fn region_errors_fill_only_region_error() {
    let f = Fixture::new(ApiVersion::V1);
    f.put(b"k", b"v").await;

    f.engine.inject_region_error(not_leader(1));
    let get = kvrpcpb::RawGetRequest {
        context: Some(f.ctx()),
        key: b"k".to_vec(),
        cf: String::new(),
    };
    let resp = service::raw_get(&f.storage, get).await;
    assert!(resp.region_error.unwrap().not_leader.is_some());
    assert!(resp.error.is_empty() && resp.value.is_empty() && !resp.not_found);

    f.engine.inject_region_error(not_leader(1));
    let scan = kvrpcpb::RawScanRequest {
        context: Some(f.ctx()),
        limit: 10,
        ..Default::default()
    };
    let resp = service::raw_scan(&f.storage, scan).await;
    assert!(resp.region_error.unwrap().not_leader.is_some());
    assert!(resp.kvs.is_empty());

    f.engine.set_region(Some(MockRegion::new(6, b"a", b"c")));
    let put = kvrpcpb::RawPutRequest {
        context: Some(f.ctx()),
        key: b"z".to_vec(),
        ..Default::default()
    };
    let resp = service::raw_put(&f.storage, put).await;
    let key_not_in_region = resp.region_error.unwrap().key_not_in_region.unwrap();
    assert_eq!(key_not_in_region.region_id, 6);
    assert!(resp.error.is_empty());

    let cas = kvrpcpb::RawCasRequest {
        context: Some(f.ctx()),
        key: b"z".to_vec(),
        previous_not_exist: true,
        ..Default::default()
    };
    let resp = service::raw_compare_and_swap(&f.storage, cas).await;
    assert!(resp.region_error.unwrap().key_not_in_region.is_some());
    assert!(!resp.succeed && !resp.previous_not_exist && resp.error.is_empty());
}

/// Other failures fill `error`, or a pair's `KeyError` where the response has no `error`.
#[tokio::test]
async fn other_errors_fill_error_or_a_key_error() {
    let f = Fixture::new(ApiVersion::V2);
    let get = kvrpcpb::RawGetRequest {
        context: Some(f.ctx()),
        key: b"no-mode".to_vec(),
        cf: String::new(),
    };
    let resp = service::raw_get(&f.storage, get).await;
    assert_eq!(resp.region_error, None);
    assert!(resp.error.contains("invalid key mode"), "{}", resp.error);

    let batch_get = kvrpcpb::RawBatchGetRequest {
        context: Some(f.ctx()),
        keys: vec![f.key(b"a")],
        cf: "nope".into(),
    };
    let resp = service::raw_batch_get(&f.storage, batch_get).await;
    assert_eq!(resp.region_error, None);
    let [failed] = resp.pairs.as_slice() else {
        panic!("expected one error pair, got {:?}", resp.pairs);
    };
    assert!(failed
        .error
        .as_ref()
        .unwrap()
        .abort
        .contains("invalid column family"));

    let scan = kvrpcpb::RawScanRequest {
        context: Some(f.ctx()),
        start_key: b"x\0\0\0".to_vec(),
        limit: 1,
        ..Default::default()
    };
    let resp = service::raw_scan(&f.storage, scan).await;
    assert!(resp.kvs[0]
        .error
        .as_ref()
        .unwrap()
        .abort
        .contains("invalid key mode"));

    let limit = f.storage.config().max_key_size;
    let put = kvrpcpb::RawPutRequest {
        context: Some(f.ctx()),
        key: f.key(&vec![0; limit]),
        ..Default::default()
    };
    let resp = service::raw_put(&f.storage, put).await;
    let expected = format!("key is too large, key size: {}, limit: {limit}", limit + 4);
    assert_eq!(resp.error, expected);
}
