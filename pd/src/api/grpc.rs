//! gRPC services `pdpb.PD` and `keyspacepb.Keyspace`.
//!
//! Every unary response carries a header: the official client unwraps it. Errors go into the
//! header's `error` (PD's error types), never into a gRPC status, except on the TSO stream,
//! whose callers do not read headers: there a bad request ends the stream with a status.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use kvproto::keyspacepb::{self, keyspace_server::Keyspace};
use kvproto::pdpb::{self, pd_server::Pd};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::{
    cluster::RegionInfo,
    error::{PdError, Result},
    metrics,
    server::PdState,
};

type GrpcResult<T> = std::result::Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

/// A response message with a `header` field.
trait WithHeader: Default {
    fn set_header(&mut self, header: pdpb::ResponseHeader);
}

macro_rules! with_header {
    ($($ty:ty),* $(,)?) => {
        $(impl WithHeader for $ty {
            fn set_header(&mut self, header: pdpb::ResponseHeader) {
                self.header = Some(header);
            }
        })*
    };
}

with_header!(
    pdpb::GetMembersResponse,
    pdpb::GetRegionResponse,
    pdpb::ScanRegionsResponse,
    pdpb::GetStoreResponse,
    pdpb::GetAllStoresResponse,
    pdpb::GetGcSafePointResponse,
    pdpb::UpdateGcSafePointResponse,
    pdpb::BootstrapResponse,
    pdpb::IsBootstrappedResponse,
    pdpb::AllocIdResponse,
    pdpb::PutStoreResponse,
    pdpb::StoreHeartbeatResponse,
    pdpb::RegionHeartbeatResponse,
    pdpb::AskBatchSplitResponse,
    pdpb::ReportBatchSplitResponse,
    pdpb::GetClusterConfigResponse,
    pdpb::PutClusterConfigResponse,
    keyspacepb::LoadKeyspaceResponse,
    keyspacepb::UpdateKeyspaceStateResponse,
    keyspacepb::GetAllKeyspacesResponse,
);

/// Shared by both services: header checks and the response envelope.
#[derive(Clone)]
struct Handler {
    state: Arc<PdState>,
}

impl Handler {
    fn header(&self, error: Option<&PdError>) -> pdpb::ResponseHeader {
        pdpb::ResponseHeader {
            cluster_id: self.state.cluster.id(),
            error: error.map(PdError::to_pb),
        }
    }

    fn check_cluster(&self, header: Option<&pdpb::RequestHeader>) -> Result<()> {
        let expected = self.state.cluster.id();
        let actual = header.map_or(0, |h| h.cluster_id);
        if actual != expected {
            return Err(PdError::ClusterIdMismatch { expected, actual });
        }
        Ok(())
    }

    /// Checks the request header, runs `handle` and wraps its result in a response with a
    /// header; records metrics.
    fn respond<R: WithHeader>(
        &self,
        method: &'static str,
        header: Option<&pdpb::RequestHeader>,
        handle: impl FnOnce(&PdState) -> Result<R>,
    ) -> GrpcResult<R> {
        let started = Instant::now();
        let result = self
            .check_cluster(header)
            .and_then(|()| handle(&self.state));
        let resp = match result {
            Ok(mut resp) => {
                resp.set_header(self.header(None));
                metrics::GRPC_REQUESTS
                    .with_label_values(&[method, "ok"])
                    .inc();
                resp
            }
            Err(e) => {
                debug!(method, error = %e, "request refused");
                let mut resp = R::default();
                resp.set_header(self.header(Some(&e)));
                metrics::GRPC_REQUESTS
                    .with_label_values(&[method, e.error_type().as_str_name()])
                    .inc();
                resp
            }
        };
        metrics::GRPC_DURATION
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
        Ok(Response::new(resp))
    }
}

pub struct PdService {
    handler: Handler,
}

impl PdService {
    pub fn new(state: Arc<PdState>) -> Self {
        PdService {
            handler: Handler { state },
        }
    }
}

fn region_response(info: RegionInfo) -> pdpb::GetRegionResponse {
    pdpb::GetRegionResponse {
        header: None,
        region: Some(info.region),
        leader: info.leader,
        down_peers: info.down_peers,
        pending_peers: info.pending_peers,
    }
}

fn region_info_from_heartbeat(req: pdpb::RegionHeartbeatRequest) -> Result<RegionInfo> {
    RegionInfo::from_heartbeat(req)
        .ok_or_else(|| PdError::invalid("region heartbeat without a region"))
}

#[tonic::async_trait]
impl Pd for PdService {
    async fn get_members(
        &self,
        _request: Request<pdpb::GetMembersRequest>,
    ) -> GrpcResult<pdpb::GetMembersResponse> {
        // GetMembers is how clients learn the cluster id, so it needs none.
        let member = self.handler.state.member.clone();
        let resp = pdpb::GetMembersResponse {
            header: Some(self.handler.header(None)),
            members: vec![member.clone()],
            leader: Some(member.clone()),
            etcd_leader: Some(member),
            tso_allocator_leaders: Default::default(),
        };
        metrics::GRPC_REQUESTS
            .with_label_values(&["GetMembers", "ok"])
            .inc();
        Ok(Response::new(resp))
    }

    type TsoStream = BoxStream<pdpb::TsoResponse>;

    async fn tso(
        &self,
        request: Request<Streaming<pdpb::TsoRequest>>,
    ) -> GrpcResult<Self::TsoStream> {
        let handler = self.handler.clone();
        // Returned at once: the client waits for the response headers before it sends.
        let responses = request.into_inner().map(move |req| {
            let req = req?;
            handler
                .check_cluster(req.header.as_ref())
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
            let ts = handler.state.tso.allocate(req.count).map_err(|e| match e {
                PdError::InvalidValue { .. } => Status::invalid_argument(e.to_string()),
                _ => Status::unavailable(e.to_string()),
            })?;
            metrics::TSO_TIMESTAMPS.inc_by(u64::from(req.count));
            Ok(pdpb::TsoResponse {
                header: Some(handler.header(None)),
                count: req.count,
                timestamp: Some(ts.to_pb()),
            })
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn get_region(
        &self,
        request: Request<pdpb::GetRegionRequest>,
    ) -> GrpcResult<pdpb::GetRegionResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetRegion", req.header.as_ref(), |state| {
                state
                    .cluster
                    .region_by_key(&req.region_key)
                    .map(region_response)
            })
    }

    async fn get_prev_region(
        &self,
        request: Request<pdpb::GetRegionRequest>,
    ) -> GrpcResult<pdpb::GetRegionResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetPrevRegion", req.header.as_ref(), |state| {
                state
                    .cluster
                    .prev_region_by_key(&req.region_key)
                    .map(region_response)
            })
    }

    async fn get_region_by_id(
        &self,
        request: Request<pdpb::GetRegionByIdRequest>,
    ) -> GrpcResult<pdpb::GetRegionResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetRegionByID", req.header.as_ref(), |state| {
                state
                    .cluster
                    .region_by_id(req.region_id)
                    .map(region_response)
            })
    }

    async fn scan_regions(
        &self,
        request: Request<pdpb::ScanRegionsRequest>,
    ) -> GrpcResult<pdpb::ScanRegionsResponse> {
        let req = request.into_inner();
        self.handler
            .respond("ScanRegions", req.header.as_ref(), |state| {
                let limit = usize::try_from(req.limit).unwrap_or(0);
                let infos = state
                    .cluster
                    .scan_regions(&req.start_key, &req.end_key, limit)?;
                let mut resp = pdpb::ScanRegionsResponse::default();
                for info in infos {
                    resp.region_metas.push(info.region.clone());
                    resp.leaders.push(info.leader.unwrap_or_default());
                    resp.regions.push(pdpb::Region {
                        region: Some(info.region),
                        leader: info.leader,
                        down_peers: info.down_peers,
                        pending_peers: info.pending_peers,
                    });
                }
                Ok(resp)
            })
    }

    async fn get_store(
        &self,
        request: Request<pdpb::GetStoreRequest>,
    ) -> GrpcResult<pdpb::GetStoreResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetStore", req.header.as_ref(), |state| {
                let info = state.cluster.get_store(req.store_id)?;
                Ok(pdpb::GetStoreResponse {
                    header: None,
                    store: Some(info.store),
                    stats: info.stats,
                })
            })
    }

    async fn get_all_stores(
        &self,
        request: Request<pdpb::GetAllStoresRequest>,
    ) -> GrpcResult<pdpb::GetAllStoresResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetAllStores", req.header.as_ref(), |state| {
                let stores = state.cluster.stores(req.exclude_tombstone_stores)?;
                Ok(pdpb::GetAllStoresResponse {
                    header: None,
                    stores: stores.into_iter().map(|s| s.store).collect(),
                })
            })
    }

    async fn get_gc_safe_point(
        &self,
        request: Request<pdpb::GetGcSafePointRequest>,
    ) -> GrpcResult<pdpb::GetGcSafePointResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetGCSafePoint", req.header.as_ref(), |state| {
                Ok(pdpb::GetGcSafePointResponse {
                    header: None,
                    safe_point: state.cluster.gc_safe_point()?,
                })
            })
    }

    async fn update_gc_safe_point(
        &self,
        request: Request<pdpb::UpdateGcSafePointRequest>,
    ) -> GrpcResult<pdpb::UpdateGcSafePointResponse> {
        let req = request.into_inner();
        self.handler
            .respond("UpdateGCSafePoint", req.header.as_ref(), |state| {
                Ok(pdpb::UpdateGcSafePointResponse {
                    header: None,
                    new_safe_point: state.cluster.update_gc_safe_point(req.safe_point)?,
                })
            })
    }

    async fn bootstrap(
        &self,
        request: Request<pdpb::BootstrapRequest>,
    ) -> GrpcResult<pdpb::BootstrapResponse> {
        let req = request.into_inner();
        self.handler
            .respond("Bootstrap", req.header.as_ref(), |state| {
                let store = req
                    .store
                    .ok_or_else(|| PdError::invalid("bootstrap needs a store"))?;
                let region = req
                    .region
                    .ok_or_else(|| PdError::invalid("bootstrap needs a region"))?;
                state.cluster.bootstrap(store, region)?;
                Ok(pdpb::BootstrapResponse::default())
            })
    }

    async fn is_bootstrapped(
        &self,
        request: Request<pdpb::IsBootstrappedRequest>,
    ) -> GrpcResult<pdpb::IsBootstrappedResponse> {
        let req = request.into_inner();
        self.handler
            .respond("IsBootstrapped", req.header.as_ref(), |state| {
                Ok(pdpb::IsBootstrappedResponse {
                    header: None,
                    bootstrapped: state.cluster.is_bootstrapped(),
                })
            })
    }

    async fn alloc_id(
        &self,
        request: Request<pdpb::AllocIdRequest>,
    ) -> GrpcResult<pdpb::AllocIdResponse> {
        let req = request.into_inner();
        self.handler
            .respond("AllocID", req.header.as_ref(), |state| {
                Ok(pdpb::AllocIdResponse {
                    header: None,
                    id: state.cluster.alloc_id()?,
                })
            })
    }

    async fn put_store(
        &self,
        request: Request<pdpb::PutStoreRequest>,
    ) -> GrpcResult<pdpb::PutStoreResponse> {
        let req = request.into_inner();
        self.handler
            .respond("PutStore", req.header.as_ref(), |state| {
                let store = req
                    .store
                    .ok_or_else(|| PdError::invalid("put store needs a store"))?;
                state.cluster.put_store(store)?;
                Ok(pdpb::PutStoreResponse::default())
            })
    }

    async fn store_heartbeat(
        &self,
        request: Request<pdpb::StoreHeartbeatRequest>,
    ) -> GrpcResult<pdpb::StoreHeartbeatResponse> {
        let req = request.into_inner();
        self.handler
            .respond("StoreHeartbeat", req.header.as_ref(), |state| {
                let stats = req
                    .stats
                    .ok_or_else(|| PdError::invalid("store heartbeat without stats"))?;
                state.cluster.store_heartbeat(stats)?;
                Ok(pdpb::StoreHeartbeatResponse::default())
            })
    }

    type RegionHeartbeatStream = BoxStream<pdpb::RegionHeartbeatResponse>;

    async fn region_heartbeat(
        &self,
        request: Request<Streaming<pdpb::RegionHeartbeatRequest>>,
    ) -> GrpcResult<Self::RegionHeartbeatStream> {
        let handler = self.handler.clone();
        let mut requests = request.into_inner();
        // Responses to heartbeats and steps PD pushes (see `HeartbeatStreams`) share the stream.
        let (sender, responses) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let streams = &handler.state.heartbeat_streams;
            while let Some(req) = requests.next().await {
                let resp = match req {
                    Err(status) => Some(Err(status)),
                    Ok(req) => {
                        // Only a store of this cluster gets steps pushed on its stream.
                        let cluster_ok = handler.check_cluster(req.header.as_ref()).is_ok();
                        if let Some(leader) = req.leader.as_ref().filter(|_| cluster_ok) {
                            streams.register(leader.store_id, &sender);
                        }
                        handler.on_region_heartbeat(req).map(Ok)
                    }
                };
                if resp.is_some_and(|resp| sender.send(resp).is_err()) {
                    break;
                }
            }
            streams.unregister(&sender);
        });
        let responses = tokio_stream::wrappers::UnboundedReceiverStream::new(responses);
        Ok(Response::new(Box::pin(responses)))
    }

    async fn ask_batch_split(
        &self,
        request: Request<pdpb::AskBatchSplitRequest>,
    ) -> GrpcResult<pdpb::AskBatchSplitResponse> {
        let req = request.into_inner();
        self.handler
            .respond("AskBatchSplit", req.header.as_ref(), |state| {
                let region = req
                    .region
                    .ok_or_else(|| PdError::invalid("ask split needs a region"))?;
                Ok(pdpb::AskBatchSplitResponse {
                    header: None,
                    ids: state.cluster.ask_batch_split(&region, req.split_count)?,
                })
            })
    }

    async fn report_batch_split(
        &self,
        request: Request<pdpb::ReportBatchSplitRequest>,
    ) -> GrpcResult<pdpb::ReportBatchSplitResponse> {
        let req = request.into_inner();
        self.handler
            .respond("ReportBatchSplit", req.header.as_ref(), |state| {
                state.cluster.report_batch_split(&req.regions)?;
                Ok(pdpb::ReportBatchSplitResponse::default())
            })
    }

    async fn get_cluster_config(
        &self,
        request: Request<pdpb::GetClusterConfigRequest>,
    ) -> GrpcResult<pdpb::GetClusterConfigResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetClusterConfig", req.header.as_ref(), |state| {
                Ok(pdpb::GetClusterConfigResponse {
                    header: None,
                    cluster: Some(state.cluster.cluster_meta()?),
                })
            })
    }

    async fn put_cluster_config(
        &self,
        request: Request<pdpb::PutClusterConfigRequest>,
    ) -> GrpcResult<pdpb::PutClusterConfigResponse> {
        let req = request.into_inner();
        self.handler
            .respond("PutClusterConfig", req.header.as_ref(), |state| {
                let meta = req
                    .cluster
                    .ok_or_else(|| PdError::invalid("put cluster config needs a cluster"))?;
                state.cluster.put_cluster_meta(meta)?;
                Ok(pdpb::PutClusterConfigResponse::default())
            })
    }
}

impl Handler {
    /// Applies one region heartbeat; returns the response to stream back, if any: an error, or
    /// an operator step for the region's leader.
    fn on_region_heartbeat(
        &self,
        req: pdpb::RegionHeartbeatRequest,
    ) -> Option<pdpb::RegionHeartbeatResponse> {
        let started = Instant::now();
        let result = self
            .check_cluster(req.header.as_ref())
            .and_then(|()| region_info_from_heartbeat(req))
            .and_then(|info| {
                self.state.cluster.region_heartbeat(info.clone())?;
                Ok(info)
            });
        metrics::GRPC_DURATION
            .with_label_values(&["RegionHeartbeat"])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(info) => {
                metrics::GRPC_REQUESTS
                    .with_label_values(&["RegionHeartbeat", "ok"])
                    .inc();
                let mut resp = self
                    .state
                    .operators
                    .on_region_heartbeat(&self.state.cluster, &info)?;
                resp.set_header(self.header(None));
                Some(resp)
            }
            Err(e) => {
                warn!(error = %e, "region heartbeat refused");
                metrics::GRPC_REQUESTS
                    .with_label_values(&["RegionHeartbeat", e.error_type().as_str_name()])
                    .inc();
                let mut resp = pdpb::RegionHeartbeatResponse::default();
                resp.set_header(self.header(Some(&e)));
                Some(resp)
            }
        }
    }
}

pub struct KeyspaceService {
    handler: Handler,
}

impl KeyspaceService {
    pub fn new(state: Arc<PdState>) -> Self {
        KeyspaceService {
            handler: Handler { state },
        }
    }
}

#[tonic::async_trait]
impl Keyspace for KeyspaceService {
    async fn load_keyspace(
        &self,
        request: Request<keyspacepb::LoadKeyspaceRequest>,
    ) -> GrpcResult<keyspacepb::LoadKeyspaceResponse> {
        let req = request.into_inner();
        self.handler
            .respond("LoadKeyspace", req.header.as_ref(), |state| {
                Ok(keyspacepb::LoadKeyspaceResponse {
                    header: None,
                    keyspace: Some(state.cluster.keyspaces().load(&req.name)?),
                })
            })
    }

    async fn update_keyspace_state(
        &self,
        request: Request<keyspacepb::UpdateKeyspaceStateRequest>,
    ) -> GrpcResult<keyspacepb::UpdateKeyspaceStateResponse> {
        let req = request.into_inner();
        self.handler
            .respond("UpdateKeyspaceState", req.header.as_ref(), |_| {
                Err(PdError::invalid(
                    "changing a keyspace's state is not supported yet; keyspaces stay ENABLED",
                ))
            })
    }

    async fn get_all_keyspaces(
        &self,
        request: Request<keyspacepb::GetAllKeyspacesRequest>,
    ) -> GrpcResult<keyspacepb::GetAllKeyspacesResponse> {
        let req = request.into_inner();
        self.handler
            .respond("GetAllKeyspaces", req.header.as_ref(), |state| {
                Ok(keyspacepb::GetAllKeyspacesResponse {
                    header: None,
                    keyspaces: state
                        .cluster
                        .keyspaces()
                        .list(req.start_id, req.limit as usize),
                })
            })
    }
}
