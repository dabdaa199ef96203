//! The store-to-store `RaftTransport` service: receives raft messages (batched) and snapshots
//! (in chunks) and routes them to the peers.

use futures::StreamExt;
use kvproto::raft_serverpb::{
    raft_transport_server::RaftTransport, Done, RaftMessage, RaftMessageBatch, SnapshotChunk,
};
use raftstore::RouterHandle;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

pub struct RaftService<R: RouterHandle> {
    router: R,
    cluster_id: u64,
}

impl<R: RouterHandle> RaftService<R> {
    pub fn new(router: R, cluster_id: u64) -> Self {
        RaftService { router, cluster_id }
    }

    fn check_cluster(&self, cluster_id: u64) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            warn!(
                expected = self.cluster_id,
                got = cluster_id,
                "raft message from another cluster refused"
            );
            return Err(Status::failed_precondition(format!(
                "cluster id mismatch: this store belongs to cluster {}, the sender to cluster {cluster_id}",
                self.cluster_id
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl<R: RouterHandle> RaftTransport for RaftService<R> {
    async fn raft(
        &self,
        _request: Request<Streaming<RaftMessage>>,
    ) -> Result<Response<Done>, Status> {
        Err(Status::unimplemented(
            "use BatchRaft, which carries the cluster id",
        ))
    }

    async fn batch_raft(
        &self,
        request: Request<Streaming<RaftMessageBatch>>,
    ) -> Result<Response<Done>, Status> {
        let mut stream = request.into_inner();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            self.check_cluster(batch.cluster_id)?;
            crate::metrics::RAFT_MESSAGES_RECEIVED.inc_by(batch.msgs.len() as u64);
            for msg in batch.msgs {
                self.router.send_raft_message(msg);
            }
        }
        Ok(Response::new(Done {}))
    }

    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<Done>, Status> {
        let mut stream = request.into_inner();
        let mut message: Option<RaftMessage> = None;
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if let Some(first) = chunk.message {
                self.check_cluster(chunk.cluster_id)?;
                message = Some(first);
            }
            data.extend_from_slice(&chunk.data);
        }
        let mut message =
            message.ok_or_else(|| Status::invalid_argument("snapshot stream without a message"))?;
        info!(
            region_id = message.region_id,
            bytes = data.len(),
            "snapshot received"
        );
        message.message = data.into();
        crate::metrics::RAFT_MESSAGES_RECEIVED.inc();
        self.router.send_raft_message(message);
        Ok(Response::new(Done {}))
    }
}
