//! Conf changes: adding voters and learners, promoting learners, removing peers.

use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::raft_cmdpb::{
    AdminCmdType, AdminResponse, ChangePeerResponse, ChangePeerType, RaftCmdRequest,
    RaftCmdResponse,
};
use kvproto::raft_serverpb::PeerState;
use prost::Message as _;
use raft::eraftpb::{self, ConfChange, ConfChangeType};
use raft_log_engine::RaftLogEngine;
use tracing::{info, warn};

use types::{PeerId, StoreId};

use crate::errors::{Error, Result};
use crate::fsm::apply::{put_region_state, ApplyContext};
use crate::fsm::peer::PeerFsmDelegate;
use crate::fsm::ApplyFsm;
use crate::msg::{error_response, Callback, ExecResult};
use crate::peer::{ok_response, Peer};
use crate::util;

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Proposes a conf change (a `ChangePeer` admin command) as a raft conf change entry.
    pub(crate) fn propose_conf_change(
        &mut self,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        if let Err(e) = self.check_change_peer(&request) {
            return Err((e, callback));
        }
        let change = request
            .admin_request
            .as_ref()
            .and_then(|a| a.change_peer.as_ref())
            .expect("checked");
        let peer = change.peer.expect("checked");
        let mut cc = ConfChange::default();
        cc.set_change_type(match change.change_type() {
            ChangePeerType::AddNode => ConfChangeType::AddNode,
            ChangePeerType::RemoveNode => ConfChangeType::RemoveNode,
            ChangePeerType::AddLearnerNode => ConfChangeType::AddLearnerNode,
        });
        cc.node_id = peer.id;
        let data = request.encode_to_vec();
        cc.context = data.clone().into();
        info!(region_id = self.region_id.get(), change = ?change.change_type(), peer_id = peer.id, store_id = peer.store_id, "proposing conf change");
        crate::metrics::PROPOSALS
            .with_label_values(&["conf_change"])
            .inc();
        let last_before = self.raft_group.raft.raft_log.last_index();
        if let Err(e) = self.raft_group.propose_conf_change(data, cc) {
            return Err((self.proposal_dropped(e), callback));
        }
        self.push_proposal(last_before, callback)
    }

    pub(crate) fn check_change_peer(&self, request: &RaftCmdRequest) -> Result<()> {
        let change = request
            .admin_request
            .as_ref()
            .and_then(|a| a.change_peer.as_ref())
            .ok_or_else(|| Error::InvalidRequest("change peer request without change".into()))?;
        let peer = change
            .peer
            .ok_or_else(|| Error::InvalidRequest("change peer request without peer".into()))?;
        if self.raft_group.raft.has_pending_conf() {
            return Err(Error::PendingConfChange {
                region_id: self.region_id,
            });
        }
        let existing = util::find_peer(&self.region, StoreId(peer.store_id));
        match change.change_type() {
            // Adding a voter where the store has this very peer as a learner promotes it.
            ChangePeerType::AddNode
                if existing.is_some_and(|p| {
                    p.id == peer.id && p.role == metapb::PeerRole::Learner as i32
                }) => {}
            ChangePeerType::AddNode | ChangePeerType::AddLearnerNode => {
                if existing.is_some() {
                    return Err(Error::InvalidConfChange(format!(
                        "{} already has a peer on store {}",
                        self.region_id, peer.store_id
                    )));
                }
            }
            ChangePeerType::RemoveNode => {
                if util::find_peer_by_id(&self.region, PeerId(peer.id)).is_none() {
                    return Err(Error::InvalidConfChange(format!(
                        "peer {} is not in {}",
                        peer.id, self.region_id
                    )));
                }
                if peer.id == self.peer.id {
                    return Err(Error::InvalidConfChange(
                        "cannot remove the leader; transfer leadership first".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'_, EK, ER> {
    pub(crate) fn on_change_peer(
        &mut self,
        conf_change: eraftpb::ConfChange,
        region: metapb::Region,
    ) {
        // A crash here leaves the conf change in the data engine (the apply batch wrote the
        // region state) and not in raft's in-memory configuration; at restart raft's
        // configuration is built from the region state, so both agree again.
        fail::fail_point!("on_change_peer_before_raft", |_| ());
        let peer = &mut self.fsm.peer;
        if let Err(e) = peer.raft_group.apply_conf_change(&conf_change) {
            warn!(region_id = peer.region_id.get(), error = %e, "raft refused an applied conf change");
        }
        let removed_self = conf_change.get_change_type() == ConfChangeType::RemoveNode
            && conf_change.node_id == peer.peer.id;
        peer.set_region(region.clone());
        self.ctx.store_meta.lock().set_region(&region);
        if removed_self {
            info!(
                region_id = region.id,
                "this peer was removed from the region; destroying it"
            );
            self.destroy(true);
            return;
        }
        peer.update_read_delegate(self.ctx);
        if peer.is_leader() {
            self.heartbeat_pd();
        }
    }
}

pub(crate) fn exec_change_peer<EK: KvEngine>(
    fsm: &mut ApplyFsm<EK>,
    request: &RaftCmdRequest,
    conf_change: ConfChange,
    term: u64,
    ctx: &mut ApplyContext<EK>,
) -> RaftCmdResponse {
    let Some(change) = request
        .admin_request
        .as_ref()
        .and_then(|a| a.change_peer.as_ref())
    else {
        return error_response(
            Error::InvalidRequest("conf change without change peer".into()),
            term,
        );
    };
    let Some(peer) = change.peer else {
        return error_response(
            Error::InvalidRequest("conf change without peer".into()),
            term,
        );
    };
    // Raft applies the change regardless (its own checks make adding an existing node or
    // removing an absent one a no-op); the region follows the same rule so both agree.
    let mut region = fsm.region.clone();
    match change.change_type() {
        ChangePeerType::AddNode => match region.peers.iter_mut().find(|p| p.id == peer.id) {
            // A learner promoted to voter.
            Some(existing) => existing.role = metapb::PeerRole::Voter as i32,
            None => region.peers.push(metapb::Peer {
                role: metapb::PeerRole::Voter as i32,
                ..peer
            }),
        },
        ChangePeerType::AddLearnerNode => {
            if util::find_peer_by_id(&region, PeerId(peer.id)).is_none() {
                region.peers.push(metapb::Peer {
                    role: metapb::PeerRole::Learner as i32,
                    ..peer
                });
            }
        }
        ChangePeerType::RemoveNode => region.peers.retain(|p| p.id != peer.id),
    }
    let conf_ver = {
        let epoch = region.region_epoch.get_or_insert_with(Default::default);
        epoch.conf_ver += 1;
        epoch.conf_ver
    };
    let state =
        if peer.id == fsm.peer_id.get() && change.change_type() == ChangePeerType::RemoveNode {
            PeerState::Tombstone
        } else {
            PeerState::Normal
        };
    if let Err(e) = put_region_state(&mut ctx.batch, &region, state) {
        return error_response(e, term);
    }
    info!(region_id = region.id, change = ?change.change_type(), peer_id = peer.id, store_id = peer.store_id, conf_ver, "conf change applied");
    fsm.removed = state == PeerState::Tombstone;
    fsm.region = region.clone();
    ctx.results.push(ExecResult::ChangePeer {
        conf_change,
        region: region.clone(),
    });
    let mut response = ok_response(term);
    response.admin_response = Some(AdminResponse {
        cmd_type: AdminCmdType::ChangePeer as i32,
        change_peer: Some(ChangePeerResponse {
            region: Some(region),
        }),
        ..Default::default()
    });
    response
}
