//! Splits: size checks, asking PD for ids, proposing the split, and following it up.

use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::pdpb;
use kvproto::raft_cmdpb::{
    AdminCmdType, AdminRequest, BatchSplitRequest, RaftCmdRequest, SplitRequest,
};
use kvproto::raft_serverpb::PeerState;
use raft_log_engine::RaftLogEngine;
use tracing::{info, warn};
use types::RegionId;

use crate::errors::{Error, Result};
use crate::fsm::apply::{put_region_state, ApplyContext};
use crate::fsm::peer::PeerFsmDelegate;
use crate::fsm::ApplyFsm;
use crate::msg::{Callback, ExecResult, PeerMsg, StoreMsg};
use crate::pd::PdTask;
use crate::peer_storage::{load_region_state, write_initial_apply_state, write_initial_raft_state};

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'_, EK, ER> {
    /// Hands the region to the split checker once enough was written to it since the last
    /// check and it may be over its limits; only the leader checks.
    pub(crate) fn maybe_check_split(&mut self) {
        let peer = &mut self.fsm.peer;
        let written = (peer.size_diff_hint, peer.keys_diff_hint);
        if !peer.is_leader()
            || written.0 < self.ctx.cfg.region_split_check_diff.0
            || !self
                .ctx
                .split_checker
                .config()
                .may_exceed(peer.last_checked, written)
        {
            return;
        }
        peer.size_diff_hint = 0;
        peer.keys_diff_hint = 0;
        let region = (*peer.region).clone();
        let region_id = region.id;
        let region_epoch = region.region_epoch.unwrap_or_default();
        let router = self.ctx.router.clone();
        self.ctx
            .split_checker
            .schedule(self.ctx.kv.clone(), region, move |result| {
                let msg = PeerMsg::SplitCheckResult {
                    region_epoch,
                    result,
                };
                let _ = router.force_send(region_id, msg);
            });
    }

    pub(crate) fn on_split_check_result(
        &mut self,
        region_epoch: metapb::RegionEpoch,
        result: crate::split_check::CheckResult,
    ) {
        let peer = &mut self.fsm.peer;
        let current = peer.region.region_epoch.unwrap_or_default();
        if !peer.is_leader() || current.version != region_epoch.version {
            // Split or moved meanwhile; the next check sees the new region.
            return;
        }
        peer.last_checked = Some((result.size, result.keys));
        if result.split_keys.is_empty() {
            return;
        }
        self.ctx.pd_scheduler.schedule(PdTask::AskBatchSplit {
            region: (*peer.region).clone(),
            split_keys: result.split_keys,
            callback: None,
        });
    }

    /// A client's SplitRegion: only the leader of the epoch the client saw splits, at keys
    /// strictly inside the region, in order; PD allocates the ids as for any other split.
    pub(crate) fn on_split_region(
        &mut self,
        epoch: metapb::RegionEpoch,
        mut split_keys: Vec<Vec<u8>>,
        callback: crate::msg::WriteCallback,
    ) {
        let peer = &self.fsm.peer;
        let term = peer.term();
        let fail = |callback: crate::msg::WriteCallback, error: Error| {
            callback(Ok(crate::msg::error_response(error, term)));
        };
        if !peer.is_leader() {
            let leader = peer.leader();
            return fail(
                callback,
                Error::NotLeader {
                    region_id: peer.region_id,
                    leader,
                },
            );
        }
        let region = &peer.region;
        let current = region.region_epoch.unwrap_or_default();
        if current.version != epoch.version || current.conf_ver != epoch.conf_ver {
            return fail(
                callback,
                Error::EpochNotMatch {
                    message: format!("region {} has changed since the split was asked", region.id),
                    current_regions: vec![(**region).clone()],
                },
            );
        }
        split_keys.sort();
        split_keys.dedup();
        for key in &split_keys {
            if key.is_empty()
                || key.as_slice() <= region.start_key.as_slice()
                || !keys::in_range(key, &region.start_key, &region.end_key)
            {
                return fail(
                    callback,
                    Error::KeyNotInRegion {
                        key: key.clone(),
                        region: Box::new((**region).clone()),
                    },
                );
            }
        }
        if split_keys.is_empty() {
            return fail(
                callback,
                Error::InvalidRequest("no split keys given".into()),
            );
        }
        self.ctx.pd_scheduler.schedule(PdTask::AskBatchSplit {
            region: (**region).clone(),
            split_keys,
            callback: Some(callback),
        });
    }

    pub(crate) fn on_split_ids(
        &mut self,
        epoch: metapb::RegionEpoch,
        split_keys: Vec<Vec<u8>>,
        ids: Vec<pdpb::SplitId>,
        callback: Option<crate::msg::WriteCallback>,
    ) {
        if ids.len() != split_keys.len() {
            warn!(
                region_id = self.fsm.region_id(),
                "PD returned a wrong number of split ids"
            );
            if let Some(callback) = callback {
                let error = Error::Pd("PD returned a wrong number of split ids".into());
                callback(Ok(crate::msg::error_response(error, self.fsm.peer.term())));
            }
            return;
        }
        let requests = split_keys
            .into_iter()
            .zip(ids)
            .map(|(split_key, id)| SplitRequest {
                split_key,
                new_region_id: id.new_region_id,
                new_peer_ids: id.new_peer_ids,
            })
            .collect();
        let mut request = self.admin_request(AdminRequest {
            cmd_type: AdminCmdType::BatchSplit as i32,
            splits: Some(BatchSplitRequest { requests }),
            ..Default::default()
        });
        if let Some(header) = request.header.as_mut() {
            header.region_epoch = Some(epoch);
        }
        match callback {
            Some(callback) => {
                let callback = Callback::Write(callback);
                self.fsm.peer.propose(self.ctx, request, callback);
            }
            None => self.propose_internal(request),
        }
    }

    pub(crate) fn on_split(&mut self, regions: Vec<metapb::Region>) {
        let region_id = self.fsm.region_id();
        let is_leader = self.fsm.peer.is_leader();
        let mut new_regions = Vec::new();
        // One check proposes at most ten keys: measure the derived region again.
        self.fsm.peer.size_diff_hint = self.ctx.cfg.region_split_check_diff.0;
        self.fsm.peer.last_checked = None;
        {
            // One lock: whoever sees the narrowed parent also sees the regions it gave away.
            let mut meta = self.ctx.store_meta.lock();
            for region in &regions {
                if region.id == region_id {
                    self.fsm.peer.set_region(region.clone());
                    meta.set_region(region);
                } else {
                    meta.splitting.insert(RegionId(region.id));
                    new_regions.push(region.clone());
                }
            }
        }
        self.fsm.peer.update_read_delegate(self.ctx);
        // Holds this store between the split and the creation of the new peers.
        fail::fail_point!(&format!(
            "split_before_create_peers_{}",
            self.ctx.store_id.get()
        ));
        // The new regions' peers must exist before their first raft message is routed.
        let _ = self.ctx.router.force_send_control(StoreMsg::SplitRegions {
            regions: new_regions,
            campaign: is_leader,
        });
        if is_leader {
            self.ctx
                .pd_scheduler
                .schedule(PdTask::ReportBatchSplit { regions });
            self.heartbeat_pd();
        }
    }
}

/// Prepares the raft log of a region created by a split before its peer is built.
///
/// # Errors
///
/// Raft log errors.
pub fn init_split_region<ER: RaftLogEngine>(raft: &ER, region: &metapb::Region) -> Result<()> {
    write_initial_raft_state(raft, region)
}

/// Split keys must be inside the region and ascending, with a new peer id per peer.
fn check_split_requests(region: &metapb::Region, requests: &[SplitRequest]) -> Result<()> {
    let mut previous = &region.start_key;
    for split in requests {
        if split.split_key <= *previous
            || (!region.end_key.is_empty() && split.split_key >= region.end_key)
        {
            return Err(Error::InvalidRequest(format!(
                "split key {:?} is not inside region {} or not ascending",
                split.split_key, region.id
            )));
        }
        if split.new_peer_ids.len() != region.peers.len() {
            return Err(Error::InvalidRequest(format!(
                "split of region {} needs {} peer ids, got {}",
                region.id,
                region.peers.len(),
                split.new_peer_ids.len()
            )));
        }
        previous = &split.split_key;
    }
    Ok(())
}

pub(crate) fn exec_batch_split<EK: KvEngine>(
    fsm: &mut ApplyFsm<EK>,
    request: &RaftCmdRequest,
    ctx: &mut ApplyContext<EK>,
    kv: &EK,
) -> Result<Vec<metapb::Region>> {
    // Holds one replica's apply (the fail point names its peer) before it splits.
    fail::fail_point!(&format!("apply_before_split_{}", fsm.peer_id.get()));
    let splits = request
        .admin_request
        .as_ref()
        .and_then(|a| a.splits.as_ref())
        .ok_or_else(|| Error::InvalidRequest("batch split without splits".into()))?;
    if splits.requests.is_empty() {
        return Err(Error::InvalidRequest(
            "batch split without split keys".into(),
        ));
    }
    check_split_requests(&fsm.region, &splits.requests)?;
    let mut derived = fsm.region.clone();
    let epoch = derived.region_epoch.get_or_insert_with(Default::default);
    epoch.version += splits.requests.len() as u64;
    let new_epoch = *epoch;
    let original_end =
        std::mem::replace(&mut derived.end_key, splits.requests[0].split_key.clone());
    let mut regions = vec![derived.clone()];
    for (i, split) in splits.requests.iter().enumerate() {
        let end = splits
            .requests
            .get(i + 1)
            .map_or_else(|| original_end.clone(), |next| next.split_key.clone());
        let peers = derived
            .peers
            .iter()
            .zip(&split.new_peer_ids)
            .map(|(old, id)| metapb::Peer { id: *id, ..*old })
            .collect();
        regions.push(metapb::Region {
            id: split.new_region_id,
            start_key: split.split_key.clone(),
            end_key: end,
            region_epoch: Some(new_epoch),
            peers,
            ..Default::default()
        });
    }
    put_region_state(&mut ctx.batch, &derived, PeerState::Normal)?;
    for region in &regions[1..] {
        // A peer of the new region may already exist here (created by a raft message, maybe
        // even given a snapshot); its state is newer than the split's and is kept.
        let exists = load_region_state(kv, region.id)?.is_some_and(|s| {
            s.state == PeerState::Normal as i32 && s.region.is_some_and(|r| !r.peers.is_empty())
        });
        if !exists {
            write_initial_apply_state(&mut ctx.batch, region)?;
        }
    }
    info!(
        region_id = derived.id,
        new_regions = ?regions[1..].iter().map(|r| r.id).collect::<Vec<_>>(),
        version = new_epoch.version,
        "region split applied"
    );
    fsm.region = derived;
    ctx.results.push(ExecResult::Split {
        regions: regions.clone(),
    });
    Ok(regions)
}
