//! Proposing: a command is checked (store, leader, epoch, keys, size), proposed to raft and
//! remembered with its callback until its entry is applied, or abandoned as undetermined.

use std::time::Instant;

use engine_traits::{KvEngine, Snapshot};
use kvproto::raft_cmdpb::{AdminCmdType, CmdType, RaftCmdRequest};
use prost::Message as _;
use raft_log_engine::RaftLogEngine;

use types::{LogIndex, StoreId, Term};

use crate::errors::{Error, Result};
use crate::fsm::{check_write, PollContext, Proposal};
use crate::msg::{Callback, Undetermined};
use crate::peer::{ok_response, Peer, PROPOSAL_CONTEXT_SPLIT};
use crate::util;

/// Writes proposed to a leader during one poll round, not yet proposed to raft: they become
/// one raft entry when the round ends.
pub(crate) struct PendingWrites<S: Snapshot> {
    /// The first write's request, with the requests of the others appended.
    request: RaftCmdRequest,
    /// Encoded size of the writes.
    size: usize,
    /// Each write's callback and number of requests.
    callbacks: Vec<(Callback<S>, usize)>,
}

impl<S: Snapshot> PendingWrites<S> {
    /// Answers every pending write with an error: they were never proposed.
    pub(crate) fn fail(self, error: Error, term: u64) {
        Callback::Batch(self.callbacks).invoke_with_error(error, term);
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Checks a command against this peer and proposes it, or answers it with an error.
    pub fn propose(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) {
        if let Err(e) = self.check_proposal(ctx, &request) {
            callback.invoke_with_error(e, self.term());
            return;
        }
        let is_read = !request.requests.is_empty()
            && request
                .requests
                .iter()
                .all(|r| r.cmd_type() == CmdType::Snap);
        let result = if request.admin_request.is_some() {
            // Writes that came first are proposed first.
            self.propose_pending_writes(ctx);
            self.propose_admin(ctx, request, callback)
        } else if is_read {
            self.read(ctx, request, callback);
            Ok(())
        } else {
            self.batch_write(ctx, request, callback)
        };
        if let Err((e, callback)) = result {
            callback.invoke_with_error(e, self.term());
        }
    }

    pub(crate) fn check_proposal(
        &self,
        ctx: &PollContext<EK, ER>,
        request: &RaftCmdRequest,
    ) -> Result<()> {
        if let Some(peer) = request.header.as_ref().and_then(|h| h.peer) {
            if peer.store_id != 0 && peer.store_id != ctx.store_id.get() {
                return Err(Error::StoreNotMatch {
                    request_store_id: StoreId(peer.store_id),
                    actual_store_id: ctx.store_id,
                });
            }
        }
        if self.pending_remove {
            return Err(Error::PendingRemove {
                region_id: self.region_id,
            });
        }
        if self.apply_stopped {
            return Err(Error::ApplyStopped {
                region_id: self.region_id,
            });
        }
        if !self.is_leader() {
            return Err(Error::NotLeader {
                region_id: self.region_id,
                leader: self.leader(),
            });
        }
        util::check_region_epoch(request, &self.region)?;
        util::check_write_keys(request, &self.region)
    }

    /// Adds a write to the round's pending writes, which [`Peer::propose_pending_writes`]
    /// proposes as one raft entry when the round ends (TiKV's `cmd-batch`): one encode, one
    /// log entry and one apply for all of them. Each request is checked first, so that no
    /// write can fail the others of its entry.
    fn batch_write(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        if let Err(e) = request
            .requests
            .iter()
            .try_for_each(|r| check_write(r).map(drop))
        {
            return Err((e, callback));
        }
        let size = request.encoded_len();
        // TiKV's limit on a batch: 40% of the largest entry.
        let limit = ctx.cfg.raft_entry_max_size.0 * 2 / 5;
        let fits = |pending: &PendingWrites<EK::Snapshot>| {
            (pending.size + size) as u64 <= limit
                && pending.request.header.as_ref().and_then(|h| h.region_epoch)
                    == request.header.as_ref().and_then(|h| h.region_epoch)
        };
        if self.pending_writes.as_ref().is_some_and(|p| !fits(p)) {
            self.propose_pending_writes(ctx);
        }
        if size as u64 > limit {
            return self.propose_write(ctx, request, callback);
        }
        let requests = request.requests.len();
        match &mut self.pending_writes {
            Some(pending) => {
                pending.request.requests.extend(request.requests);
                pending.size += size;
                pending.callbacks.push((callback, requests));
            }
            None => {
                self.pending_writes = Some(PendingWrites {
                    request,
                    size,
                    callbacks: vec![(callback, requests)],
                })
            }
        }
        Ok(())
    }

    /// Proposes the round's pending writes as one entry.
    pub(crate) fn propose_pending_writes(&mut self, ctx: &PollContext<EK, ER>) {
        let Some(mut pending) = self.pending_writes.take() else {
            return;
        };
        let callback = if pending.callbacks.len() == 1 {
            pending.callbacks.pop().expect("one callback").0
        } else {
            Callback::Batch(pending.callbacks)
        };
        if let Err((e, callback)) = self.propose_write(ctx, pending.request, callback) {
            callback.invoke_with_error(e, self.term());
        }
    }

    pub(crate) fn propose_write(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        let data = request.encode_to_vec();
        let max = ctx.cfg.raft_entry_max_size.0;
        if data.len() as u64 > max {
            return Err((
                Error::RaftEntryTooLarge {
                    region_id: self.region_id,
                    entry_size: data.len() as u64,
                },
                callback,
            ));
        }
        let (kind, context) = if request.admin_request.is_some() {
            ("split", vec![PROPOSAL_CONTEXT_SPLIT])
        } else {
            ("normal", vec![])
        };
        crate::metrics::PROPOSALS.with_label_values(&[kind]).inc();
        let last_before = self.raft_group.raft.raft_log.last_index();
        if let Err(e) = self.raft_group.propose(context, data) {
            return Err((self.proposal_dropped(e), callback));
        }
        self.push_proposal(last_before, callback)
    }

    pub(crate) fn push_proposal(
        &mut self,
        last_before: u64,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        let index = self.raft_group.raft.raft_log.last_index();
        if index == last_before {
            return Err((
                self.proposal_dropped(raft::Error::ProposalDropped),
                callback,
            ));
        }
        // The queue holds one leadership's proposals, in index order: a step-down abandons it.
        debug_assert!(self
            .proposals
            .back()
            .is_none_or(|p| p.index.get() < index && p.term.get() == self.term()));
        self.proposals.push_back(Proposal {
            index: LogIndex(index),
            term: Term(self.term()),
            callback,
            propose_time: Instant::now(),
        });
        Ok(())
    }

    pub(crate) fn proposal_dropped(&self, e: raft::Error) -> Error {
        if self.is_leader() {
            Error::ProposalDropped {
                region_id: self.region_id,
                reason: e.to_string(),
            }
        } else {
            Error::NotLeader {
                region_id: self.region_id,
                leader: self.leader(),
            }
        }
    }

    pub(crate) fn propose_admin(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) -> std::result::Result<(), (Error, Callback<EK::Snapshot>)> {
        let admin = request
            .admin_request
            .as_ref()
            .expect("checked by the caller");
        match admin.cmd_type() {
            AdminCmdType::TransferLeader => {
                let target = admin.transfer_leader.as_ref().and_then(|t| t.peer);
                self.propose_transfer_leader(ctx, target);
                callback.invoke_with_response(ok_response(self.term()));
                Ok(())
            }
            AdminCmdType::ChangePeer => {
                self.propose_conf_change(request, callback)?;
                self.bcast_commit_until(self.raft_group.raft.raft_log.last_index());
                Ok(())
            }
            AdminCmdType::BatchSplit => {
                self.propose_write(ctx, request, callback)?;
                self.bcast_commit_until(self.raft_group.raft.raft_log.last_index());
                Ok(())
            }
            AdminCmdType::CompactLog | AdminCmdType::InvalidAdmin => Err((
                Error::InvalidRequest(format!("unsupported admin command {:?}", admin.cmd_type())),
                callback,
            )),
        }
    }

    /// Answers every proposal not yet seen committed as undetermined: this peer will not learn
    /// its fate (it lost leadership, or is destroyed), yet its entry may still commit.
    pub fn abandon_proposals(&mut self, reason: &'static str) {
        let term = self.term();
        let region_id = self.region_id;
        for proposal in self.proposals.drain(..) {
            let undetermined = Undetermined { region_id, reason };
            proposal.callback.invoke_undetermined(undetermined, term);
        }
    }
}
