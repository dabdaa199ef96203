//! The `debugpb.Debug` gRPC service that tikv-ctl style tools talk to: it reads this store's
//! own data engine, bypassing raft, so it shows what this replica has applied. Keys are data
//! keys (`z` + the storage key) and are used as given, as in TiKV.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine_traits::{CfName, Iterable, KvEngine, CF_DEFAULT, CF_LOCK, CF_WRITE};
use kvproto::debugpb::debug_server::Debug;
use kvproto::debugpb::{self, Property};
use kvproto::kvrpcpb;
use parking_lot::Mutex;
use raftstore::StoreMeta;
use tonic::{Request, Response, Status};
use txn_types::{Key, Lock, Write, WriteType};
use types::RegionId;

/// At most this many keys per scan, whatever the request's limit (0 asks for this many).
pub const MAX_SCAN_KEYS: usize = 10_000;

/// At most this many bytes of keys and values per scan: a raw scan stops there, an MVCC scan
/// that needs more (a key with very many versions) fails and asks for a narrower one.
pub const MAX_SCAN_BYTES: usize = 16 << 20;

/// Scans, compactions and region measurements running at once; more wait. They read or
/// rewrite whole ranges and must not starve the store.
const CONCURRENT_TASKS: usize = 2;

/// What the service reads: the data engine and which regions this store holds.
pub struct DebugService<E: KvEngine> {
    engine: E,
    tasks: Arc<tokio::sync::Semaphore>,
    store_meta: Arc<Mutex<StoreMeta>>,
    cluster_id: u64,
    api_version: kvrpcpb::ApiVersion,
}

impl<E: KvEngine> DebugService<E> {
    pub fn new(
        engine: E,
        store_meta: Arc<Mutex<StoreMeta>>,
        cluster_id: u64,
        api_version: kvrpcpb::ApiVersion,
    ) -> Self {
        DebugService {
            engine,
            tasks: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_TASKS)),
            store_meta,
            cluster_id,
            api_version,
        }
    }

    /// Runs engine work off the async threads, at most [`CONCURRENT_TASKS`] at once: scans and
    /// compactions can take long.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(E) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let permit = self
            .tasks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the store is shutting down"))?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(engine)
        })
        .await
        .map_err(|e| Status::internal(format!("debug task failed: {e}")))?
    }
}

fn data_cf(name: &str) -> Result<CfName, Status> {
    engine_traits::data_cf(name).ok_or_else(|| {
        Status::invalid_argument(format!(
            "unknown column family {name:?}; use default, lock or write"
        ))
    })
}

fn engine_status(e: engine_traits::Error) -> Status {
    Status::internal(format!("engine: {e}"))
}

fn check_kv_db(db: i32) -> Result<(), Status> {
    match debugpb::Db::try_from(db) {
        Ok(debugpb::Db::Kv) => Ok(()),
        Ok(debugpb::Db::Raft) => Err(Status::invalid_argument(
            "this store keeps its raft log in raft-engine, not in a key-value db; use db KV",
        )),
        _ => Err(Status::invalid_argument("db must be KV")),
    }
}

fn check_range(from: &[u8], to: &[u8]) -> Result<(), Status> {
    if !to.is_empty() && from > to {
        return Err(Status::invalid_argument("from_key is after to_key"));
    }
    Ok(())
}

fn limit(requested: u64) -> usize {
    match usize::try_from(requested) {
        Ok(0) | Err(_) => MAX_SCAN_KEYS,
        Ok(n) => n.min(MAX_SCAN_KEYS),
    }
}

fn write_op(write_type: WriteType) -> kvrpcpb::Op {
    match write_type {
        WriteType::Put => kvrpcpb::Op::Put,
        WriteType::Delete => kvrpcpb::Op::Del,
        WriteType::Lock => kvrpcpb::Op::Lock,
        WriteType::Rollback => kvrpcpb::Op::Rollback,
    }
}

/// Scans `cf` of `view` over `[from, to)` and calls `f(user_key, key, value)` for each entry,
/// where the user key is the data key without its timestamp if `with_ts`; stops once `limit`
/// distinct user keys were seen. Entries of `with_ts` CFs too short for a timestamp (raw data
/// in the default CF) are skipped. Fails once the entries passed to `f` exceed `budget` bytes.
fn scan_user_keys(
    view: &impl Iterable,
    cf: CfName,
    (from, to): (&[u8], &[u8]),
    with_ts: bool,
    (limit, budget): (usize, &mut usize),
    mut f: impl FnMut(&[u8], &[u8], &[u8]) -> Result<(), Status>,
) -> Result<(), Status> {
    let mut seen = 0;
    let mut last: Vec<u8> = Vec::new();
    let mut failed = None;
    view.scan(cf, from, to, |key, value| {
        let user_key = if with_ts {
            match Key::split_on_ts_for(key) {
                Ok((user_key, _)) => user_key,
                Err(_) => return Ok(true),
            }
        } else {
            key
        };
        if seen == 0 || user_key != last.as_slice() {
            if seen == limit {
                return Ok(false);
            }
            seen += 1;
            last = user_key.to_vec();
        }
        let Some(left) = budget.checked_sub(key.len() + value.len()) else {
            failed = Some(Status::resource_exhausted(format!(
                "the versions in range take more than {MAX_SCAN_BYTES} bytes; scan a narrower \
                 range or fewer keys"
            )));
            return Ok(false);
        };
        *budget = left;
        match f(user_key, key, value) {
            Ok(()) => Ok(true),
            Err(status) => {
                failed = Some(status);
                Ok(false)
            }
        }
    })
    .map_err(engine_status)?;
    failed.map_or(Ok(()), Err)
}

fn corrupt(what: &str, key: &[u8], e: txn_types::Error) -> Status {
    Status::data_loss(format!("undecodable {what} at {key:?}: {e}"))
}

/// Every version of the first `limit` keys in `[from, to)` (data keys), in key order: their
/// lock, their commit and rollback records (newest first) and their values.
///
/// # Errors
///
/// An engine error, or a record that does not decode.
pub fn scan_mvcc(
    view: &impl Iterable,
    from: &[u8],
    to: &[u8],
    limit: usize,
) -> Result<Vec<(Vec<u8>, kvrpcpb::MvccInfo)>, Status> {
    // The first `limit` keys of the union are among the first `limit` keys of each CF.
    let mut infos: BTreeMap<Vec<u8>, kvrpcpb::MvccInfo> = BTreeMap::new();
    let range = (from, to);
    let mut budget = MAX_SCAN_BYTES;
    scan_user_keys(
        view,
        CF_LOCK,
        range,
        false,
        (limit, &mut budget),
        |user_key, key, value| {
            let lock = Lock::parse(value).map_err(|e| corrupt("lock", key, e))?;
            infos.entry(user_key.to_vec()).or_default().lock = Some(kvrpcpb::MvccLock {
                r#type: lock.lock_type.to_op() as i32,
                start_ts: lock.ts.into_inner(),
                primary: lock.primary,
                short_value: lock.short_value.unwrap_or_default(),
                ttl: lock.ttl,
                for_update_ts: lock.for_update_ts.into_inner(),
                txn_size: lock.txn_size,
                use_async_commit: lock.use_async_commit,
                secondaries: lock.secondaries,
                rollback_ts: lock.rollback_ts.iter().map(|ts| ts.into_inner()).collect(),
                ..Default::default()
            });
            Ok(())
        },
    )?;
    scan_user_keys(
        view,
        CF_WRITE,
        range,
        true,
        (limit, &mut budget),
        |user_key, key, value| {
            let (_, commit_ts) =
                Key::split_on_ts_for(key).map_err(|e| corrupt("write key", key, e))?;
            let write = Write::parse(value).map_err(|e| corrupt("write", key, e))?;
            infos
                .entry(user_key.to_vec())
                .or_default()
                .writes
                .push(kvrpcpb::MvccWrite {
                    r#type: write_op(write.write_type) as i32,
                    start_ts: write.start_ts.into_inner(),
                    commit_ts: commit_ts.into_inner(),
                    short_value: write.short_value.unwrap_or_default(),
                    has_overlapped_rollback: write.has_overlapped_rollback,
                    has_gc_fence: write.gc_fence.is_some(),
                    gc_fence: write.gc_fence.map_or(0, |ts| ts.into_inner()),
                    ..Default::default()
                });
            Ok(())
        },
    )?;
    scan_user_keys(
        view,
        CF_DEFAULT,
        range,
        true,
        (limit, &mut budget),
        |user_key, key, value| {
            let (_, start_ts) =
                Key::split_on_ts_for(key).map_err(|e| corrupt("value key", key, e))?;
            infos
                .entry(user_key.to_vec())
                .or_default()
                .values
                .push(kvrpcpb::MvccValue {
                    start_ts: start_ts.into_inner(),
                    value: value.to_vec(),
                });
            Ok(())
        },
    )?;
    Ok(infos.into_iter().take(limit).collect())
}

/// What `region-properties` shows of a region's data on this store: its range, the approximate
/// size and keys of each CF, and, counted exactly from the write CF, its MVCC rows and versions.
///
/// # Errors
///
/// An engine error, or a record that does not decode.
pub fn region_properties<E: KvEngine>(
    engine: &E,
    start: &[u8],
    end: &[u8],
) -> Result<Vec<Property>, Status> {
    let (from, to) = (keys::data_key(start), keys::data_end_key(end));
    let mut props = vec![
        prop("region.start_key", hex(start)),
        prop("region.end_key", hex(end)),
    ];
    for cf in [CF_DEFAULT, CF_LOCK, CF_WRITE] {
        let stats = engine
            .approximate_range_stats(cf, &from, &to)
            .map_err(engine_status)?;
        props.push(prop(&format!("{cf}.approximate_size"), stats.size));
        props.push(prop(&format!("{cf}.approximate_keys"), stats.keys));
    }
    let (mut rows, mut puts, mut deletes, mut versions, mut max_row_versions) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut min_ts, mut max_ts) = (u64::MAX, 0u64);
    let (mut last, mut row_versions): (Vec<u8>, u64) = (Vec::new(), 0);
    let snapshot = engine.snapshot();
    let mut failed = None;
    snapshot
        .scan(CF_WRITE, &from, &to, |key, value| {
            let Ok((user_key, commit_ts)) = Key::split_on_ts_for(key) else {
                return Ok(true);
            };
            let write = match Write::parse(value) {
                Ok(write) => write,
                Err(e) => {
                    failed = Some(corrupt("write", key, e));
                    return Ok(false);
                }
            };
            if rows == 0 || user_key != last.as_slice() {
                rows += 1;
                row_versions = 0;
                last = user_key.to_vec();
            }
            versions += 1;
            row_versions += 1;
            max_row_versions = max_row_versions.max(row_versions);
            match write.write_type {
                WriteType::Put => puts += 1,
                WriteType::Delete => deletes += 1,
                WriteType::Lock | WriteType::Rollback => {}
            }
            min_ts = min_ts.min(commit_ts.into_inner());
            max_ts = max_ts.max(commit_ts.into_inner());
            Ok(true)
        })
        .map_err(engine_status)?;
    if let Some(status) = failed {
        return Err(status);
    }
    props.extend([
        prop("mvcc.min_ts", if versions == 0 { 0 } else { min_ts }),
        prop("mvcc.max_ts", max_ts),
        prop("mvcc.num_rows", rows),
        prop("mvcc.num_puts", puts),
        prop("mvcc.num_deletes", deletes),
        prop("mvcc.num_versions", versions),
        prop("mvcc.max_row_versions", max_row_versions),
    ]);
    Ok(props)
}

fn prop(name: &str, value: impl ToString) -> Property {
    Property {
        name: name.to_string(),
        value: value.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

type ScanMvccStream =
    tokio_stream::Iter<std::vec::IntoIter<Result<debugpb::ScanMvccResponse, Status>>>;

#[tonic::async_trait]
impl<E: KvEngine> Debug for DebugService<E> {
    async fn get(
        &self,
        request: Request<debugpb::GetRequest>,
    ) -> Result<Response<debugpb::GetResponse>, Status> {
        let req = request.into_inner();
        check_kv_db(req.db)?;
        let cf = data_cf(&req.cf)?;
        let value = self
            .blocking(move |engine| engine.get_value_cf(cf, &req.key).map_err(engine_status))
            .await?
            .ok_or_else(|| Status::not_found("no such key"))?;
        Ok(Response::new(debugpb::GetResponse { value }))
    }

    type ScanMvccStream = ScanMvccStream;

    async fn scan_mvcc(
        &self,
        request: Request<debugpb::ScanMvccRequest>,
    ) -> Result<Response<Self::ScanMvccStream>, Status> {
        let req = request.into_inner();
        check_range(&req.from_key, &req.to_key)?;
        let infos = self
            .blocking(move |engine| {
                scan_mvcc(
                    &engine.snapshot(),
                    &req.from_key,
                    &req.to_key,
                    limit(req.limit),
                )
            })
            .await?;
        let responses: Vec<_> = infos
            .into_iter()
            .map(|(key, info)| {
                Ok(debugpb::ScanMvccResponse {
                    key,
                    info: Some(info),
                })
            })
            .collect();
        Ok(Response::new(tokio_stream::iter(responses)))
    }

    /// `threads` is not used: the engine's own background threads do the work.
    async fn compact(
        &self,
        request: Request<debugpb::CompactRequest>,
    ) -> Result<Response<debugpb::CompactResponse>, Status> {
        let req = request.into_inner();
        check_kv_db(req.db)?;
        let cf = data_cf(&req.cf)?;
        check_range(&req.from_key, &req.to_key)?;
        // Nothing here has a compaction filter, so IfHaveCompactionFilter skips it too.
        let bottommost =
            req.bottommost_level_compaction == debugpb::BottommostLevelCompaction::Force as i32;
        self.blocking(move |engine| {
            engine
                .compact_range(cf, &req.from_key, &req.to_key, bottommost)
                .map_err(engine_status)
        })
        .await?;
        Ok(Response::new(debugpb::CompactResponse {}))
    }

    async fn get_region_properties(
        &self,
        request: Request<debugpb::GetRegionPropertiesRequest>,
    ) -> Result<Response<debugpb::GetRegionPropertiesResponse>, Status> {
        let region_id = request.into_inner().region_id;
        let region = self
            .store_meta
            .lock()
            .regions
            .get(&RegionId(region_id))
            .cloned()
            .ok_or_else(|| Status::not_found(format!("region {region_id} is not on this store")))?;
        let props = self
            .blocking(move |engine| region_properties(&engine, &region.start_key, &region.end_key))
            .await?;
        Ok(Response::new(debugpb::GetRegionPropertiesResponse {
            props,
        }))
    }

    async fn get_store_info(
        &self,
        _: Request<debugpb::GetStoreInfoRequest>,
    ) -> Result<Response<debugpb::GetStoreInfoResponse>, Status> {
        Ok(Response::new(debugpb::GetStoreInfoResponse {
            store_id: self.store_meta.lock().store_id.get(),
            api_version: self.api_version as i32,
        }))
    }

    async fn get_cluster_info(
        &self,
        _: Request<debugpb::GetClusterInfoRequest>,
    ) -> Result<Response<debugpb::GetClusterInfoResponse>, Status> {
        Ok(Response::new(debugpb::GetClusterInfoResponse {
            cluster_id: self.cluster_id,
        }))
    }

    async fn raw_scan(
        &self,
        request: Request<debugpb::RawScanRequest>,
    ) -> Result<Response<debugpb::RawScanResponse>, Status> {
        let req = request.into_inner();
        let cf = data_cf(&req.cf)?;
        check_range(&req.from_key, &req.to_key)?;
        let limit = limit(req.limit);
        let kvs = self
            .blocking(move |engine| {
                let (mut kvs, mut bytes) = (Vec::new(), 0);
                engine
                    .snapshot()
                    .scan(cf, &req.from_key, &req.to_key, |key, value| {
                        kvs.push(kvrpcpb::KvPair {
                            key: key.to_vec(),
                            value: value.to_vec(),
                            ..Default::default()
                        });
                        bytes += key.len() + value.len();
                        Ok(kvs.len() < limit && bytes < MAX_SCAN_BYTES)
                    })
                    .map_err(engine_status)?;
                Ok(kvs)
            })
            .await?;
        Ok(Response::new(debugpb::RawScanResponse { kvs }))
    }
}

#[cfg(test)]
mod tests {
    use engine_memory::MemoryEngine;
    use engine_traits::{Mutable, WriteBatch, WriteOptions};
    use txn_types::{LockType, TimeStamp};

    use super::*;

    fn data(key: &Key) -> Vec<u8> {
        keys::data_key(key.as_encoded())
    }

    /// Key `a`: a value committed at 10 (started at 5), a rollback at 20, and a lock at 30.
    /// Key `b`: a short value committed at 12.
    fn engine_with_versions() -> MemoryEngine {
        let engine = MemoryEngine::new();
        let mut wb = engine.write_batch();
        let a = Key::from_raw(b"a");
        let b = Key::from_raw(b"b");
        let put =
            |wb: &mut <MemoryEngine as KvEngine>::WriteBatch, cf, key: Vec<u8>, value: Vec<u8>| {
                wb.put_cf(cf, &key, &value).unwrap();
            };
        put(
            &mut wb,
            CF_DEFAULT,
            data(&a.clone().append_ts(TimeStamp::new(5))),
            b"long value".to_vec(),
        );
        put(
            &mut wb,
            CF_WRITE,
            data(&a.clone().append_ts(TimeStamp::new(10))),
            Write::new(WriteType::Put, TimeStamp::new(5), None).to_bytes(),
        );
        put(
            &mut wb,
            CF_WRITE,
            data(&a.clone().append_ts(TimeStamp::new(20))),
            Write::new_rollback(TimeStamp::new(20), true).to_bytes(),
        );
        put(
            &mut wb,
            CF_LOCK,
            data(&a),
            Lock::new(LockType::Put, b"a".to_vec(), TimeStamp::new(30), 3000).to_bytes(),
        );
        put(
            &mut wb,
            CF_WRITE,
            data(&b.clone().append_ts(TimeStamp::new(12))),
            Write::new(WriteType::Put, TimeStamp::new(11), Some(b"v".to_vec())).to_bytes(),
        );
        wb.write_opt(WriteOptions::default()).unwrap();
        engine
    }

    #[test]
    fn scan_mvcc_shows_every_version_of_each_key() {
        let engine = engine_with_versions();
        let all = scan_mvcc(
            &engine.snapshot(),
            keys::DATA_MIN_KEY,
            keys::DATA_MAX_KEY,
            10,
        )
        .unwrap();
        assert_eq!(all.len(), 2);
        let (key, a) = &all[0];
        assert_eq!(key, &data(&Key::from_raw(b"a")));
        assert_eq!(a.lock.as_ref().unwrap().start_ts, 30);
        let commits: Vec<(i32, u64, u64)> = a
            .writes
            .iter()
            .map(|w| (w.r#type, w.start_ts, w.commit_ts))
            .collect();
        assert_eq!(
            commits,
            [
                (kvrpcpb::Op::Rollback as i32, 20, 20),
                (kvrpcpb::Op::Put as i32, 5, 10)
            ],
            "newest first"
        );
        assert_eq!(a.values[0].value, b"long value");
        assert_eq!(all[1].1.writes[0].short_value, b"v");

        let first = scan_mvcc(
            &engine.snapshot(),
            keys::DATA_MIN_KEY,
            keys::DATA_MAX_KEY,
            1,
        )
        .unwrap();
        assert_eq!(first.len(), 1, "the limit counts keys, not versions");
        assert_eq!(first[0].1.writes.len(), 2);
        let from_b = scan_mvcc(&engine.snapshot(), &data(&Key::from_raw(b"b")), b"", 10).unwrap();
        assert_eq!(from_b.len(), 1);
    }

    #[test]
    fn region_properties_count_rows_and_versions() {
        let engine = engine_with_versions();
        let props = region_properties(&engine, b"", b"").unwrap();
        let get = |name: &str| {
            props
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.clone())
                .unwrap_or_else(|| panic!("no {name} in {props:?}"))
        };
        assert_eq!(get("mvcc.num_rows"), "2");
        assert_eq!(get("mvcc.num_versions"), "3");
        assert_eq!(get("mvcc.num_puts"), "2");
        assert_eq!(get("mvcc.max_row_versions"), "2");
        assert_eq!(get("mvcc.min_ts"), "10");
        assert_eq!(get("mvcc.max_ts"), "20");
    }
}
