//! A thread-safe handle on the raft router, for gRPC handlers, the transport and the PD worker.
//! The batch system's `Router` keeps a per-clone cache and is not `Sync`: each thread that
//! sends gets its own clone, made once, so no send takes a lock shared by all threads.

pub mod message;

use std::sync::Arc;

use engine_traits::KvEngine;
use kvproto::raft_serverpb::RaftMessage;
use parking_lot::Mutex;
use raft_log_engine::RaftLogEngine;
use thread_local::ThreadLocal;
use types::RegionId;

use crate::fsm::RaftRouter;
use crate::msg::{PeerMsg, StoreMsg};

/// Delivers messages to peers from any thread.
pub trait RouterHandle: Clone + Send + Sync + 'static {
    type Snap: engine_traits::Snapshot;

    /// Sends `msg` to the region's peer; returns it if there is no such peer.
    fn try_send_peer(
        &self,
        region_id: RegionId,
        msg: PeerMsg<Self::Snap>,
    ) -> Result<(), PeerMsg<Self::Snap>>;

    /// Sends `msg` to the region's peer, dropping it if there is none.
    fn send_peer(&self, region_id: RegionId, msg: PeerMsg<Self::Snap>) {
        let _ = self.try_send_peer(region_id, msg);
    }

    /// Routes a raft message from another store: to the peer, or to the store FSM, which may
    /// create the peer.
    fn send_raft_message(&self, msg: RaftMessage);
}

pub struct SharedRouter<EK: KvEngine, ER: RaftLogEngine> {
    /// Cloned once by each thread that sends, into `per_thread`.
    seed: Arc<Mutex<RaftRouter<EK, ER>>>,
    per_thread: Arc<ThreadLocal<RaftRouter<EK, ER>>>,
}

impl<EK: KvEngine, ER: RaftLogEngine> Clone for SharedRouter<EK, ER> {
    fn clone(&self) -> Self {
        SharedRouter {
            seed: self.seed.clone(),
            per_thread: self.per_thread.clone(),
        }
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> SharedRouter<EK, ER> {
    pub fn new(router: RaftRouter<EK, ER>) -> Self {
        SharedRouter {
            seed: Arc::new(Mutex::new(router)),
            per_thread: Arc::new(ThreadLocal::new()),
        }
    }

    /// This thread's clone of the router.
    fn router(&self) -> &RaftRouter<EK, ER> {
        self.per_thread.get_or(|| self.seed.lock().clone())
    }

    pub fn send_control(&self, msg: StoreMsg) {
        let _ = self.router().force_send_control(msg);
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> RouterHandle for SharedRouter<EK, ER> {
    type Snap = EK::Snapshot;

    fn try_send_peer(
        &self,
        region_id: RegionId,
        msg: PeerMsg<EK::Snapshot>,
    ) -> Result<(), PeerMsg<EK::Snapshot>> {
        self.router()
            .force_send(region_id.get(), msg)
            .map_err(batch_system::SendError::into_inner)
    }

    fn send_raft_message(&self, msg: RaftMessage) {
        let region_id = msg.region_id;
        let router = self.router();
        if let Err(returned) = router.force_send(region_id, PeerMsg::RaftMessage(Box::new(msg))) {
            if let PeerMsg::RaftMessage(msg) = returned.into_inner() {
                let _ = router.force_send_control(StoreMsg::RaftMessage(msg));
            }
        }
    }
}
