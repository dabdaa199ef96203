//! What a store asks of PD, as small capability traits, and the worker that asks.
//!
//! Raftstore never names a PD client: the server implements these traits over gRPC, the
//! in-process test cluster over PD's cluster logic directly. Each trait is one capability:
//! region heartbeats (whose answers carry operators), store heartbeats, the two halves of a
//! split (ids before, the new layout after), and looking a region up.

mod worker;

use std::future::Future;
use std::pin::Pin;

use futures::stream::BoxStream;
use kvproto::{metapb, pdpb};
use tokio::sync::mpsc;

pub use worker::{
    peer_validity, run_pd_worker, PdScheduler, PdTask, PeerValidity, RegionHeartbeat,
};

/// Why a call to PD failed; the worker logs it and retries on the next occasion.
#[derive(Debug, thiserror::Error)]
pub enum PdError {
    /// PD could not be reached, or the stream broke.
    #[error("PD unreachable: {0}")]
    Unreachable(String),
    /// PD answered with an error of its own.
    #[error("PD refused: {0}")]
    Refused(String),
}

pub type PdFuture<T> = Pin<Box<dyn Future<Output = Result<T, PdError>> + Send + 'static>>;

/// PD's answers on a region heartbeat stream.
pub type HeartbeatResponses = BoxStream<'static, Result<pdpb::RegionHeartbeatResponse, PdError>>;

/// Region heartbeats, over one long-lived stream whose answers carry PD's operators.
pub trait RegionHeartbeatApi: Send + Sync + 'static {
    /// A heartbeat request with this client's header filled in.
    fn region_heartbeat_request(&self) -> pdpb::RegionHeartbeatRequest;

    /// Opens the stream: heartbeats go into the sender, answers come out of the stream.
    fn region_heartbeat_stream(
        &self,
    ) -> PdFuture<(
        mpsc::Sender<pdpb::RegionHeartbeatRequest>,
        HeartbeatResponses,
    )>;
}

/// The store's own heartbeat (capacity, region counts).
pub trait StoreHeartbeatApi: Send + Sync + 'static {
    fn store_heartbeat(&self, stats: pdpb::StoreStats) -> PdFuture<()>;
}

/// Splits: ids for the new regions before, the new layout after.
pub trait SplitApi: Send + Sync + 'static {
    fn ask_batch_split(&self, region: metapb::Region, count: u32) -> PdFuture<Vec<pdpb::SplitId>>;
    fn report_batch_split(&self, regions: Vec<metapb::Region>) -> PdFuture<()>;
}

/// A region as PD knows it, by id.
pub trait RegionLookupApi: Send + Sync + 'static {
    /// `None` when PD knows no region with this id.
    fn region_by_id(&self, region_id: u64) -> PdFuture<Option<metapb::Region>>;
}

/// Everything the PD worker needs.
pub trait PdApi: RegionHeartbeatApi + StoreHeartbeatApi + SplitApi + RegionLookupApi {}

impl<T: RegionHeartbeatApi + StoreHeartbeatApi + SplitApi + RegionLookupApi> PdApi for T {}
