//! What a peer tells PD (region heartbeats with down and pending peers) and PD's operators.

use std::time::{Duration, Instant};

use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::pdpb;
use kvproto::raft_cmdpb::{
    AdminCmdType, AdminRequest, ChangePeerRequest, ChangePeerType, RaftCmdRequest,
    RaftRequestHeader, TransferLeaderRequest,
};
use raft_log_engine::RaftLogEngine;
use tracing::info;

use types::PeerId;

use crate::fsm::peer::PeerFsmDelegate;
use crate::msg::{Callback, PeerMsg};
use crate::pd::{PdTask, RegionHeartbeat};
use crate::peer::Peer;

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Peers of the region not heard from for `threshold` (leader only), with seconds down.
    pub fn down_peers(&self, threshold: Duration) -> Vec<(metapb::Peer, u64)> {
        self.silent_peers(threshold).collect()
    }

    /// Whether any peer is down, as [`Peer::down_peers`] tells, without collecting them (asked
    /// at every tick of every awake leader).
    pub fn has_down_peer(&self, threshold: Duration) -> bool {
        self.silent_peers(threshold).next().is_some()
    }

    fn silent_peers(&self, threshold: Duration) -> impl Iterator<Item = (metapb::Peer, u64)> + '_ {
        let now = Instant::now();
        self.region
            .peers
            .iter()
            .filter(|p| p.id != self.peer.id)
            .filter_map(move |p| {
                let last = self.peer_heartbeats.get(&PeerId(p.id))?;
                let silent = now.saturating_duration_since(*last);
                (silent >= threshold).then_some((*p, silent.as_secs()))
            })
    }

    /// Peers whose log lags behind the leader's compaction point (they need a snapshot).
    pub fn pending_peers(&self) -> Vec<metapb::Peer> {
        let truncated = self.raft_group.store().raft_log.truncated().0;
        let mut pending = Vec::new();
        for (id, progress) in self.raft_group.raft.prs().iter() {
            if *id != self.peer.id && progress.matched < truncated {
                if let Some(peer) = self.peer_cache.get(&PeerId(*id)) {
                    pending.push(*peer);
                }
            }
        }
        pending
    }

    /// Whether one other peer lags behind the compaction point, without building the list
    /// (checked for each append answer a leader gets).
    pub(crate) fn is_pending(&self, peer_id: PeerId) -> bool {
        let truncated = self.raft_group.store().raft_log.truncated().0;
        peer_id != self.peer_id()
            && self.peer_cache.contains_key(&peer_id)
            && self
                .raft_group
                .raft
                .prs()
                .get(peer_id.get())
                .is_some_and(|progress| progress.matched < truncated)
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'_, EK, ER> {
    pub(crate) fn heartbeat_pd(&mut self) {
        let peer = &mut self.fsm.peer;
        let Some(region) = peer.region_for_pd() else {
            return;
        };
        // Estimated again only when something changed, on the split checker's thread: an idle
        // region's heartbeat costs no engine call, and a raft thread never makes one for it.
        // The heartbeat goes now with the last estimate; a new leader's first estimate, and the
        // first after a split, is sent on as soon as it is known.
        if peer.approximate_stale || peer.written_bytes > 0 || peer.written_keys > 0 {
            let region_id = region.id;
            let region_epoch = region.region_epoch.unwrap_or_default();
            let router = self.ctx.router.clone();
            self.ctx
                .split_checker
                .estimate(self.ctx.kv.clone(), region.clone(), move |stats| {
                    let msg = PeerMsg::RegionStats {
                        region_epoch,
                        stats,
                    };
                    let _ = router.force_send(region_id, msg);
                });
        }
        let down_threshold = self.ctx.cfg.max_peer_down_duration.0;
        self.ctx
            .pd_scheduler
            .schedule(PdTask::RegionHeartbeat(Box::new(RegionHeartbeat {
                region,
                leader: peer.peer,
                down_peers: peer
                    .down_peers(down_threshold)
                    .into_iter()
                    .map(|(p, secs)| pdpb::PeerStats {
                        peer: Some(p),
                        down_seconds: secs,
                    })
                    .collect(),
                pending_peers: peer.pending_peers(),
                approximate_size: peer.approximate_size,
                approximate_keys: peer.approximate_keys,
                term: peer.term(),
                written_bytes: std::mem::take(&mut peer.written_bytes),
                written_keys: std::mem::take(&mut peer.written_keys),
            })));
    }

    /// The split checker's estimate of the region, for its heartbeats. One made for an older
    /// version of the region measured a range the region no longer has, and is dropped. A
    /// leader whose last heartbeat went without a current estimate (a new leader, a new or
    /// split region) sends one with it at once.
    pub(crate) fn on_region_stats(
        &mut self,
        region_epoch: metapb::RegionEpoch,
        stats: crate::split_check::RegionStats,
    ) {
        let peer = &mut self.fsm.peer;
        if peer.region.region_epoch.unwrap_or_default().version != region_epoch.version {
            return;
        }
        let first = peer.approximate_stale;
        peer.approximate_size = stats.size;
        peer.approximate_keys = stats.keys;
        peer.approximate_stale = false;
        if first && peer.is_leader() {
            self.heartbeat_pd();
        }
    }

    pub(crate) fn admin_request(&self, admin: AdminRequest) -> RaftCmdRequest {
        let peer = &self.fsm.peer;
        RaftCmdRequest {
            header: Some(RaftRequestHeader {
                region_id: peer.region_id.get(),
                peer: Some(peer.peer),
                region_epoch: peer.region.region_epoch,
                term: peer.term(),
            }),
            requests: Vec::new(),
            admin_request: Some(admin),
        }
    }

    pub(crate) fn on_pd_operator(&mut self, resp: pdpb::RegionHeartbeatResponse) {
        if !self.fsm.peer.is_leader() {
            return;
        }
        let current = self.fsm.peer.region.region_epoch.unwrap_or_default();
        if let Some(epoch) = resp.region_epoch {
            if epoch.version != current.version || epoch.conf_ver != current.conf_ver {
                info!(
                    region_id = self.fsm.region_id(),
                    "operator for an older epoch ignored"
                );
                return;
            }
        }
        if let Some(change) = resp.change_peer.as_ref().filter(|c| c.peer.is_some()) {
            let change_type = match pdpb::ConfChangeType::try_from(change.change_type) {
                Ok(pdpb::ConfChangeType::RemoveNode) => ChangePeerType::RemoveNode,
                Ok(pdpb::ConfChangeType::AddLearnerNode) => ChangePeerType::AddLearnerNode,
                _ => ChangePeerType::AddNode,
            };
            let request = self.admin_request(AdminRequest {
                cmd_type: AdminCmdType::ChangePeer as i32,
                change_peer: Some(ChangePeerRequest {
                    change_type: change_type as i32,
                    peer: change.peer,
                }),
                ..Default::default()
            });
            self.propose_internal(request);
        } else if let Some(transfer) = resp.transfer_leader.as_ref() {
            let request = self.admin_request(AdminRequest {
                cmd_type: AdminCmdType::TransferLeader as i32,
                transfer_leader: Some(TransferLeaderRequest {
                    peer: transfer.peer,
                }),
                ..Default::default()
            });
            self.propose_internal(request);
        } else if let Some(split) = resp.split_region.as_ref() {
            if split.keys.is_empty() {
                return;
            }
            let region = (*self.fsm.peer.region).clone();
            self.ctx.pd_scheduler.schedule(PdTask::AskBatchSplit {
                region,
                split_keys: split.keys.clone(),
                callback: None,
            });
        }
    }

    pub(crate) fn propose_internal(&mut self, request: RaftCmdRequest) {
        let region_id = self.fsm.region_id();
        let callback = Callback::Write(Box::new(
            move |result: crate::msg::WriteResult| match result
                .map(|resp| resp.header.and_then(|h| h.error))
            {
                Ok(None) => {}
                Ok(Some(error)) => {
                    info!(region_id, error = %error.message, "admin command failed");
                }
                Err(undetermined) => info!(region_id, %undetermined, "admin command"),
            },
        ));
        self.fsm.peer.propose(self.ctx, request, callback);
    }
}
