//! Raftstore's PD capabilities ([`raftstore::PdApi`]) over the gRPC PD client.

use std::sync::Arc;

use futures::StreamExt;
use kvproto::{metapb, pdpb};
use pd_client::PdClient;
use raftstore::pd::{
    HeartbeatResponses, PdError, PdFuture, RegionHeartbeatApi, RegionLookupApi, SplitApi,
    StoreHeartbeatApi,
};
use tokio::sync::mpsc;

/// The gRPC PD client as raftstore sees it.
#[derive(Clone)]
pub struct GrpcPd(pub Arc<PdClient>);

fn pd_error(e: pd_client::Error) -> PdError {
    match e {
        pd_client::Error::Pd { .. } => PdError::Refused(e.to_string()),
        _ => PdError::Unreachable(e.to_string()),
    }
}

impl RegionHeartbeatApi for GrpcPd {
    fn region_heartbeat_request(&self) -> pdpb::RegionHeartbeatRequest {
        self.0.region_heartbeat_request()
    }

    fn region_heartbeat_stream(
        &self,
    ) -> PdFuture<(
        mpsc::Sender<pdpb::RegionHeartbeatRequest>,
        HeartbeatResponses,
    )> {
        let pd = self.0.clone();
        Box::pin(async move {
            let (sender, responses) = pd.region_heartbeat_stream().await.map_err(pd_error)?;
            let responses = responses
                .map(|r| r.map_err(|status| PdError::Unreachable(status.to_string())))
                .boxed();
            Ok((sender, responses))
        })
    }
}

impl StoreHeartbeatApi for GrpcPd {
    fn store_heartbeat(&self, stats: pdpb::StoreStats) -> PdFuture<()> {
        let pd = self.0.clone();
        Box::pin(async move {
            pd.store_heartbeat(stats).await.map_err(pd_error)?;
            Ok(())
        })
    }
}

impl SplitApi for GrpcPd {
    fn ask_batch_split(&self, region: metapb::Region, count: u32) -> PdFuture<Vec<pdpb::SplitId>> {
        let pd = self.0.clone();
        Box::pin(async move { pd.ask_batch_split(region, count).await.map_err(pd_error) })
    }

    fn report_batch_split(&self, regions: Vec<metapb::Region>) -> PdFuture<()> {
        let pd = self.0.clone();
        Box::pin(async move { pd.report_batch_split(regions).await.map_err(pd_error) })
    }
}

impl RegionLookupApi for GrpcPd {
    fn region_by_id(&self, region_id: u64) -> PdFuture<Option<metapb::Region>> {
        let pd = self.0.clone();
        Box::pin(async move {
            match pd.get_region_by_id(region_id).await {
                Ok((region, _leader)) => Ok(Some(region)),
                // PD answers an unknown id without a region (this PD: with REGION_NOT_FOUND).
                Err(pd_client::Error::Incomplete { .. }) => Ok(None),
                Err(e) if e.pd_error_type() == Some(pdpb::ErrorType::RegionNotFound) => Ok(None),
                Err(e) => Err(pd_error(e)),
            }
        })
    }
}
