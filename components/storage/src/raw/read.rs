//! Raw reads: get, batch get, get key TTL, scan and batch scan.
//!
//! Each read takes one snapshot, so a batch sees a single consistent state. Expired values
//! read as missing everywhere. Reads do not check key sizes: TiKV checks them only on writes,
//! and an over-long key simply is not found.

use engine_traits::{CfName, EngineIterator, IterOptions, Iterable, SeekKey};
use kvproto::kvrpcpb;

use super::{parse_request, read_live, ApiVersion, KvPair, RawStorage, RawValue, ScanOptions};
use crate::kv::Engine;
use crate::Result;

impl<E: Engine> RawStorage<E> {
    /// Returns the live value of `key`, or `None` when it is absent or expired.
    ///
    /// # Errors
    /// Region errors (including a key outside the region), request validation errors
    /// (API version, key mode, column family), and malformed stored values.
    pub async fn raw_get(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>> {
        let (api, cf) = parse_request(ctx, cf)?;
        let storage_key = api.encode_key("raw_get", &key)?;
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let value = read_live(&snapshot, cf, &storage_key, self.now_secs())?;
        Ok(value.map(|value| value.user_value))
    }

    /// Returns the live pairs among `keys`, in request order; missing keys are left out.
    ///
    /// # Errors
    /// As [`RawStorage::raw_get`]; one bad key fails the whole batch.
    pub async fn raw_batch_get(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<KvPair>> {
        let (api, cf) = parse_request(ctx, cf)?;
        let storage_keys = keys
            .iter()
            .map(|key| api.encode_key("raw_batch_get", key))
            .collect::<Result<Vec<_>>>()?;
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let now_secs = self.now_secs();
        let mut pairs = Vec::with_capacity(keys.len());
        for (key, storage_key) in keys.into_iter().zip(&storage_keys) {
            if let Some(value) = read_live(&snapshot, cf, storage_key, now_secs)? {
                pairs.push((key, value.user_value));
            }
        }
        Ok(pairs)
    }

    /// Returns the seconds `key` has left to live: `Some(0)` when it has no TTL, `None` when it
    /// is absent or expired.
    ///
    /// # Errors
    /// As [`RawStorage::raw_get`].
    pub async fn raw_get_key_ttl(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        key: Vec<u8>,
    ) -> Result<Option<u64>> {
        let (api, cf) = parse_request(ctx, cf)?;
        let storage_key = api.encode_key("raw_get_key_ttl", &key)?;
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let now_secs = self.now_secs();
        let value = read_live(&snapshot, cf, &storage_key, now_secs)?;
        Ok(value.map(|value| value.remaining_ttl(now_secs)))
    }

    /// Returns up to `opts.limit` live pairs of a range, clipped to the region.
    ///
    /// Forward, the range is `[start_key, end_key)` in ascending order; reverse, it is
    /// `[end_key, start_key)` in descending order (the client swaps the bounds). An empty upper
    /// bound means the end of the key space, an empty lower bound its start.
    ///
    /// # Errors
    /// Region errors, request validation errors (a V2 bound outside the raw mode), and
    /// malformed stored values.
    pub async fn raw_scan(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        start_key: Vec<u8>,
        end_key: Vec<u8>,
        opts: ScanOptions,
    ) -> Result<Vec<KvPair>> {
        let (api, cf) = parse_request(ctx, cf)?;
        let range = ScanRange::encode(api, "raw_scan", &start_key, &end_key, opts.reverse)?;
        let snapshot = self.engine.async_snapshot(ctx).await?;
        scan(&snapshot, cf, api, &range, opts, self.now_secs())
    }

    /// Scans each `(start_key, end_key)` range separately, up to `opts.limit` pairs each, and
    /// returns the results one range after another. Ranges may overlap; each gets its own
    /// results. `opts.reverse` swaps each range's bounds as in [`RawStorage::raw_scan`].
    ///
    /// # Errors
    /// As [`RawStorage::raw_scan`]; one bad range fails the whole batch.
    pub async fn raw_batch_scan(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        ranges: Vec<(Vec<u8>, Vec<u8>)>,
        opts: ScanOptions,
    ) -> Result<Vec<KvPair>> {
        let (api, cf) = parse_request(ctx, cf)?;
        let ranges = ranges
            .iter()
            .map(|(start, end)| ScanRange::encode(api, "raw_batch_scan", start, end, opts.reverse))
            .collect::<Result<Vec<_>>>()?;
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let now_secs = self.now_secs();
        let mut pairs = vec![];
        for range in &ranges {
            pairs.extend(scan(&snapshot, cf, api, range, opts, now_secs)?);
        }
        Ok(pairs)
    }
}

impl<E: Engine> RawStorage<E> {
    /// TiKV's raw checksum over `ranges` (clipped to the region): the XOR of
    /// `crc64(key ++ value)` over every live pair, with the number of pairs and their bytes.
    /// Keys and values are the user's (keyspace-prefixed keys in V2, values without TTL), so a
    /// client can check the result against what it reads; XOR makes it independent of order,
    /// so results of several regions combine.
    ///
    /// # Errors
    /// As [`RawStorage::raw_scan`].
    pub async fn raw_checksum(
        &self,
        ctx: &kvrpcpb::Context,
        ranges: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<RawChecksum> {
        let (api, cf) = parse_request(ctx, "")?;
        let ranges = ranges
            .iter()
            .map(|(start, end)| ScanRange::encode(api, "raw_checksum", start, end, false))
            .collect::<Result<Vec<_>>>()?;
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let now_secs = self.now_secs();
        let mut checksum = RawChecksum::default();
        for range in ranges.iter().filter(|range| !range.is_empty()) {
            let opts = IterOptions::range(&range.lower, &range.upper);
            let mut it = snapshot.iterator_opt(cf, opts)?;
            let mut valid = it.seek(SeekKey::Start)?;
            while valid {
                if let Some((key, value)) = live_pair(api, it.key(), it.value(), false, now_secs)? {
                    checksum.add(&key, &value);
                }
                valid = it.next()?;
            }
        }
        Ok(checksum)
    }
}

/// What [`RawStorage::raw_checksum`] computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawChecksum {
    pub checksum: u64,
    pub total_kvs: u64,
    pub total_bytes: u64,
}

impl RawChecksum {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut digest = crc64fast::Digest::new();
        digest.write(key);
        digest.write(value);
        self.checksum ^= digest.sum64();
        self.total_kvs += 1;
        self.total_bytes += (key.len() + value.len()) as u64;
    }
}

/// A scan range in storage keys: `[lower, upper)`, where an empty `upper` is unbounded.
struct ScanRange {
    lower: Vec<u8>,
    upper: Vec<u8>,
}

impl ScanRange {
    /// Encodes a request's bounds, un-swapping them for a reverse scan.
    fn encode(
        api: ApiVersion,
        cmd: &'static str,
        start_key: &[u8],
        end_key: &[u8],
        reverse: bool,
    ) -> Result<Self> {
        let (lower, upper) = if reverse {
            (end_key, start_key)
        } else {
            (start_key, end_key)
        };
        Ok(ScanRange {
            lower: api.encode_lower_bound(cmd, lower)?,
            upper: api.encode_upper_bound(cmd, upper)?,
        })
    }

    fn is_empty(&self) -> bool {
        !self.upper.is_empty() && self.lower >= self.upper
    }
}

/// Collects up to `opts.limit` live pairs of `range` from `snapshot`, in scan order.
fn scan<S: Iterable>(
    snapshot: &S,
    cf: CfName,
    api: ApiVersion,
    range: &ScanRange,
    opts: ScanOptions,
    now_secs: u64,
) -> Result<Vec<KvPair>> {
    // An inverted range holds nothing; the client never sends one, so it is not worth an error.
    if opts.limit == 0 || range.is_empty() {
        return Ok(vec![]);
    }
    let mut it = snapshot.iterator_opt(cf, IterOptions::range(&range.lower, &range.upper))?;
    let mut valid = if opts.reverse {
        it.seek_for_prev(SeekKey::End)?
    } else {
        it.seek(SeekKey::Start)?
    };
    let mut pairs = vec![];
    while valid && pairs.len() < opts.limit {
        if let Some(pair) = live_pair(api, it.key(), it.value(), opts.key_only, now_secs)? {
            pairs.push(pair);
        }
        valid = if opts.reverse { it.prev()? } else { it.next()? };
    }
    Ok(pairs)
}

/// Turns a stored entry into the user's pair, or `None` when it is expired or not a key of
/// this API version.
fn live_pair(
    api: ApiVersion,
    storage_key: &[u8],
    stored: &[u8],
    key_only: bool,
    now_secs: u64,
) -> Result<Option<KvPair>> {
    let Some(key) = api.decode_key(storage_key) else {
        // A V1 key inside the V2 raw range (mixed API versions are unsupported): not ours.
        tracing::debug!("raw scan skipped a key that is not an api v2 raw key");
        return Ok(None);
    };
    let value = RawValue::decode(stored)?;
    if value.is_expired(now_secs) {
        return Ok(None);
    }
    let value = if key_only { vec![] } else { value.user_value };
    Ok(Some((key, value)))
}
