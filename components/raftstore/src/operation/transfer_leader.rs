//! Leadership transfer.

use engine_traits::KvEngine;
use kvproto::metapb;
use raft_log_engine::RaftLogEngine;
use tracing::info;

use crate::fsm::PollContext;
use crate::peer::Peer;

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Starts handing leadership to `target`. The target may lead as soon as it hears from us,
    /// without waiting out our lease: reads stop being served from the lease now (a local read
    /// would miss its writes), and none is renewed while the transfer is in flight.
    pub(crate) fn propose_transfer_leader(
        &mut self,
        ctx: &PollContext<EK, ER>,
        target: Option<metapb::Peer>,
    ) {
        let Some(peer) = target.filter(|p| p.id != self.peer.id) else {
            return;
        };
        info!(
            region_id = self.region_id.get(),
            to_peer = peer.id,
            "transferring leadership"
        );
        self.raft_group.transfer_leader(peer.id);
        self.lease_expire = None;
        self.update_read_delegate(ctx);
    }
}
