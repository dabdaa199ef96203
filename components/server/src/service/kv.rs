//! The `tikvpb.Tikv` gRPC service (seed: `KvService`). Raw methods run on the raw half of
//! [`storage::Storage`], transactional ones on its transactional half; the request-to-response
//! mapping of each lives in `storage::raw::service` and `storage::txn::service`. Methods this
//! store does not serve answer UNIMPLEMENTED with their name (see [`super::unimplemented`]).

use std::time::Instant;

use kvproto::kvrpcpb;
use kvproto::tikvpb::tikv_server::Tikv;
use storage::kv::{Engine, RegionSplitter};
use storage::raw::service as raw;
use storage::txn::service as txn;
use storage::Storage;
use tonic::{Request, Response, Status};

use crate::metrics;

/// The KV service over storage on engine `E`, which also splits regions on request.
pub struct KvService<E: Engine + RegionSplitter> {
    storage: Storage<E>,
}

impl<E: Engine + RegionSplitter> KvService<E> {
    pub fn new(storage: Storage<E>) -> Self {
        KvService { storage }
    }
}

/// Writes the whole service impl at once: `async_trait` must see every method, so the
/// methods cannot come from macros inside the impl block. Each method runs the mapping
/// function of the same name on its half of storage and records its duration.
macro_rules! tikv_service {
    (
        raw { $($raw_method:ident($raw_req:ty) -> $raw_resp:ty;)* }
        txn { $($txn_method:ident($txn_req:ty) -> $txn_resp:ty;)* }
        unimplemented { $($missing:ident($mreq:ty) -> $mresp:ty;)* }
    ) => {
        #[tonic::async_trait]
        impl<E: Engine + RegionSplitter> Tikv for KvService<E> {
            async fn split_region(
                &self,
                request: Request<kvrpcpb::SplitRegionRequest>,
            ) -> Result<Response<kvrpcpb::SplitRegionResponse>, Status> {
                let started = Instant::now();
                let resp = storage::split::split_region(self.storage.engine(), request.into_inner()).await;
                metrics::observe_grpc("split_region", started, resp.region_error.is_some());
                Ok(Response::new(resp))
            }
            $(
                async fn $raw_method(&self, request: Request<$raw_req>) -> Result<Response<$raw_resp>, Status> {
                    let started = Instant::now();
                    let resp = raw::$raw_method(self.storage.raw(), request.into_inner()).await;
                    metrics::observe_grpc(stringify!($raw_method), started, resp.region_error.is_some());
                    Ok(Response::new(resp))
                }
            )*
            $(
                async fn $txn_method(&self, request: Request<$txn_req>) -> Result<Response<$txn_resp>, Status> {
                    let started = Instant::now();
                    let resp = txn::$txn_method(self.storage.txn(), request.into_inner()).await;
                    metrics::observe_grpc(stringify!($txn_method), started, resp.region_error.is_some());
                    Ok(Response::new(resp))
                }
            )*
            $(
                async fn $missing(&self, _request: Request<$mreq>) -> Result<Response<$mresp>, Status> {
                    Err(Status::unimplemented(concat!(
                        stringify!($missing),
                        " is not supported by this store"
                    )))
                }
            )*
        }
    };
}

tikv_service! {
    raw {
        raw_get(kvrpcpb::RawGetRequest) -> kvrpcpb::RawGetResponse;
        raw_batch_get(kvrpcpb::RawBatchGetRequest) -> kvrpcpb::RawBatchGetResponse;
        raw_put(kvrpcpb::RawPutRequest) -> kvrpcpb::RawPutResponse;
        raw_batch_put(kvrpcpb::RawBatchPutRequest) -> kvrpcpb::RawBatchPutResponse;
        raw_delete(kvrpcpb::RawDeleteRequest) -> kvrpcpb::RawDeleteResponse;
        raw_batch_delete(kvrpcpb::RawBatchDeleteRequest) -> kvrpcpb::RawBatchDeleteResponse;
        raw_scan(kvrpcpb::RawScanRequest) -> kvrpcpb::RawScanResponse;
        raw_delete_range(kvrpcpb::RawDeleteRangeRequest) -> kvrpcpb::RawDeleteRangeResponse;
        raw_batch_scan(kvrpcpb::RawBatchScanRequest) -> kvrpcpb::RawBatchScanResponse;
        raw_get_key_ttl(kvrpcpb::RawGetKeyTtlRequest) -> kvrpcpb::RawGetKeyTtlResponse;
        raw_compare_and_swap(kvrpcpb::RawCasRequest) -> kvrpcpb::RawCasResponse;
        raw_checksum(kvrpcpb::RawChecksumRequest) -> kvrpcpb::RawChecksumResponse;
    }
    txn {
        kv_get(kvrpcpb::GetRequest) -> kvrpcpb::GetResponse;
        kv_scan(kvrpcpb::ScanRequest) -> kvrpcpb::ScanResponse;
        kv_batch_get(kvrpcpb::BatchGetRequest) -> kvrpcpb::BatchGetResponse;
        kv_prewrite(kvrpcpb::PrewriteRequest) -> kvrpcpb::PrewriteResponse;
        kv_commit(kvrpcpb::CommitRequest) -> kvrpcpb::CommitResponse;
        kv_cleanup(kvrpcpb::CleanupRequest) -> kvrpcpb::CleanupResponse;
        kv_batch_rollback(kvrpcpb::BatchRollbackRequest) -> kvrpcpb::BatchRollbackResponse;
        kv_pessimistic_lock(kvrpcpb::PessimisticLockRequest) -> kvrpcpb::PessimisticLockResponse;
        kv_pessimistic_rollback(kvrpcpb::PessimisticRollbackRequest) -> kvrpcpb::PessimisticRollbackResponse;
        kv_txn_heart_beat(kvrpcpb::TxnHeartBeatRequest) -> kvrpcpb::TxnHeartBeatResponse;
        kv_check_txn_status(kvrpcpb::CheckTxnStatusRequest) -> kvrpcpb::CheckTxnStatusResponse;
        kv_check_secondary_locks(kvrpcpb::CheckSecondaryLocksRequest) -> kvrpcpb::CheckSecondaryLocksResponse;
        kv_scan_lock(kvrpcpb::ScanLockRequest) -> kvrpcpb::ScanLockResponse;
        kv_resolve_lock(kvrpcpb::ResolveLockRequest) -> kvrpcpb::ResolveLockResponse;
        kv_gc(kvrpcpb::GcRequest) -> kvrpcpb::GcResponse;
        kv_delete_range(kvrpcpb::DeleteRangeRequest) -> kvrpcpb::DeleteRangeResponse;
        unsafe_destroy_range(kvrpcpb::UnsafeDestroyRangeRequest) -> kvrpcpb::UnsafeDestroyRangeResponse;
    }
    unimplemented {
        raw_coprocessor(kvrpcpb::RawCoprocessorRequest) -> kvrpcpb::RawCoprocessorResponse;
    }
}
