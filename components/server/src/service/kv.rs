//! The `tikvpb.Tikv` gRPC service (seed: `KvService`). Raw KV methods run on
//! [`storage::RawStorage`]; transactional methods come with the transaction layer and answer
//! UNIMPLEMENTED until then.

use std::time::Instant;

use kvproto::kvrpcpb;
use kvproto::tikvpb::tikv_server::Tikv;
use storage::kv::Engine;
use storage::raw::service;
use storage::RawStorage;
use tonic::{Request, Response, Status};

use crate::metrics;

pub struct KvService<E: Engine> {
    storage: RawStorage<E>,
}

impl<E: Engine> KvService<E> {
    pub fn new(storage: RawStorage<E>) -> Self {
        KvService { storage }
    }
}

/// Writes the whole service impl at once: `async_trait` must see every method, so the
/// methods cannot come from macros inside the impl block.
macro_rules! tikv_service {
    (
        raw { $($method:ident($req:ty) -> $resp:ty, $label:literal;)* }
        unimplemented { $($missing:ident($mreq:ty) -> $mresp:ty;)* }
    ) => {
        #[tonic::async_trait]
        impl<E: Engine> Tikv for KvService<E> {
            $(
                async fn $method(&self, request: Request<$req>) -> Result<Response<$resp>, Status> {
                    let started = Instant::now();
                    let resp = service::$method(&self.storage, request.into_inner()).await;
                    metrics::observe_grpc($label, started, resp.region_error.is_some());
                    Ok(Response::new(resp))
                }
            )*
            $(
                async fn $missing(&self, _request: Request<$mreq>) -> Result<Response<$mresp>, Status> {
                    Err(Status::unimplemented(concat!(
                        stringify!($missing),
                        " is not supported yet: this store serves the raw KV API only"
                    )))
                }
            )*
        }
    };
}

tikv_service! {
    raw {
        raw_get(kvrpcpb::RawGetRequest) -> kvrpcpb::RawGetResponse, "raw_get";
        raw_batch_get(kvrpcpb::RawBatchGetRequest) -> kvrpcpb::RawBatchGetResponse, "raw_batch_get";
        raw_put(kvrpcpb::RawPutRequest) -> kvrpcpb::RawPutResponse, "raw_put";
        raw_batch_put(kvrpcpb::RawBatchPutRequest) -> kvrpcpb::RawBatchPutResponse, "raw_batch_put";
        raw_delete(kvrpcpb::RawDeleteRequest) -> kvrpcpb::RawDeleteResponse, "raw_delete";
        raw_batch_delete(kvrpcpb::RawBatchDeleteRequest) -> kvrpcpb::RawBatchDeleteResponse, "raw_batch_delete";
        raw_scan(kvrpcpb::RawScanRequest) -> kvrpcpb::RawScanResponse, "raw_scan";
        raw_delete_range(kvrpcpb::RawDeleteRangeRequest) -> kvrpcpb::RawDeleteRangeResponse, "raw_delete_range";
        raw_batch_scan(kvrpcpb::RawBatchScanRequest) -> kvrpcpb::RawBatchScanResponse, "raw_batch_scan";
        raw_get_key_ttl(kvrpcpb::RawGetKeyTtlRequest) -> kvrpcpb::RawGetKeyTtlResponse, "raw_get_key_ttl";
        raw_compare_and_swap(kvrpcpb::RawCasRequest) -> kvrpcpb::RawCasResponse, "raw_compare_and_swap";
    }
    unimplemented {
        kv_get(kvrpcpb::GetRequest) -> kvrpcpb::GetResponse;
        kv_scan(kvrpcpb::ScanRequest) -> kvrpcpb::ScanResponse;
        kv_prewrite(kvrpcpb::PrewriteRequest) -> kvrpcpb::PrewriteResponse;
        kv_pessimistic_lock(kvrpcpb::PessimisticLockRequest) -> kvrpcpb::PessimisticLockResponse;
        kv_pessimistic_rollback(kvrpcpb::PessimisticRollbackRequest) -> kvrpcpb::PessimisticRollbackResponse;
        kv_txn_heart_beat(kvrpcpb::TxnHeartBeatRequest) -> kvrpcpb::TxnHeartBeatResponse;
        kv_check_txn_status(kvrpcpb::CheckTxnStatusRequest) -> kvrpcpb::CheckTxnStatusResponse;
        kv_check_secondary_locks(kvrpcpb::CheckSecondaryLocksRequest) -> kvrpcpb::CheckSecondaryLocksResponse;
        kv_commit(kvrpcpb::CommitRequest) -> kvrpcpb::CommitResponse;
        kv_batch_get(kvrpcpb::BatchGetRequest) -> kvrpcpb::BatchGetResponse;
        kv_batch_rollback(kvrpcpb::BatchRollbackRequest) -> kvrpcpb::BatchRollbackResponse;
        kv_scan_lock(kvrpcpb::ScanLockRequest) -> kvrpcpb::ScanLockResponse;
        kv_resolve_lock(kvrpcpb::ResolveLockRequest) -> kvrpcpb::ResolveLockResponse;
        kv_gc(kvrpcpb::GcRequest) -> kvrpcpb::GcResponse;
        kv_delete_range(kvrpcpb::DeleteRangeRequest) -> kvrpcpb::DeleteRangeResponse;
        raw_coprocessor(kvrpcpb::RawCoprocessorRequest) -> kvrpcpb::RawCoprocessorResponse;
        unsafe_destroy_range(kvrpcpb::UnsafeDestroyRangeRequest) -> kvrpcpb::UnsafeDestroyRangeResponse;
    }
}
