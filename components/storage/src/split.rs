//! The `SplitRegion` RPC: split a region at keys the client chose, in the form the engine
//! stores them.

use kvproto::{errorpb, kvrpcpb};
use txn_types::Key;

use crate::api_version::ApiVersion;
use crate::kv::RegionSplitter;
use crate::{Error, Result};

/// The storage keys of a SplitRegion request: raw keys as the raw API stores them (as they
/// are in V1, memcomparable in V2), transactional keys memcomparable in both versions, so that
/// the new boundaries fall between the keys the client meant. Older clients send one key in
/// the deprecated `split_key`.
#[allow(deprecated)]
fn split_keys(req: &kvrpcpb::SplitRegionRequest) -> Result<Vec<Vec<u8>>> {
    let ctx = req.context.clone().unwrap_or_default();
    let api = ApiVersion::from_context(&ctx)?;
    let mut raw_keys = req.split_keys.clone();
    if raw_keys.is_empty() && !req.split_key.is_empty() {
        raw_keys.push(req.split_key.clone());
    }
    raw_keys
        .iter()
        .map(|key| match req.is_raw_kv {
            true => api.encode_key("split_region", key),
            false => {
                api.check_txn_key("split_region", key)?;
                Ok(Key::from_raw(key).into_encoded())
            }
        })
        .collect()
}

/// Splits the region and answers with every region the split made (and, for a split into
/// two, `left` and `right`). Every failure is a region error, the only error field the
/// response has.
#[allow(deprecated)]
pub async fn split_region<S: RegionSplitter>(
    splitter: &S,
    req: kvrpcpb::SplitRegionRequest,
) -> kvrpcpb::SplitRegionResponse {
    let ctx = req.context.clone().unwrap_or_default();
    let result = match split_keys(&req) {
        Ok(keys) => splitter.split_region(&ctx, keys).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    let mut resp = kvrpcpb::SplitRegionResponse::default();
    match result {
        Ok(regions) => {
            if let [left, right] = regions.as_slice() {
                resp.left = Some(left.clone());
                resp.right = Some(right.clone());
            }
            resp.regions = regions;
        }
        Err(Error::Region(region_error)) => resp.region_error = Some(*region_error),
        Err(e) => {
            tracing::debug!(error = %e, "split region failed");
            resp.region_error = Some(errorpb::Error {
                message: e.to_string(),
                ..Default::default()
            });
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(keys: &[&[u8]], is_raw_kv: bool, api_version: i32) -> kvrpcpb::SplitRegionRequest {
        kvrpcpb::SplitRegionRequest {
            context: Some(kvrpcpb::Context {
                api_version,
                ..Default::default()
            }),
            split_keys: keys.iter().map(|k| k.to_vec()).collect(),
            is_raw_kv,
            ..Default::default()
        }
    }

    #[test]
    #[allow(deprecated)]
    fn keys_take_the_form_the_engine_stores() {
        let raw_v1 = split_keys(&request(&[b"k"], true, 0)).unwrap();
        assert_eq!(raw_v1, [b"k".to_vec()]);
        let raw_v2 = split_keys(&request(&[b"r\0\0\0k"], true, 2)).unwrap();
        assert_eq!(raw_v2, [codec::memcomparable::encode(b"r\0\0\0k")]);
        let txn = split_keys(&request(&[b"k"], false, 0)).unwrap();
        assert_eq!(txn, [codec::memcomparable::encode(b"k")]);
        assert!(split_keys(&request(&[b"r\0\0\0k"], false, 2)).is_err());
        let mut deprecated = request(&[], false, 0);
        deprecated.split_key = b"old".to_vec();
        assert_eq!(
            split_keys(&deprecated).unwrap(),
            [codec::memcomparable::encode(b"old")]
        );
    }
}
