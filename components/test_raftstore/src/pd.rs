//! A PD stand-in for the in-process cluster: PD's own cluster logic (region tree, ids, split
//! coordination) on a memory store, reached through raftstore's PD capability traits instead
//! of gRPC. Tests queue operators for a region; the region's next heartbeat carries them back
//! to its leader, as PD's heartbeat stream does.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use kvproto::{metapb, pdpb};
use parking_lot::Mutex;
use pd_server::cluster::{Cluster as PdCluster, RegionInfo, ReplicationConfig};
use raftstore::pd::{
    HeartbeatResponses, PdError, PdFuture, RegionHeartbeatApi, RegionLookupApi, SplitApi,
    StoreHeartbeatApi,
};
use tokio::sync::mpsc;
use tracing::debug;

pub struct TestPd {
    cluster: PdCluster,
    operators: Mutex<HashMap<u64, Vec<pdpb::RegionHeartbeatResponse>>>,
    heartbeats: Mutex<HashMap<u64, u64>>,
    /// Stores' lookups of a region by id (replicas without a leader checking with PD).
    lookups: Mutex<HashMap<u64, u64>>,
}

fn refused(e: pd_server::PdError) -> PdError {
    PdError::Refused(e.to_string())
}

impl TestPd {
    pub fn new(cluster_id: u64) -> Arc<TestPd> {
        let cluster = PdCluster::open(
            Arc::new(pd_server::storage::memory()),
            cluster_id,
            ReplicationConfig::default(),
            pd_server::tso::system_clock(),
        )
        .expect("open an in-memory PD cluster");
        Arc::new(TestPd {
            cluster,
            operators: Mutex::default(),
            heartbeats: Mutex::default(),
            lookups: Mutex::default(),
        })
    }

    /// PD's cluster logic, for the region tree and ids.
    pub fn cluster(&self) -> &PdCluster {
        &self.cluster
    }

    pub fn alloc_id(&self) -> u64 {
        self.cluster.alloc_id().expect("allocate an id")
    }

    /// The region holding `key` and its leader, as PD last heard.
    pub fn region_by_key(&self, key: &[u8]) -> Option<RegionInfo> {
        self.cluster.region_by_key(key).ok()
    }

    pub fn region_by_id(&self, region_id: u64) -> Option<RegionInfo> {
        self.cluster.region_by_id(region_id).ok()
    }

    /// Queues an operator (change peer, transfer leader, split) for the region's leader; it
    /// goes out with the answer to the region's next heartbeat.
    pub fn add_operator(&self, region_id: u64, mut operator: pdpb::RegionHeartbeatResponse) {
        operator.region_id = region_id;
        self.operators
            .lock()
            .entry(region_id)
            .or_default()
            .push(operator);
    }

    /// How many heartbeats of the region PD has had.
    pub fn heartbeats_of(&self, region_id: u64) -> u64 {
        self.heartbeats
            .lock()
            .get(&region_id)
            .copied()
            .unwrap_or_default()
    }

    /// How many times stores have looked the region up by id.
    pub fn lookups_of(&self, region_id: u64) -> u64 {
        self.lookups
            .lock()
            .get(&region_id)
            .copied()
            .unwrap_or_default()
    }

    fn on_region_heartbeat(
        &self,
        req: pdpb::RegionHeartbeatRequest,
    ) -> Vec<pdpb::RegionHeartbeatResponse> {
        let Some(info) = RegionInfo::from_heartbeat(req) else {
            return Vec::new();
        };
        let region_id = info.id();
        *self.heartbeats.lock().entry(region_id).or_default() += 1;
        if let Err(e) = self.cluster.region_heartbeat(info) {
            debug!(region_id, error = %e, "test PD refused a region heartbeat");
        }
        self.operators.lock().remove(&region_id).unwrap_or_default()
    }
}

/// The PD capabilities of one store, bound to the shared [`TestPd`].
#[derive(Clone)]
pub struct StorePd(pub Arc<TestPd>);

impl RegionHeartbeatApi for StorePd {
    fn region_heartbeat_request(&self) -> pdpb::RegionHeartbeatRequest {
        pdpb::RegionHeartbeatRequest::default()
    }

    fn region_heartbeat_stream(
        &self,
    ) -> PdFuture<(
        mpsc::Sender<pdpb::RegionHeartbeatRequest>,
        HeartbeatResponses,
    )> {
        let pd = self.0.clone();
        Box::pin(async move {
            let (sender, mut requests) = mpsc::channel::<pdpb::RegionHeartbeatRequest>(1024);
            let (answer, answers) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(req) = requests.recv().await {
                    for operator in pd.on_region_heartbeat(req) {
                        if answer.send(Ok(operator)).is_err() {
                            return;
                        }
                    }
                }
            });
            let answers = tokio_stream_from(answers);
            Ok((sender, answers))
        })
    }
}

fn tokio_stream_from(
    mut receiver: mpsc::UnboundedReceiver<Result<pdpb::RegionHeartbeatResponse, PdError>>,
) -> HeartbeatResponses {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed()
}

impl StoreHeartbeatApi for StorePd {
    fn store_heartbeat(&self, stats: pdpb::StoreStats) -> PdFuture<()> {
        let result = self.0.cluster.store_heartbeat(stats).map_err(refused);
        Box::pin(async move { result })
    }
}

impl SplitApi for StorePd {
    fn ask_batch_split(&self, region: metapb::Region, count: u32) -> PdFuture<Vec<pdpb::SplitId>> {
        let result = self
            .0
            .cluster
            .ask_batch_split(&region, count)
            .map_err(refused);
        Box::pin(async move { result })
    }

    fn report_batch_split(&self, regions: Vec<metapb::Region>) -> PdFuture<()> {
        let result = self.0.cluster.report_batch_split(&regions).map_err(refused);
        Box::pin(async move { result })
    }
}

impl RegionLookupApi for StorePd {
    fn region_by_id(&self, region_id: u64) -> PdFuture<Option<metapb::Region>> {
        *self.0.lookups.lock().entry(region_id).or_default() += 1;
        let region = self.0.region_by_id(region_id).map(|info| info.region);
        Box::pin(async move { Ok(region) })
    }
}
