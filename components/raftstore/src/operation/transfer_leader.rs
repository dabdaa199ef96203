//! Leadership transfer.

use std::time::Instant;

use engine_traits::KvEngine;
use kvproto::metapb;
use raft::ProgressState;
use raft_log_engine::RaftLogEngine;
use tracing::info;
use types::PeerId;

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
        self.pending_transfer = None;
        if let Err(refusal) = self.ready_to_lead(ctx, PeerId(peer.id)) {
            info!(
                region_id = self.region_id.get(),
                to_peer = peer.id,
                reason = refusal.reason(),
                "leadership transfer refused"
            );
            if refusal == Refusal::Silent {
                // Likely a region that slept until this request woke it: its followers are
                // answering the wake-up ping now.
                self.pending_transfer = Some((peer, Instant::now()));
            }
            return;
        }
        info!(
            region_id = self.region_id.get(),
            to_peer = peer.id,
            "transferring leadership"
        );
        self.raft_group.transfer_leader(peer.id);
        self.lease_expire = None;
        self.update_read_delegate(ctx);
    }

    /// Whether `target` can take the leadership now (TiKV's `ready_to_transfer_leader`): it is
    /// a voter that answers and holds the log but for a few entries. While a transfer runs,
    /// raft refuses proposals, until the target takes over or an election timeout passes: a
    /// transfer to a dead or lagging replica would stop the region's writes that long.
    fn ready_to_lead(&self, ctx: &PollContext<EK, ER>, target: PeerId) -> Result<(), Refusal> {
        let raft = &self.raft_group.raft;
        let Some(progress) = raft.prs().get(target.get()) else {
            return Err(Refusal::NotAPeer);
        };
        if raft.prs().conf().learners().contains(&target.get()) {
            return Err(Refusal::Learner);
        }
        // Followers answer every heartbeat: one silent for two heartbeats may be gone.
        let heard = self.peer_heartbeats.get(&target).copied();
        if heard.is_none_or(|at| at.elapsed() > ctx.cfg.raft_heartbeat_interval() * 2) {
            return Err(Refusal::Silent);
        }
        if progress.state != ProgressState::Replicate
            || progress.matched + ctx.cfg.leader_transfer_max_log_lag < raft.raft_log.last_index()
        {
            return Err(Refusal::Lagging);
        }
        Ok(())
    }

    /// The transfer refused because `from` was silent, if `from` has now answered within an
    /// election timeout of the request: it is due again.
    pub(crate) fn take_due_transfer(
        &mut self,
        ctx: &PollContext<EK, ER>,
        from: PeerId,
    ) -> Option<metapb::Peer> {
        let (peer, asked) = self.pending_transfer?;
        if asked.elapsed() > ctx.cfg.election_timeout() {
            self.pending_transfer = None;
            return None;
        }
        (peer.id == from.get() && self.is_leader()).then(|| {
            self.pending_transfer = None;
            peer
        })
    }
}

/// Why a leadership transfer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    NotAPeer,
    Learner,
    Silent,
    Lagging,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::NotAPeer => "the target is not a peer of the region",
            Refusal::Learner => "a learner cannot lead",
            Refusal::Silent => "the target has not been heard from lately",
            Refusal::Lagging => "the target lags behind the log",
        }
    }
}
