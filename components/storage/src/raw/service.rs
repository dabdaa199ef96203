//! The raw half of the `tikvpb.Tikv` service as plain functions: each takes a
//! `kvrpcpb::Raw*Request`, runs it on a [`RawStorage`] and fills the matching response the way
//! the client reads it.
//!
//! * A region error fills only `region_error`, so the client refreshes its region cache and
//!   retries.
//! * Any other failure fills `error`; responses without that field (batch get, scan, batch
//!   scan) carry one pair whose `KeyError.abort` holds the message, as TiKV does.
//! * Get and GetKeyTTL set `not_found` for a missing or expired key; BatchGet returns only the
//!   keys found, in request order, with their full (prefixed) keys.
//! * A request without a context is served with the default one (region 0, API V1).

use kvproto::{errorpb, kvrpcpb};

use super::{KvPair, RawStorage, ScanOptions};
use crate::kv::Engine;
use crate::Error;

pub async fn raw_get<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawGetRequest,
) -> kvrpcpb::RawGetResponse {
    let ctx = req.context.unwrap_or_default();
    let mut resp = kvrpcpb::RawGetResponse::default();
    match storage.raw_get(&ctx, &req.cf, req.key).await {
        Ok(Some(value)) => resp.value = value,
        Ok(None) => resp.not_found = true,
        Err(e) => (resp.region_error, resp.error) = split_error(e),
    }
    resp
}

pub async fn raw_batch_get<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawBatchGetRequest,
) -> kvrpcpb::RawBatchGetResponse {
    let ctx = req.context.unwrap_or_default();
    let mut resp = kvrpcpb::RawBatchGetResponse::default();
    match storage.raw_batch_get(&ctx, &req.cf, req.keys).await {
        Ok(pairs) => resp.pairs = to_kv_pairs(pairs),
        Err(e) => (resp.region_error, resp.pairs) = split_error_into_pairs(e),
    }
    resp
}

pub async fn raw_get_key_ttl<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawGetKeyTtlRequest,
) -> kvrpcpb::RawGetKeyTtlResponse {
    let ctx = req.context.unwrap_or_default();
    let mut resp = kvrpcpb::RawGetKeyTtlResponse::default();
    match storage.raw_get_key_ttl(&ctx, &req.cf, req.key).await {
        Ok(Some(ttl)) => resp.ttl = ttl,
        Ok(None) => resp.not_found = true,
        Err(e) => (resp.region_error, resp.error) = split_error(e),
    }
    resp
}

pub async fn raw_put<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawPutRequest,
) -> kvrpcpb::RawPutResponse {
    let ctx = req.context.unwrap_or_default();
    let result = storage
        .raw_put(&ctx, &req.cf, req.key, req.value, req.ttl, req.for_cas)
        .await;
    let (region_error, error) = split_result(result);
    kvrpcpb::RawPutResponse {
        region_error,
        error,
    }
}

/// Uses `ttls`, or the deprecated single `ttl` when `ttls` is empty.
pub async fn raw_batch_put<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawBatchPutRequest,
) -> kvrpcpb::RawBatchPutResponse {
    let ctx = req.context.unwrap_or_default();
    let pairs = req.pairs.into_iter().map(|p| (p.key, p.value)).collect();
    let ttls = if req.ttls.is_empty() && req.ttl != 0 {
        vec![req.ttl]
    } else {
        req.ttls
    };
    let result = storage
        .raw_batch_put(&ctx, &req.cf, pairs, ttls, req.for_cas)
        .await;
    let (region_error, error) = split_result(result);
    kvrpcpb::RawBatchPutResponse {
        region_error,
        error,
    }
}

pub async fn raw_delete<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawDeleteRequest,
) -> kvrpcpb::RawDeleteResponse {
    let ctx = req.context.unwrap_or_default();
    let result = storage
        .raw_delete(&ctx, &req.cf, req.key, req.for_cas)
        .await;
    let (region_error, error) = split_result(result);
    kvrpcpb::RawDeleteResponse {
        region_error,
        error,
    }
}

pub async fn raw_batch_delete<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawBatchDeleteRequest,
) -> kvrpcpb::RawBatchDeleteResponse {
    let ctx = req.context.unwrap_or_default();
    let result = storage
        .raw_batch_delete(&ctx, &req.cf, req.keys, req.for_cas)
        .await;
    let (region_error, error) = split_result(result);
    kvrpcpb::RawBatchDeleteResponse {
        region_error,
        error,
    }
}

pub async fn raw_delete_range<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawDeleteRangeRequest,
) -> kvrpcpb::RawDeleteRangeResponse {
    let ctx = req.context.unwrap_or_default();
    let result = storage
        .raw_delete_range(&ctx, &req.cf, req.start_key, req.end_key)
        .await;
    let (region_error, error) = split_result(result);
    kvrpcpb::RawDeleteRangeResponse {
        region_error,
        error,
    }
}

/// Reverse scans arrive with swapped bounds; [`RawStorage::raw_scan`] expects them that way.
pub async fn raw_scan<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawScanRequest,
) -> kvrpcpb::RawScanResponse {
    let ctx = req.context.unwrap_or_default();
    let opts = ScanOptions {
        limit: to_limit(req.limit),
        key_only: req.key_only,
        reverse: req.reverse,
    };
    let mut resp = kvrpcpb::RawScanResponse::default();
    match storage
        .raw_scan(&ctx, &req.cf, req.start_key, req.end_key, opts)
        .await
    {
        Ok(pairs) => resp.kvs = to_kv_pairs(pairs),
        Err(e) => (resp.region_error, resp.kvs) = split_error_into_pairs(e),
    }
    resp
}

pub async fn raw_batch_scan<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawBatchScanRequest,
) -> kvrpcpb::RawBatchScanResponse {
    let ctx = req.context.unwrap_or_default();
    let opts = ScanOptions {
        limit: to_limit(req.each_limit),
        key_only: req.key_only,
        reverse: req.reverse,
    };
    let ranges = req
        .ranges
        .into_iter()
        .map(|range| (range.start_key, range.end_key))
        .collect();
    let mut resp = kvrpcpb::RawBatchScanResponse::default();
    match storage.raw_batch_scan(&ctx, &req.cf, ranges, opts).await {
        Ok(pairs) => resp.kvs = to_kv_pairs(pairs),
        Err(e) => (resp.region_error, resp.kvs) = split_error_into_pairs(e),
    }
    resp
}

/// Expects the previous value to be absent when `previous_not_exist` is set, else to equal
/// `previous_value`. The response always reports the value found.
pub async fn raw_compare_and_swap<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawCasRequest,
) -> kvrpcpb::RawCasResponse {
    let ctx = req.context.unwrap_or_default();
    let expected = (!req.previous_not_exist).then_some(req.previous_value);
    let mut resp = kvrpcpb::RawCasResponse::default();
    let result = storage
        .raw_compare_and_swap(&ctx, &req.cf, req.key, expected, req.value, req.ttl)
        .await;
    match result {
        Ok(outcome) => {
            resp.succeed = outcome.succeed;
            match outcome.previous {
                Some(previous) => resp.previous_value = previous,
                None => resp.previous_not_exist = true,
            }
        }
        Err(e) => (resp.region_error, resp.error) = split_error(e),
    }
    resp
}

/// Only TiKV's one algorithm, CRC64-XOR, exists.
pub async fn raw_checksum<E: Engine>(
    storage: &RawStorage<E>,
    req: kvrpcpb::RawChecksumRequest,
) -> kvrpcpb::RawChecksumResponse {
    let ctx = req.context.unwrap_or_default();
    let ranges = req
        .ranges
        .into_iter()
        .map(|range| (range.start_key, range.end_key))
        .collect();
    let mut resp = kvrpcpb::RawChecksumResponse::default();
    match storage.raw_checksum(&ctx, ranges).await {
        Ok(sum) => {
            resp.checksum = sum.checksum;
            resp.total_kvs = sum.total_kvs;
            resp.total_bytes = sum.total_bytes;
        }
        Err(e) => (resp.region_error, resp.error) = split_error(e),
    }
    resp
}

fn to_limit(limit: u32) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

fn to_kv_pairs(pairs: Vec<KvPair>) -> Vec<kvrpcpb::KvPair> {
    pairs
        .into_iter()
        .map(|(key, value)| kvrpcpb::KvPair {
            error: None,
            key,
            value,
        })
        .collect()
}

fn split_result(result: crate::Result<()>) -> (Option<errorpb::Error>, String) {
    match result {
        Ok(()) => (None, String::new()),
        Err(e) => split_error(e),
    }
}

/// This is where a failed raw request is handled, so this is where it is logged.
fn split_error(e: Error) -> (Option<errorpb::Error>, String) {
    tracing::debug!(error = %e, "raw request failed");
    let response = e.into_response_error();
    (response.region_error, response.error)
}

fn split_error_into_pairs(e: Error) -> (Option<errorpb::Error>, Vec<kvrpcpb::KvPair>) {
    tracing::debug!(error = %e, "raw request failed");
    e.into_response_error().into_pairs()
}
