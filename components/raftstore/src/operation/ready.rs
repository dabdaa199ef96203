//! Raft's ready: persisting entries and the hard state, sending messages, handing committed
//! entries to apply, following apply's progress, and compacting the raft log.

use std::time::Instant;

use engine_traits::KvEngine;
use kvproto::raft_serverpb::{RaftApplyState, RaftMessage};
use protobuf::Message as _;
use raft::eraftpb::{self, Entry, MessageType};
use raft::{Ready, StateRole, Storage as _};
use raft_log_engine::{RaftLogEngine, StagedAppend};
use tracing::{debug, info, warn};

use types::PeerId;

use crate::errors::{Error, Result};
use crate::fsm::{ApplyMsg, ApplyTask, PollContext};
use crate::peer::{Peer, ReadyOutcome, PROPOSAL_CONTEXT_SPLIT};

/// A ready whose entries and hard state are staged in the poll round's shared raft log batch:
/// what is left to do once that batch is written and synced.
pub(crate) struct UnpersistedReady {
    awaiting: Awaiting,
    staged: StagedAppend,
    outcome: ReadyOutcome,
    snapshot_index: Option<u64>,
}

/// How raft-rs waits for the write.
// One per peer with a ready in flight, never moved in bulk: boxing the ready would add an
// allocation per ready on the write path.
#[allow(clippy::large_enum_variant)]
enum Awaiting {
    /// The poller writes the batch itself: the ready is advanced once the write returns.
    Poller(Ready),
    /// The store writer writes it while raft goes on: the ready was advanced at once
    /// (`advance_append_async`); its number and the messages that wait for the write remain.
    Writer {
        number: u64,
        persisted_messages: Vec<eraftpb::Message>,
    },
}

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Handles raft-rs's ready up to persisting it: sends what may go before the log is
    /// durable, applies a snapshot, hands committed entries to apply, answers reads, and stages
    /// the new entries and hard state in `batch`, which the raft poller writes, with one sync,
    /// for every peer of its round (group commit). [`Peer::on_ready_persisted`] finishes.
    ///
    /// Returns whether the staged write must be synced: it holds new entries, a snapshot, or a
    /// new term or vote. A hard state whose commit index alone moved need not be (raft-rs's
    /// `must_sync`, as TiKV): a restart that lost it learns the commit again, and raises it to
    /// the applied index if that went further (`Peer::new`).
    ///
    /// # Errors
    ///
    /// Raft log or engine write failures; the caller treats them as fatal for the peer.
    pub fn handle_ready(
        &mut self,
        ctx: &PollContext<EK, ER>,
        batch: &mut ER::Batch,
    ) -> Result<bool> {
        if self.unpersisted.is_some() || !self.raft_group.has_ready() {
            return Ok(false);
        }
        // A snapshot may only replace the data once everything handed to apply is applied (or
        // apply stopped, and only the snapshot can restart it).
        if self.raft_group.snap().is_some()
            && self.applied_index < self.committed_sent
            && !self.apply_stopped
        {
            return Ok(false);
        }
        // Its data goes into the data engine off this thread first.
        if !self.snapshot_data_durable(ctx)? {
            return Ok(false);
        }
        let mut outcome = ReadyOutcome::default();
        let mut ready = self.raft_group.ready();
        count_ready(&ready);
        if let Some(soft_state) = ready.ss() {
            outcome.role_changed = true;
            if soft_state.raft_state != StateRole::Leader {
                self.lease_expire = None;
            }
        }
        self.send_messages(ctx, ready.take_messages());
        let mut snapshot_index = None;
        if !ready.snapshot().is_empty() {
            self.apply_snapshot(ctx, ready.snapshot())?;
            snapshot_index = Some(ready.snapshot().get_metadata().index);
            outcome.snapshot_applied = true;
        }
        let committed = ready.take_committed_entries();
        self.hand_to_apply(ctx, committed);
        let read_states = ready.take_read_states();
        self.on_read_states(ctx, read_states);
        // A confirmed read index at or below the applied index is answered now, not when the
        // next tick or apply result comes by (an idle region's reads waited a whole tick).
        self.process_reads(ctx);
        let must_sync = ready.must_sync();
        if snapshot_index.is_some() {
            self.raft_log_size_hint = 0;
        }
        self.raft_log_size_hint += ready
            .entries()
            .iter()
            .map(|e| e.data.len() as u64)
            .sum::<u64>();
        let log = &self.raft_group.store().raft_log;
        let (awaiting, staged) = if ctx.cfg.store_io_pool_size == 0 {
            let staged = log.stage_append(ready.entries(), ready.hs(), batch)?;
            (Awaiting::Poller(ready), staged)
        } else {
            // The entries must be readable from the storage before raft-rs drops them from
            // its unstable log.
            let staged = log.stage_append_visible(ready.entries(), ready.hs(), batch)?;
            let awaiting = Awaiting::Writer {
                number: ready.number(),
                persisted_messages: ready.take_persisted_messages(),
            };
            self.raft_group.advance_append_async(ready);
            (awaiting, staged)
        };
        self.unpersisted = Some(UnpersistedReady {
            awaiting,
            staged,
            outcome,
            snapshot_index,
        });
        Ok(must_sync)
    }

    /// Whether a ready waits for the round's raft log write.
    pub fn has_unpersisted_ready(&self) -> bool {
        self.unpersisted.is_some()
    }

    /// Finishes the ready staged by [`Peer::handle_ready`] once the round's raft log batch is
    /// on disk: sends the messages that needed it durable (votes, append responses), tells
    /// raft-rs, and hands entries committed meanwhile to apply.
    pub fn on_ready_persisted(&mut self, ctx: &PollContext<EK, ER>) -> ReadyOutcome {
        let Some(UnpersistedReady {
            awaiting,
            staged,
            outcome,
            snapshot_index,
        }) = self.unpersisted.take()
        else {
            return ReadyOutcome::default();
        };
        self.raft_group.store().raft_log.finish_append(staged);
        match awaiting {
            Awaiting::Poller(mut ready) => {
                self.send_messages(ctx, ready.take_persisted_messages());
                // Not `advance`: it would tell raft that every committed entry handed out is
                // applied, while the apply FSM applies them later. raft learns the applied
                // index from `on_applied` (and here, for a snapshot, which is applied in place).
                let mut light = self.raft_group.advance_append(ready);
                if let Some(index) = snapshot_index {
                    self.raft_group.advance_apply_to(index);
                }
                self.send_messages(ctx, light.take_messages());
                let committed = light.take_committed_entries();
                self.hand_to_apply(ctx, committed);
            }
            Awaiting::Writer {
                number,
                persisted_messages,
            } => {
                // What the write unblocks comes with the next ready.
                self.send_messages(ctx, persisted_messages);
                self.raft_group.on_persist_ready(number);
                if let Some(index) = snapshot_index {
                    self.raft_group.advance_apply_to(index);
                }
            }
        }
        if outcome.role_changed {
            self.on_role_changed(ctx);
        }
        outcome
    }

    pub(crate) fn on_role_changed(&mut self, ctx: &PollContext<EK, ER>) {
        if self.is_leader() {
            info!(
                region_id = self.region_id.get(),
                peer_id = self.peer.id,
                term = self.term(),
                "became leader"
            );
            self.peer_heartbeats.clear();
            let now = Instant::now();
            for peer in &self.region.peers {
                self.peer_heartbeats.insert(PeerId(peer.id), now);
            }
            ctx.store_meta.lock().leader_changes += 1;
            // A read on the old leader may wait for its followers to apply this term's entries.
            self.bcast_commit_until(self.raft_group.raft.raft_log.last_index());
        } else {
            let leader = self.leader();
            let region_id = self.region_id;
            self.fail_pending(|| Error::NotLeader { region_id, leader });
            // Answered now rather than when (if ever) this peer sees the entries' fate, so
            // that the writers' latches are released and later writes, proposed by a new
            // leader, are ordered after these by that leader's log.
            self.abandon_proposals("the leader stepped down before the entry was committed");
        }
        self.update_read_delegate(ctx);
    }

    pub(crate) fn hand_to_apply(&mut self, ctx: &PollContext<EK, ER>, entries: Vec<Entry>) {
        let Some(last) = entries.last() else {
            return;
        };
        if self.apply_stopped {
            return;
        }
        let last_index = last.index;
        if let Some(split) = entries
            .iter()
            .rev()
            .find(|e| e.context.as_ref() == [PROPOSAL_CONTEXT_SPLIT])
        {
            self.pending_split_index = Some(split.index);
            if self.is_leader() {
                self.lease_expire = None;
                self.update_read_delegate(ctx);
            }
        }
        let mut proposals = Vec::new();
        let term = self.term();
        let mut newest_committed_proposal = None;
        let now = Instant::now();
        while self
            .proposals
            .front()
            .is_some_and(|p| p.index.get() <= last_index)
        {
            let proposal = self.proposals.pop_front().expect("front exists");
            if proposal.term.get() == term {
                newest_committed_proposal = Some(proposal.propose_time);
                crate::metrics::COMMIT_LOG_DURATION
                    .observe((now - proposal.propose_time).as_secs_f64());
            }
            proposals.push(proposal);
        }
        if self.is_leader() {
            if let Some(since) = newest_committed_proposal {
                self.renew_lease(ctx, since);
            }
        }
        self.committed_sent = self.committed_sent.max(last_index);
        let task = ApplyMsg::Apply(ApplyTask {
            sent_at: now,
            term,
            entries,
            proposals,
        });
        if let Err(e) = ctx.apply_router.force_send(self.region_id.get(), task) {
            warn!(region_id = self.region_id.get(), error = ?e, "apply fsm is gone; committed entries dropped");
        }
    }

    /// Sends raft-rs messages to the other peers.
    pub fn send_messages(&mut self, ctx: &PollContext<EK, ER>, messages: Vec<eraftpb::Message>) {
        for message in messages {
            let kind = message.get_msg_type();
            let Some(to_peer) = self.peer_cache.get(&PeerId(message.to)).copied() else {
                crate::metrics::count_sent_message(kind, false);
                debug!(
                    region_id = self.region_id.get(),
                    to = message.to,
                    "no address for raft message; dropped"
                );
                continue;
            };
            let is_snapshot = kind == MessageType::MsgSnapshot;
            if is_snapshot {
                info!(
                    region_id = self.region_id.get(),
                    to_peer = to_peer.id,
                    index = message.get_snapshot().get_metadata().index,
                    "sending snapshot"
                );
            }
            let bytes = match message.write_to_bytes() {
                Ok(bytes) => bytes,
                Err(e) => {
                    warn!(region_id = self.region_id.get(), error = %e, "cannot encode raft message");
                    continue;
                }
            };
            let msg = RaftMessage {
                region_id: self.region_id.get(),
                from_peer: Some(self.peer),
                to_peer: Some(to_peer),
                message: bytes.into(),
                region_epoch: self.region.region_epoch,
                is_tombstone: false,
                start_key: self.region.start_key.clone(),
                end_key: self.region.end_key.clone(),
                extra_msg: None,
            };
            crate::metrics::count_sent_message(kind, true);
            if is_snapshot {
                ctx.trans.send_snapshot(msg);
            } else {
                ctx.trans.send(msg);
            }
        }
    }

    /// Tells followers of every commit at once until this peer has applied `index`: what a
    /// split or a membership change creates on the followers' stores, or what a read on a new
    /// leader waits for, should not wait for the next heartbeat.
    pub(crate) fn bcast_commit_until(&mut self, index: u64) {
        self.last_urgent_index = Some(self.last_urgent_index.map_or(index, |i| i.max(index)));
        self.raft_group.skip_bcast_commit(false);
    }

    /// Follows the apply FSM's progress.
    pub fn on_applied(&mut self, ctx: &PollContext<EK, ER>, apply_state: &RaftApplyState) {
        if apply_state.applied_index > self.applied_index {
            self.applied_index = apply_state.applied_index;
            self.applied_term = apply_state.applied_term;
            self.raft_group.advance_apply_to(self.applied_index);
            // Applied entries are read again only for followers that fell behind: from the
            // engine.
            self.raft_group
                .store()
                .raft_log
                .compact_cache_to(self.applied_index + 1);
        }
        if self
            .pending_split_index
            .is_some_and(|index| index <= self.applied_index)
        {
            self.pending_split_index = None;
        }
        if self
            .last_urgent_index
            .is_some_and(|index| index <= self.applied_index)
        {
            self.last_urgent_index = None;
            self.raft_group.skip_bcast_commit(true);
        }
        self.process_reads(ctx);
        if self.is_leader() {
            self.update_read_delegate(ctx);
        }
    }

    /// Compacts the raft log up to what every follower has and this peer has applied durably;
    /// once the log grows past the count or size limit, at least its older half.
    pub fn compact_raft_log(&mut self, ctx: &PollContext<EK, ER>) -> Result<()> {
        let Some(applied) = self
            .durable_applied
            .on_gc_tick(self.applied_index, &ctx.kv_syncs)
        else {
            return Ok(());
        };
        let first = self.raft_group.store().first_index()?;
        if applied < first {
            return Ok(());
        }
        let size_limit = ctx
            .cfg
            .raft_log_gc_size_limit(ctx.split_checker.config().region_split_size.0);
        let over_limits = applied - first >= ctx.cfg.raft_log_gc_count_limit
            || self.raft_log_size_hint >= size_limit;
        if !over_limits && applied - first < ctx.cfg.raft_log_gc_threshold {
            return Ok(());
        }
        let last = self.raft_group.store().last_index()?;
        let mut compact_to = applied;
        if self.is_leader() {
            let min_matched = self
                .raft_group
                .raft
                .prs()
                .iter()
                .filter(|(id, _)| **id != self.peer.id)
                .map(|(_, progress)| progress.matched)
                .min()
                .unwrap_or(applied);
            // Past the limits the older half of the log goes even if a follower still needs
            // it (it catches up from a snapshot), as TiKV does: a follower that is merely a
            // little behind is not cut off, and a log over the limits halves at every tick.
            let keep_from = if over_limits {
                min_matched.max(first + (last - first) / 2)
            } else {
                min_matched
            };
            compact_to = compact_to.min(keep_from);
        }
        if compact_to <= first {
            return Ok(());
        }
        self.raft_group.store().raft_log.compact(compact_to)?;
        // What remains holds about its share of the entries' bytes.
        let before = last.saturating_sub(first) + 1;
        let remaining = last.saturating_sub(compact_to) + 1;
        self.raft_log_size_hint = (u128::from(self.raft_log_size_hint) * u128::from(remaining)
            / u128::from(before)) as u64;
        crate::metrics::RAFT_LOG_GC_DELETED_KEYS.observe((compact_to - first) as f64);
        debug!(
            region_id = self.region_id.get(),
            compact_to, "raft log compacted"
        );
        Ok(())
    }
}

/// Counts what a ready carries (`tikv_raftstore_raft_ready_handled_total`).
fn count_ready(ready: &Ready) {
    let counters = &*crate::metrics::READY_HANDLED;
    counters.has_ready_region.inc();
    if !ready.messages().is_empty() || !ready.persisted_messages().is_empty() {
        counters.message.inc();
    }
    if !ready.entries().is_empty() {
        counters.append.inc();
    }
    if !ready.committed_entries().is_empty() {
        counters.commit.inc();
    }
    if !ready.snapshot().is_empty() {
        counters.snapshot.inc();
    }
}
