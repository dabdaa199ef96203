//! Writes: puts, deletes, range deletes, compare-and-swap, and write-side errors.

use futures::FutureExt;

use super::*;
use crate::raw::write::resolve_ttls;
use crate::raw::CasOutcome;
use crate::Error;

#[tokio::test]
async fn put_delete_and_batches() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        let ctx = f.ctx();
        f.put(b"a", b"1").await;
        f.put(b"a", b"2").await;
        assert_eq!(f.get(b"a").await, Some(b"2".to_vec()), "{api:?}");

        let pairs = vec![
            (f.key(b"b"), b"b".to_vec()),
            (f.key(b"c"), b"c".to_vec()),
            (f.key(b"d"), b"d".to_vec()),
        ];
        f.storage
            .raw_batch_put(&ctx, "", pairs, vec![], true)
            .await
            .unwrap();
        assert_eq!(f.get(b"c").await, Some(b"c".to_vec()), "{api:?}");

        f.storage
            .raw_delete(&ctx, "", f.key(b"a"), true)
            .await
            .unwrap();
        // Deleting a missing key is fine.
        f.storage
            .raw_delete(&ctx, "", f.key(b"a"), true)
            .await
            .unwrap();
        let keys = vec![f.key(b"b"), f.key(b"d"), f.key(b"missing")];
        f.storage
            .raw_batch_delete(&ctx, "", keys, true)
            .await
            .unwrap();
        let left = f
            .storage
            .raw_scan(&ctx, "", vec![], vec![], scan_all())
            .await
            .unwrap();
        assert_eq!(left, vec![(f.key(b"c"), b"c".to_vec())], "{api:?}");

        // Empty batches are no-ops.
        f.storage
            .raw_batch_put(&ctx, "", vec![], vec![], true)
            .await
            .unwrap();
        f.storage
            .raw_batch_delete(&ctx, "", vec![], true)
            .await
            .unwrap();
    }
}

#[test]
fn batch_put_ttl_rules() {
    assert_eq!(resolve_ttls(3, vec![]).unwrap(), vec![0, 0, 0]);
    assert_eq!(resolve_ttls(3, vec![7]).unwrap(), vec![7, 7, 7]);
    assert_eq!(resolve_ttls(2, vec![1, 2]).unwrap(), vec![1, 2]);
    assert_eq!(resolve_ttls(0, vec![]).unwrap(), Vec::<u64>::new());
    assert!(matches!(
        resolve_ttls(3, vec![1, 2]),
        Err(Error::InvalidTtls { pairs: 3, ttls: 2 })
    ));
}

#[tokio::test]
async fn batch_put_applies_per_pair_ttls() {
    let f = Fixture::new(ApiVersion::V2);
    let ctx = f.ctx();
    let pairs = vec![(f.key(b"a"), b"1".to_vec()), (f.key(b"b"), b"2".to_vec())];
    f.storage
        .raw_batch_put(&ctx, "", pairs.clone(), vec![5, 0], true)
        .await
        .unwrap();
    assert_eq!(f.ttl(b"a").await, Some(5));
    assert_eq!(f.ttl(b"b").await, Some(0));
    let err = f
        .storage
        .raw_batch_put(&ctx, "", pairs, vec![1, 2, 3], true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTtls { pairs: 2, ttls: 3 }));
}

#[tokio::test]
async fn delete_range() {
    // (start suffix, end suffix, indexes left of k1..k5); an empty end means to the end.
    let cases: &[(&[u8], &[u8], &[u32])] = &[
        (b"k2", b"k4", &[1, 4, 5]),
        (b"k2", b"", &[1]),
        (b"", b"", &[]),
        (b"k3", b"k3", &[1, 2, 3, 4, 5]),
        (b"k6", b"", &[1, 2, 3, 4, 5]),
    ];
    for api in BOTH_APIS {
        for &(start, end, left) in cases {
            let f = Fixture::new(api);
            f.put_k1_to_k5().await;
            let ctx = f.ctx();
            let bound = |s: &[u8]| if s.is_empty() { vec![] } else { f.key(s) };
            f.storage
                .raw_delete_range(&ctx, "", bound(start), bound(end))
                .await
                .unwrap();
            let got = f
                .storage
                .raw_scan(&ctx, "", vec![], vec![], scan_all())
                .await
                .unwrap();
            assert_eq!(got, f.pairs(left), "{api:?} {start:?}..{end:?}");
        }
    }
}

#[tokio::test]
async fn delete_range_refuses_inverted_ranges() {
    let f = Fixture::new(ApiVersion::V1);
    let result = f
        .storage
        .raw_delete_range(&f.ctx(), "", b"b".to_vec(), b"a".to_vec())
        .await;
    assert!(matches!(result, Err(Error::InvalidRange)));
}

#[tokio::test]
async fn v1_delete_range_to_the_end_in_the_last_region() {
    let f = Fixture::new(ApiVersion::V1);
    f.put_k1_to_k5().await;
    f.engine.set_region(Some(f.region(2, b"k2", b"")));
    let ctx = f.ctx();
    f.storage
        .raw_delete_range(&ctx, "", b"k3".to_vec(), vec![])
        .await
        .unwrap();
    f.engine.set_region(None);
    let got = f
        .storage
        .raw_scan(&ctx, "", vec![], vec![], scan_all())
        .await
        .unwrap();
    assert_eq!(got, f.pairs(&[1, 2]));
}

#[tokio::test]
async fn v1_delete_range_to_the_end_is_refused_by_a_region_with_an_end() {
    let f = Fixture::new(ApiVersion::V1);
    f.put_k1_to_k5().await;
    f.engine.set_region(Some(f.region(2, b"k2", b"k4")));
    let err = f
        .storage
        .raw_delete_range(&f.ctx(), "", b"k3".to_vec(), vec![])
        .await
        .unwrap_err();
    let region_error = err.region_error().expect("a region error");
    assert!(region_error.key_not_in_region.is_some(), "{region_error:?}");
    f.engine.set_region(None);
    let got = f
        .storage
        .raw_scan(&f.ctx(), "", vec![], vec![], scan_all())
        .await
        .unwrap();
    assert_eq!(got, f.pairs(&[1, 2, 3, 4, 5]), "nothing deleted");
}

#[tokio::test]
async fn keys_over_the_size_limit_are_refused() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        let ctx = f.ctx();
        let limit = f.storage.config().max_key_size;
        let at_limit = f.key(&vec![b'a'; limit - key(api, b"").len()]);
        let over = f.key(&vec![b'a'; limit + 1 - key(api, b"").len()]);
        assert_eq!(at_limit.len(), limit);

        f.storage
            .raw_put(&ctx, "", at_limit, b"v".to_vec(), 0, true)
            .await
            .unwrap();
        let expected = format!("key is too large, key size: {}, limit: {limit}", limit + 1);
        let results = [
            f.storage
                .raw_put(&ctx, "", over.clone(), vec![], 0, true)
                .await,
            f.storage
                .raw_batch_put(&ctx, "", vec![(over.clone(), vec![])], vec![], true)
                .await,
            f.storage.raw_delete(&ctx, "", over.clone(), true).await,
            f.storage
                .raw_batch_delete(&ctx, "", vec![over.clone()], true)
                .await,
            f.storage
                .raw_delete_range(&ctx, "", f.key(b"a"), over.clone())
                .await,
            f.storage
                .raw_compare_and_swap(&ctx, "", over.clone(), None, vec![], 0)
                .await
                .map(|_| ()),
        ];
        for result in results {
            let err = result.unwrap_err();
            assert_eq!(err.to_string(), expected, "{api:?}");
        }
    }
}

#[tokio::test]
async fn v2_writes_refuse_keys_outside_the_raw_mode() {
    let f = Fixture::new(ApiVersion::V2);
    let ctx = f.ctx();
    let bad = b"x\0\0\0k".to_vec();
    let results = [
        f.storage
            .raw_put(&ctx, "", bad.clone(), vec![], 0, true)
            .await,
        f.storage
            .raw_batch_put(
                &ctx,
                "",
                vec![(f.key(b"ok"), vec![]), (bad.clone(), vec![])],
                vec![],
                true,
            )
            .await,
        f.storage.raw_delete(&ctx, "", b"k".to_vec(), true).await,
        f.storage
            .raw_batch_delete(&ctx, "", vec![bad.clone()], true)
            .await,
        f.storage
            .raw_delete_range(&ctx, "", bad.clone(), vec![])
            .await,
        f.storage
            .raw_compare_and_swap(&ctx, "", bad, None, vec![], 0)
            .await
            .map(|_| ()),
    ];
    for result in results {
        assert!(
            matches!(result, Err(Error::InvalidKeyMode { .. })),
            "{result:?}"
        );
    }
    // Nothing of the half-valid batch was written.
    assert_eq!(f.get(b"ok").await, None);
}

#[tokio::test]
async fn writes_outside_the_region_are_key_not_in_region() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        f.engine.set_region(Some(f.region(4, b"b", b"d")));
        let ctx = f.ctx();
        f.put(b"b", b"in").await;
        let pairs = vec![(f.key(b"c"), vec![]), (f.key(b"d"), vec![])];
        let err = f
            .storage
            .raw_batch_put(&ctx, "", pairs, vec![], true)
            .await
            .unwrap_err();
        let not_in_region = err.region_error().unwrap().key_not_in_region.clone();
        assert_eq!(not_in_region.unwrap().region_id, 4, "{api:?}");
        // The batch is atomic: the in-region key was not written either.
        assert_eq!(f.get(b"c").await, None, "{api:?}");
    }
}

#[tokio::test]
async fn injected_not_leader_fails_a_write() {
    let f = Fixture::new(ApiVersion::V1);
    let ctx = f.ctx();
    f.engine.inject_region_error(not_leader(1));
    let err = f
        .storage
        .raw_put(&ctx, "", b"k".to_vec(), b"v".to_vec(), 0, true)
        .await
        .unwrap_err();
    assert!(err.region_error().unwrap().not_leader.is_some());
    assert_eq!(f.get(b"k").await, None);
}

#[tokio::test]
async fn compare_and_swap() {
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        let ctx = f.ctx();
        let cas = |expected: Option<&[u8]>, value: &[u8]| {
            let (storage, ctx, key) = (&f.storage, &ctx, f.key(b"k"));
            let (expected, value) = (expected.map(<[u8]>::to_vec), value.to_vec());
            async move {
                storage
                    .raw_compare_and_swap(ctx, "", key, expected, value, 0)
                    .await
                    .unwrap()
            }
        };
        let outcome = |previous: Option<&[u8]>, succeed| CasOutcome {
            previous: previous.map(<[u8]>::to_vec),
            succeed,
        };
        // Expecting absence succeeds once; then the value must match.
        assert_eq!(cas(None, b"1").await, outcome(None, true), "{api:?}");
        assert_eq!(cas(None, b"x").await, outcome(Some(b"1"), false), "{api:?}");
        assert_eq!(cas(Some(b"0"), b"x").await, outcome(Some(b"1"), false));
        assert_eq!(cas(Some(b"1"), b"2").await, outcome(Some(b"1"), true));
        assert_eq!(f.get(b"k").await, Some(b"2".to_vec()), "{api:?}");

        // An empty value is a value, not absence.
        f.put(b"k", b"").await;
        assert_eq!(cas(None, b"x").await, outcome(Some(b""), false), "{api:?}");
        assert_eq!(cas(Some(b""), b"3").await, outcome(Some(b""), true));
    }
}

#[tokio::test]
async fn compare_and_swap_treats_expired_values_as_absent() {
    let f = Fixture::new(ApiVersion::V2);
    let ctx = f.ctx();
    f.storage
        .raw_put(&ctx, "", f.key(b"k"), b"old".to_vec(), 5, true)
        .await
        .unwrap();
    f.advance_secs(5);
    let outcome = f
        .storage
        .raw_compare_and_swap(&ctx, "", f.key(b"k"), None, b"new".to_vec(), 10)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        CasOutcome {
            previous: None,
            succeed: true
        }
    );
    assert_eq!(f.ttl(b"k").await, Some(10));
}

/// Many tasks increment one counter with CAS retry loops on a multi-threaded runtime. The mock
/// engine yields inside every snapshot and write, so without latches increments would be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_increments_lose_no_updates() {
    const TASKS: u64 = 8;
    const INCREMENTS: u64 = 25;
    for api in BOTH_APIS {
        let f = Fixture::new(api);
        let key = f.key(b"counter");
        let mut handles = vec![];
        for _ in 0..TASKS {
            let (storage, ctx, key) = (f.storage.clone(), f.ctx(), key.clone());
            handles.push(tokio::spawn(async move {
                let mut retries = 0;
                for _ in 0..INCREMENTS {
                    let mut current = storage.raw_get(&ctx, "", key.clone()).await.unwrap();
                    loop {
                        let next = counter(&current) + 1;
                        let outcome = storage
                            .raw_compare_and_swap(
                                &ctx,
                                "",
                                key.clone(),
                                current.clone(),
                                next.to_be_bytes().to_vec(),
                                0,
                            )
                            .await
                            .unwrap();
                        if outcome.succeed {
                            break;
                        }
                        retries += 1;
                        current = outcome.previous;
                    }
                }
                retries
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
        let total = counter(&f.get(b"counter").await);
        assert_eq!(total, TASKS * INCREMENTS, "{api:?}");
    }
}

fn counter(value: &Option<Vec<u8>>) -> u64 {
    value.as_ref().map_or(0, |bytes| {
        u64::from_be_bytes(bytes.as_slice().try_into().expect("8-byte counter"))
    })
}

/// A compare-and-swap of `k` from absent to `cas`, to be polled by hand.
fn cas_absent_k<'a>(
    f: &'a Fixture,
    ctx: &'a kvrpcpb::Context,
) -> impl std::future::Future<Output = crate::Result<CasOutcome>> + 'a {
    f.storage
        .raw_compare_and_swap(ctx, "", b"k".to_vec(), None, b"cas".to_vec(), 0)
}

/// A put to a key waits while a CAS on that key is between its read and its write.
#[tokio::test]
async fn put_waits_for_an_inflight_cas() {
    let f = Fixture::new(ApiVersion::V1);
    let ctx = f.ctx();
    let mut cas = Box::pin(cas_absent_k(&f, &ctx));
    let mut put = Box::pin(
        f.storage
            .raw_put(&ctx, "", b"k".to_vec(), b"put".to_vec(), 0, true),
    );
    // The CAS takes the latch and its snapshot, then yields inside the engine.
    assert!((&mut cas).now_or_never().is_none());
    // Unlatched, the put would finish on its second poll.
    for _ in 0..3 {
        assert!((&mut put).now_or_never().is_none());
    }
    let outcome = cas.await.unwrap();
    assert!(outcome.succeed);
    assert_eq!(outcome.previous, None);
    put.await.unwrap();
    assert_eq!(f.get(b"k").await, Some(b"put".to_vec()));
}

/// A put not sent for CAS takes no latch, as in TiKV: it does not wait for a CAS in flight on
/// its key (the CAS then overwrites it, which is why clients in atomic mode send every write
/// for CAS).
#[tokio::test]
async fn a_put_not_for_cas_does_not_wait_for_a_cas() {
    let f = Fixture::new(ApiVersion::V1);
    let ctx = f.ctx();
    let mut cas = Box::pin(cas_absent_k(&f, &ctx));
    assert!(
        (&mut cas).now_or_never().is_none(),
        "the CAS holds the latch"
    );
    let mut put = Box::pin(
        f.storage
            .raw_put(&ctx, "", b"k".to_vec(), b"put".to_vec(), 0, false),
    );
    let mut polls = 0;
    let finished = loop {
        polls += 1;
        if let Some(result) = (&mut put).now_or_never() {
            break result;
        }
        assert!(polls < 3, "the put waited for the CAS's latch");
    };
    finished.unwrap();
    assert_eq!(f.get(b"k").await, Some(b"put".to_vec()));
    let outcome = cas.await.unwrap();
    assert!(outcome.succeed, "the CAS read before the put");
    assert_eq!(f.get(b"k").await, Some(b"cas".to_vec()));
}
