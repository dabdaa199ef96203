//! The transactional half of the `tikvpb.Tikv` service as plain functions: each turns a
//! `kvrpcpb` request into a read or a command on a [`TxnStorage`] and fills the response the
//! way clients read it.
//!
//! * A region error fills only `region_error`.
//! * Other failures become `KeyError`s (see `mvcc::Error::to_key_error`): in `error`, in
//!   `errors` for prewrite and pessimistic lock, and for BatchGet and Scan in a pair, because
//!   clients look for non-lock errors only there (a lock found before reading any data goes to
//!   the top-level `error`, which clients read when `pairs` is empty).
//! * Keys are checked before any work: the key mode of API V2 (`x`), and the key size of
//!   writes.

use std::collections::HashMap;

use kvproto::{errorpb, kvrpcpb};
use txn_types::{Key, Mutation, MutationOp, TimeStamp};

use super::actions::{CommitKind, PessimisticAction, TxnStatus};
use super::commands::{
    AcquirePessimisticLock, CheckSecondaryLocks, CheckTxnStatus, Cleanup, Commit,
    PessimisticRollback, Prewrite, Rollback, SecondaryLocksStatus, TxnHeartBeat,
};
use super::{GcOptions, KvPairResult, TxnStorage};
use crate::api_version::ApiVersion;
use crate::kv::Engine;
use crate::mvcc;
use crate::{Error, Result};

type KeyErrorPair = (Option<errorpb::Error>, Option<kvrpcpb::KeyError>);

/// This is where a failed transactional request is handled, so this is where it is logged.
fn split(e: Error) -> KeyErrorPair {
    tracing::debug!(error = %e, "transactional request failed");
    e.into_key_error()
}

fn split_result<T>(result: Result<T>) -> KeyErrorPair {
    match result {
        Ok(_) => (None, None),
        Err(e) => split(e),
    }
}

/// Checks the keys a transactional request writes: their mode in API V2 and their size.
fn check_write_keys<'a, E: Engine>(
    storage: &TxnStorage<E>,
    ctx: &kvrpcpb::Context,
    cmd: &'static str,
    keys: impl IntoIterator<Item = &'a Vec<u8>>,
) -> Result<()> {
    let api = ApiVersion::from_context(ctx)?;
    let limit = storage.config().max_key_size;
    for key in keys {
        api.check_txn_key(cmd, key)?;
        if key.len() > limit {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                limit,
            });
        }
    }
    Ok(())
}

/// Checks keys a request names without writing values under them (mode only).
fn encode_keys(ctx: &kvrpcpb::Context, cmd: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Key>> {
    let api = ApiVersion::from_context(ctx)?;
    keys.iter()
        .map(|key| {
            api.check_txn_key(cmd, key)?;
            Ok(Key::from_raw(key))
        })
        .collect()
}

fn pair(result: KvPairResult) -> kvrpcpb::KvPair {
    match result {
        Ok((key, value)) => kvrpcpb::KvPair {
            key,
            value,
            error: None,
        },
        Err(e) => {
            let key = match &e {
                mvcc::Error::KeyIsLocked(info) => info.key.clone(),
                _ => vec![],
            };
            kvrpcpb::KvPair {
                key,
                value: vec![],
                error: Some(e.to_key_error()),
            }
        }
    }
}

/// The pairs and top-level error of a failed BatchGet or Scan: a lock goes to the top-level
/// error (clients take locks from it when there are no pairs), anything else to a pair.
fn failed_pairs(
    e: Error,
) -> (
    Option<errorpb::Error>,
    Vec<kvrpcpb::KvPair>,
    Option<kvrpcpb::KeyError>,
) {
    let is_lock = matches!(e, Error::Mvcc(mvcc::Error::KeyIsLocked(_)));
    match split(e) {
        (Some(region_error), _) => (Some(region_error), vec![], None),
        (None, key_error) if is_lock => (None, vec![], key_error),
        (None, key_error) => {
            let pair = kvrpcpb::KvPair {
                error: key_error,
                ..Default::default()
            };
            (None, vec![pair], None)
        }
    }
}

pub async fn kv_get<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::GetRequest,
) -> kvrpcpb::GetResponse {
    let ctx = req.context.unwrap_or_default();
    let mut resp = kvrpcpb::GetResponse::default();
    match storage.get(&ctx, req.key, req.version.into()).await {
        Ok(Some(value)) => resp.value = value,
        Ok(None) => resp.not_found = true,
        Err(e) => (resp.region_error, resp.error) = split(e),
    }
    resp
}

pub async fn kv_batch_get<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::BatchGetRequest,
) -> kvrpcpb::BatchGetResponse {
    let ctx = req.context.unwrap_or_default();
    let mut resp = kvrpcpb::BatchGetResponse::default();
    match storage.batch_get(&ctx, req.keys, req.version.into()).await {
        Ok(pairs) => resp.pairs = pairs.into_iter().map(pair).collect(),
        Err(e) => (resp.region_error, resp.pairs, resp.error) = failed_pairs(e),
    }
    resp
}

/// Reverse scans arrive with swapped bounds; [`TxnStorage::scan`] expects them that way.
pub async fn kv_scan<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::ScanRequest,
) -> kvrpcpb::ScanResponse {
    let ctx = req.context.unwrap_or_default();
    let mut resp = kvrpcpb::ScanResponse::default();
    let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
    let result = storage
        .scan(
            &ctx,
            req.start_key,
            req.end_key,
            limit,
            req.version.into(),
            req.key_only,
            req.reverse,
        )
        .await;
    match result {
        Ok(pairs) => resp.pairs = pairs.into_iter().map(pair).collect(),
        Err(e) => (resp.region_error, resp.pairs, resp.error) = failed_pairs(e),
    }
    resp
}

/// A lock must name its transaction's primary, where its status is decided.
fn check_primary(primary: &[u8]) -> Result<()> {
    if primary.is_empty() {
        return Err(mvcc::Error::InvalidRequest("the primary lock is empty".into()).into());
    }
    Ok(())
}

fn prewrite_command<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::PrewriteRequest,
) -> Result<Prewrite> {
    let ctx = req.context.unwrap_or_default();
    check_primary(&req.primary_lock)?;
    check_write_keys(
        storage,
        &ctx,
        "kv_prewrite",
        req.mutations.iter().map(|m| &m.key),
    )?;
    let pessimistic = req.for_update_ts != 0;
    let mut mutations = Vec::with_capacity(req.mutations.len());
    for (i, m) in req.mutations.into_iter().enumerate() {
        let op = MutationOp::from_pb(m.op).ok_or_else(|| {
            Error::from(mvcc::Error::InvalidRequest(format!(
                "op {} cannot be prewritten",
                m.op
            )))
        })?;
        // Clients send one action per mutation of the whole transaction to every region, so
        // the list may be longer than this request's mutations: match by position, and treat a
        // missing entry as "locked pessimistically", as every official client does.
        let action = match (pessimistic, req.pessimistic_actions.get(i)) {
            (false, _) => PessimisticAction::SkipPessimisticCheck,
            (true, Some(&action)) => PessimisticAction::from_pb(action),
            (true, None) => PessimisticAction::DoPessimisticCheck,
        };
        let mutation = Mutation {
            op,
            key: Key::from_raw(&m.key),
            value: m.value,
        };
        mutations.push((mutation, action));
    }
    let commit_kind = match (req.try_one_pc, req.use_async_commit) {
        (true, _) => CommitKind::OnePc,
        (false, true) => CommitKind::Async,
        (false, false) => CommitKind::TwoPc,
    };
    Ok(Prewrite {
        ctx,
        mutations,
        primary: req.primary_lock,
        start_ts: req.start_version.into(),
        for_update_ts: req.for_update_ts.into(),
        lock_ttl: req.lock_ttl,
        txn_size: req.txn_size,
        min_commit_ts: req.min_commit_ts.into(),
        commit_kind,
        secondaries: req.secondaries,
    })
}

pub async fn kv_prewrite<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::PrewriteRequest,
) -> kvrpcpb::PrewriteResponse {
    let mut resp = kvrpcpb::PrewriteResponse::default();
    let result = match prewrite_command(storage, req) {
        Ok(cmd) => storage.sched(cmd).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(result) => {
            resp.errors = result
                .locks
                .into_iter()
                .map(|info| mvcc::Error::KeyIsLocked(Box::new(info)).to_key_error())
                .collect();
            resp.min_commit_ts = result.min_commit_ts.into_inner();
            resp.one_pc_commit_ts = result.one_pc_commit_ts.into_inner();
        }
        Err(e) => {
            let (region_error, key_error) = split(e);
            resp.region_error = region_error;
            resp.errors = key_error.into_iter().collect();
        }
    }
    resp
}

pub async fn kv_commit<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::CommitRequest,
) -> kvrpcpb::CommitResponse {
    let ctx = req.context.unwrap_or_default();
    let result = match encode_keys(&ctx, "kv_commit", &req.keys) {
        Ok(keys) => {
            let cmd = Commit {
                ctx,
                keys,
                start_ts: req.start_version.into(),
                commit_ts: req.commit_version.into(),
            };
            storage.sched(cmd).await
        }
        Err(e) => Err(e),
    };
    let (region_error, error) = split_result(result);
    kvrpcpb::CommitResponse {
        region_error,
        error,
        ..Default::default()
    }
}

pub async fn kv_cleanup<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::CleanupRequest,
) -> kvrpcpb::CleanupResponse {
    let ctx = req.context.unwrap_or_default();
    let result = match encode_keys(&ctx, "kv_cleanup", std::slice::from_ref(&req.key)) {
        Ok(mut keys) => {
            let cmd = Cleanup {
                ctx,
                key: keys.remove(0),
                start_ts: req.start_version.into(),
                current_ts: req.current_ts.into(),
            };
            storage.sched(cmd).await
        }
        Err(e) => Err(e),
    };
    let mut resp = kvrpcpb::CleanupResponse::default();
    match result {
        Ok(()) => {}
        // The transaction committed: the answer is its commit ts, not an error.
        Err(Error::Mvcc(mvcc::Error::Committed { commit_ts, .. })) => {
            resp.commit_version = commit_ts.into_inner();
        }
        Err(e) => (resp.region_error, resp.error) = split(e),
    }
    resp
}

pub async fn kv_batch_rollback<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::BatchRollbackRequest,
) -> kvrpcpb::BatchRollbackResponse {
    let ctx = req.context.unwrap_or_default();
    let result = match encode_keys(&ctx, "kv_batch_rollback", &req.keys) {
        Ok(keys) => {
            let cmd = Rollback {
                ctx,
                keys,
                start_ts: req.start_version.into(),
            };
            storage.sched(cmd).await
        }
        Err(e) => Err(e),
    };
    let (region_error, error) = split_result(result);
    kvrpcpb::BatchRollbackResponse {
        region_error,
        error,
    }
}

pub async fn kv_check_txn_status<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::CheckTxnStatusRequest,
) -> kvrpcpb::CheckTxnStatusResponse {
    let ctx = req.context.unwrap_or_default();
    let result = match encode_keys(
        &ctx,
        "kv_check_txn_status",
        std::slice::from_ref(&req.primary_key),
    ) {
        Ok(mut keys) => {
            let cmd = CheckTxnStatus {
                ctx,
                primary_key: keys.remove(0),
                lock_ts: req.lock_ts.into(),
                caller_start_ts: req.caller_start_ts.into(),
                current_ts: req.current_ts.into(),
                rollback_if_not_exist: req.rollback_if_not_exist,
                force_sync_commit: req.force_sync_commit,
                resolving_pessimistic_lock: req.resolving_pessimistic_lock,
                verify_is_primary: req.verify_is_primary,
            };
            storage.sched(cmd).await
        }
        Err(e) => Err(e),
    };
    let mut resp = kvrpcpb::CheckTxnStatusResponse::default();
    let status = match result {
        Ok(status) => status,
        Err(e) => {
            (resp.region_error, resp.error) = split(e);
            return resp;
        }
    };
    use kvrpcpb::Action;
    let action = match status {
        TxnStatus::RolledBack => Action::NoAction,
        TxnStatus::TtlExpire => Action::TtlExpireRollback,
        TxnStatus::LockNotExist => Action::LockNotExistRollback,
        TxnStatus::PessimisticRollBack => Action::TtlExpirePessimisticRollback,
        TxnStatus::LockNotExistDoNothing => Action::LockNotExistDoNothing,
        TxnStatus::Committed { commit_ts } => {
            resp.commit_version = commit_ts.into_inner();
            Action::NoAction
        }
        TxnStatus::Uncommitted {
            lock,
            min_commit_ts_pushed,
        } => {
            resp.lock_ttl = lock.ttl;
            let primary = lock.primary.clone();
            resp.lock_info = Some(lock.into_lock_info(primary));
            match min_commit_ts_pushed {
                true => Action::MinCommitTsPushed,
                false => Action::NoAction,
            }
        }
    };
    resp.action = action as i32;
    resp
}

pub async fn kv_check_secondary_locks<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::CheckSecondaryLocksRequest,
) -> kvrpcpb::CheckSecondaryLocksResponse {
    let ctx = req.context.unwrap_or_default();
    let result = match encode_keys(&ctx, "kv_check_secondary_locks", &req.keys) {
        Ok(keys) => {
            let cmd = CheckSecondaryLocks {
                ctx,
                keys,
                start_ts: req.start_version.into(),
            };
            storage.sched(cmd).await
        }
        Err(e) => Err(e),
    };
    let mut resp = kvrpcpb::CheckSecondaryLocksResponse::default();
    match result {
        Ok(SecondaryLocksStatus::Locked(locks)) => resp.locks = locks,
        Ok(SecondaryLocksStatus::Committed(commit_ts)) => resp.commit_ts = commit_ts.into_inner(),
        Ok(SecondaryLocksStatus::RolledBack) => {}
        Err(e) => (resp.region_error, resp.error) = split(e),
    }
    resp
}

pub async fn kv_resolve_lock<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::ResolveLockRequest,
) -> kvrpcpb::ResolveLockResponse {
    let ctx = req.context.unwrap_or_default();
    let txn_status: HashMap<TimeStamp, TimeStamp> = if req.txn_infos.is_empty() {
        HashMap::from([(req.start_version.into(), req.commit_version.into())])
    } else {
        req.txn_infos
            .iter()
            .map(|info| (info.txn.into(), info.status.into()))
            .collect()
    };
    let result = if req.keys.is_empty() {
        storage.resolve_lock(&ctx, txn_status, None).await
    } else {
        match encode_keys(&ctx, "kv_resolve_lock", &req.keys) {
            Ok(keys) => storage.resolve_lock(&ctx, txn_status, Some(keys)).await,
            Err(e) => Err(e),
        }
    };
    let (region_error, error) = split_result(result);
    kvrpcpb::ResolveLockResponse {
        region_error,
        error,
    }
}

pub async fn kv_scan_lock<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::ScanLockRequest,
) -> kvrpcpb::ScanLockResponse {
    let ctx = req.context.unwrap_or_default();
    let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
    let mut resp = kvrpcpb::ScanLockResponse::default();
    match storage
        .scan_lock(
            &ctx,
            req.max_version.into(),
            req.start_key,
            req.end_key,
            limit,
        )
        .await
    {
        Ok(locks) => resp.locks = locks,
        Err(e) => (resp.region_error, resp.error) = split(e),
    }
    resp
}

pub async fn kv_txn_heart_beat<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::TxnHeartBeatRequest,
) -> kvrpcpb::TxnHeartBeatResponse {
    let ctx = req.context.unwrap_or_default();
    let result = match encode_keys(
        &ctx,
        "kv_txn_heart_beat",
        std::slice::from_ref(&req.primary_lock),
    ) {
        Ok(mut keys) => {
            let cmd = TxnHeartBeat {
                ctx,
                primary_key: keys.remove(0),
                start_ts: req.start_version.into(),
                advise_ttl: req.advise_lock_ttl,
            };
            storage.sched(cmd).await
        }
        Err(e) => Err(e),
    };
    let mut resp = kvrpcpb::TxnHeartBeatResponse::default();
    match result {
        Ok(ttl) => resp.lock_ttl = ttl,
        Err(e) => (resp.region_error, resp.error) = split(e),
    }
    resp
}

fn pessimistic_lock_command<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::PessimisticLockRequest,
) -> Result<AcquirePessimisticLock> {
    let ctx = req.context.unwrap_or_default();
    check_primary(&req.primary_lock)?;
    check_write_keys(
        storage,
        &ctx,
        "kv_pessimistic_lock",
        req.mutations.iter().map(|m| &m.key),
    )?;
    let keys = req
        .mutations
        .iter()
        .map(|m| {
            let should_not_exist = m.assertion == kvrpcpb::Assertion::NotExist as i32;
            (Key::from_raw(&m.key), should_not_exist)
        })
        .collect();
    Ok(AcquirePessimisticLock {
        ctx,
        keys,
        primary: req.primary_lock,
        start_ts: req.start_version.into(),
        for_update_ts: req.for_update_ts.into(),
        lock_ttl: req.lock_ttl,
        min_commit_ts: req.min_commit_ts.into(),
        return_values: req.return_values,
        check_existence: req.check_existence,
        lock_only_if_exists: req.lock_only_if_exists,
        // The value returned with the lock is then the newest, as TiKV's force-lock wake-up
        // mode answers; the official Rust client retries no WriteConflict, and a request
        // that reads with its lock needs none.
        allow_lock_with_conflict: req.return_values,
    })
}

pub async fn kv_pessimistic_lock<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::PessimisticLockRequest,
) -> kvrpcpb::PessimisticLockResponse {
    let (return_values, check_existence) = (req.return_values, req.check_existence);
    let (wait_timeout, is_first_lock) = (req.wait_timeout, req.is_first_lock);
    let mut resp = kvrpcpb::PessimisticLockResponse::default();
    let result = match pessimistic_lock_command(storage, req) {
        Ok(cmd) => {
            storage
                .acquire_pessimistic_lock(cmd, wait_timeout, is_first_lock)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(values) if return_values => {
            resp.not_founds = values.iter().map(Option::is_none).collect();
            resp.values = values.into_iter().map(Option::unwrap_or_default).collect();
        }
        Ok(values) if check_existence => {
            resp.not_founds = values.iter().map(Option::is_none).collect();
        }
        Ok(_) => {}
        Err(e) => {
            let (region_error, key_error) = split(e);
            resp.region_error = region_error;
            resp.errors = key_error.into_iter().collect();
        }
    }
    resp
}

pub async fn kv_pessimistic_rollback<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::PessimisticRollbackRequest,
) -> kvrpcpb::PessimisticRollbackResponse {
    let ctx = req.context.unwrap_or_default();
    let result = match encode_keys(&ctx, "kv_pessimistic_rollback", &req.keys) {
        Ok(keys) => {
            let cmd = PessimisticRollback {
                ctx,
                keys,
                start_ts: req.start_version.into(),
                for_update_ts: req.for_update_ts.into(),
            };
            storage.sched(cmd).await
        }
        Err(e) => Err(e),
    };
    let (region_error, key_error) = split_result(result);
    kvrpcpb::PessimisticRollbackResponse {
        region_error,
        errors: key_error.into_iter().collect(),
    }
}

pub async fn kv_gc<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::GcRequest,
) -> kvrpcpb::GcResponse {
    let ctx = req.context.unwrap_or_default();
    let result = storage
        .gc(&ctx, req.safe_point.into(), GcOptions::default())
        .await;
    let (region_error, error) = split_result(result);
    kvrpcpb::GcResponse {
        region_error,
        error,
    }
}

pub async fn kv_delete_range<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::DeleteRangeRequest,
) -> kvrpcpb::DeleteRangeResponse {
    let ctx = req.context.unwrap_or_default();
    let result = storage
        .delete_range(&ctx, req.start_key, req.end_key, req.notify_only)
        .await;
    let mut resp = kvrpcpb::DeleteRangeResponse::default();
    if let Err(e) = result {
        tracing::debug!(error = %e, "delete range failed");
        let response = e.into_response_error();
        resp.region_error = response.region_error;
        resp.error = response.error;
    }
    resp
}

pub async fn unsafe_destroy_range<E: Engine>(
    storage: &TxnStorage<E>,
    req: kvrpcpb::UnsafeDestroyRangeRequest,
) -> kvrpcpb::UnsafeDestroyRangeResponse {
    let ctx = req.context.unwrap_or_default();
    let result = storage
        .unsafe_destroy_range(&ctx, req.start_key, req.end_key)
        .await;
    let mut resp = kvrpcpb::UnsafeDestroyRangeResponse::default();
    if let Err(e) = result {
        tracing::warn!(error = %e, "unsafe destroy range failed");
        let response = e.into_response_error();
        resp.region_error = response.region_error;
        resp.error = response.error;
    }
    resp
}
