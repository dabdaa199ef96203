//! Splits: size checks, asking PD for ids, proposing the split, and following it up.

use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::pdpb;
use kvproto::raft_cmdpb::{AdminCmdType, AdminRequest, BatchSplitRequest, SplitRequest};
use raft_log_engine::RaftLogEngine;
use tracing::warn;

use crate::errors::{Error, Result};
use crate::fsm::peer::PeerFsmDelegate;
use crate::msg::{Callback, PeerMsg, StoreMsg};
use crate::pd::PdTask;
use crate::peer_storage::write_initial_raft_state;

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
        for region in &regions {
            if region.id == region_id {
                self.fsm.peer.set_region(region.clone());
                self.ctx.store_meta.lock().set_region(region);
            } else {
                new_regions.push(region.clone());
            }
        }
        self.fsm.peer.update_read_delegate(self.ctx);
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
