//! Raw writes: put, batch put, delete, batch delete, delete range and compare-and-swap.
//!
//! Every write checks key sizes first. A write sent `for_cas` (by a client in atomic mode, as
//! the official clients send every write once CAS is in use) then holds the latches of its
//! keys until the engine has applied it (see `latch`), which is what makes compare-and-swap
//! atomic with respect to those writes, as in TiKV. Other writes take no latches: like TiKV's,
//! they are not ordered against a CAS in flight, and 64 concurrent batch puts of 16 keys no
//! longer queue behind each other's latch slots. Delete range takes no latches: it covers keys
//! it cannot name, and the client refuses it in atomic (CAS) mode anyway.

use engine_traits::CfName;
use kvproto::kvrpcpb;

use super::{parse_request, read_live, ApiVersion, CasOutcome, KvPair, RawStorage, RawValue};
use crate::kv::{Engine, Modify, WriteData};
use crate::{Error, Result};

impl<E: Engine> RawStorage<E> {
    /// Writes `key` = `value`, expiring after `ttl_secs` seconds (0 = never).
    ///
    /// # Errors
    /// [`Error::KeyTooLarge`], request validation errors, and region errors.
    pub async fn raw_put(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl_secs: u64,
        for_cas: bool,
    ) -> Result<()> {
        let (api, cf) = parse_request(ctx, cf)?;
        let modifies = self.put_modifies(api, cf, "raw_put", vec![(key, value)], &[ttl_secs])?;
        self.write(ctx, modifies, for_cas).await
    }

    /// Writes all `pairs` atomically. `ttls_secs` is empty (no TTL), one TTL for every pair, or
    /// one TTL per pair.
    ///
    /// # Errors
    /// [`Error::InvalidTtls`] for any other number of TTLs; otherwise as [`RawStorage::raw_put`].
    pub async fn raw_batch_put(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        pairs: Vec<KvPair>,
        ttls_secs: Vec<u64>,
        for_cas: bool,
    ) -> Result<()> {
        let (api, cf) = parse_request(ctx, cf)?;
        let ttls_secs = resolve_ttls(pairs.len(), ttls_secs)?;
        let modifies = self.put_modifies(api, cf, "raw_batch_put", pairs, &ttls_secs)?;
        self.write(ctx, modifies, for_cas).await
    }

    /// Deletes `key`; deleting a missing key succeeds.
    ///
    /// # Errors
    /// As [`RawStorage::raw_put`].
    pub async fn raw_delete(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        key: Vec<u8>,
        for_cas: bool,
    ) -> Result<()> {
        let (api, cf) = parse_request(ctx, cf)?;
        let modifies = self.delete_modifies(api, cf, "raw_delete", vec![key])?;
        self.write(ctx, modifies, for_cas).await
    }

    /// Deletes all `keys` atomically.
    ///
    /// # Errors
    /// As [`RawStorage::raw_put`].
    pub async fn raw_batch_delete(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        keys: Vec<Vec<u8>>,
        for_cas: bool,
    ) -> Result<()> {
        let (api, cf) = parse_request(ctx, cf)?;
        let modifies = self.delete_modifies(api, cf, "raw_batch_delete", keys)?;
        self.write(ctx, modifies, for_cas).await
    }

    /// Deletes every key in `[start_key, end_key)`. An empty end means the end of the key
    /// space: in V1 only the last region takes it; in V2 it becomes the end of the raw key
    /// mode. An empty range deletes nothing.
    ///
    /// # Errors
    /// [`Error::InvalidRange`] when the start is after a non-empty end; otherwise as
    /// [`RawStorage::raw_put`].
    pub async fn raw_delete_range(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        start_key: Vec<u8>,
        end_key: Vec<u8>,
    ) -> Result<()> {
        const CMD: &str = "raw_delete_range";
        let (api, cf) = parse_request(ctx, cf)?;
        self.check_key_size(&start_key)?;
        self.check_key_size(&end_key)?;
        let start = api.encode_lower_bound(CMD, &start_key)?;
        let end = api.encode_upper_bound(CMD, &end_key)?;
        if !end.is_empty() {
            if start > end {
                return Err(Error::InvalidRange);
            }
            if start == end {
                return Ok(());
            }
        }
        let modify = Modify::DeleteRange { cf, start, end };
        self.engine
            .async_write(ctx, WriteData::new(vec![modify]))
            .await?;
        Ok(())
    }

    /// Writes `value` to `key` if the key's live value equals `expected` (`None`: the key must
    /// be absent or expired), atomically with respect to every other raw write to `key` on
    /// this store. Returns the value found and whether the swap happened.
    ///
    /// Atomicity relies on the region leader being the only writer: the latch that covers the
    /// read and the write is local to this process.
    ///
    /// # Errors
    /// As [`RawStorage::raw_put`], plus malformed stored values.
    pub async fn raw_compare_and_swap(
        &self,
        ctx: &kvrpcpb::Context,
        cf: &str,
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        ttl_secs: u64,
    ) -> Result<CasOutcome> {
        let (api, cf) = parse_request(ctx, cf)?;
        self.check_key_size(&key)?;
        let storage_key = api.encode_key("raw_compare_and_swap", &key)?;
        let _latch = self.latches.acquire([(cf, storage_key.as_slice())]).await;
        let snapshot = self.engine.async_snapshot(ctx).await?;
        let now_secs = self.now_secs();
        let previous = read_live(&snapshot, cf, &storage_key, now_secs)?.map(|v| v.user_value);
        let succeed = previous == expected;
        if succeed {
            let modify = Modify::Put {
                cf,
                key: storage_key,
                value: RawValue::new(value, ttl_secs, now_secs).encode(),
            };
            self.engine
                .async_write(ctx, WriteData::new(vec![modify]))
                .await?;
        }
        Ok(CasOutcome { previous, succeed })
    }

    /// Builds the puts of a batch after checking every key. `ttls_secs` holds one TTL per pair.
    fn put_modifies(
        &self,
        api: ApiVersion,
        cf: CfName,
        cmd: &'static str,
        pairs: Vec<KvPair>,
        ttls_secs: &[u64],
    ) -> Result<Vec<Modify>> {
        let now_secs = self.now_secs();
        pairs
            .into_iter()
            .zip(ttls_secs)
            .map(|((key, value), &ttl_secs)| {
                self.check_key_size(&key)?;
                Ok(Modify::Put {
                    cf,
                    key: api.encode_key(cmd, &key)?,
                    value: RawValue::new(value, ttl_secs, now_secs).encode(),
                })
            })
            .collect()
    }

    /// Builds the deletes of a batch after checking every key.
    fn delete_modifies(
        &self,
        api: ApiVersion,
        cf: CfName,
        cmd: &'static str,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Modify>> {
        keys.into_iter()
            .map(|key| {
                self.check_key_size(&key)?;
                let key = api.encode_key(cmd, &key)?;
                Ok(Modify::Delete { cf, key })
            })
            .collect()
    }

    /// Applies single-key modifications while holding their keys' latches.
    /// Writes `modifies`, holding their keys' latches until applied when `for_cas`.
    async fn write(
        &self,
        ctx: &kvrpcpb::Context,
        modifies: Vec<Modify>,
        for_cas: bool,
    ) -> Result<()> {
        if modifies.is_empty() {
            return Ok(());
        }
        let _latches = if for_cas {
            let keys = modifies.iter().filter_map(|modify| match modify {
                Modify::Put { cf, key, .. } | Modify::Delete { cf, key } => {
                    Some((*cf, key.as_slice()))
                }
                Modify::DeleteRange { .. } => None,
            });
            Some(self.latches.acquire(keys).await)
        } else {
            None
        };
        self.engine
            .async_write(ctx, WriteData::new(modifies))
            .await?;
        Ok(())
    }
}

/// Expands a batch put's TTL list to one TTL per pair, following TiKV: none means no TTL, one
/// applies to every pair.
///
/// # Errors
/// [`Error::InvalidTtls`] when there are several TTLs but not one per pair.
pub(super) fn resolve_ttls(pairs: usize, ttls_secs: Vec<u64>) -> Result<Vec<u64>> {
    match ttls_secs.len() {
        0 => Ok(vec![0; pairs]),
        1 => Ok(vec![ttls_secs[0]; pairs]),
        n if n == pairs => Ok(ttls_secs),
        n => Err(Error::InvalidTtls { pairs, ttls: n }),
    }
}
