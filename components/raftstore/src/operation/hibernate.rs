//! Hibernating an idle region (TiKV's hibernate regions): its replicas stop ticking, so a store
//! with thousands of idle regions spends nothing on them.
//!
//! - A leader whose region has been idle for an election timeout (nothing proposed, read or
//!   pending; every peer heard from recently and holding the whole log, applied) asks each
//!   follower, with its term and last index, to sleep.
//! - A follower agrees when it has that log committed and applied and follows that leader;
//!   it answers and sleeps. The leader sleeps once every other peer has agreed.
//! - A sleeping replica wakes on any message other than a tick, a hibernation message or its
//!   leader's heartbeat (which changes nothing): a request, an append, a vote, an apply
//!   result. A waking leader pings its followers, which wakes them in turn.
//! - The store wakes all its sleeping replicas when another store goes silent (see
//!   [`crate::hibernate`]): a leader there may be gone, and followers that do not tick never
//!   elect a new one.
//!
//! Leases stay safe: a leader sleeps only after an election timeout without a proposal, so
//! its lease (0.9 of an election timeout from the last committed proposal) has run out before
//! it sleeps, and a read on a sleeping leader wakes it and goes through read index.

use std::collections::HashSet;

use engine_traits::KvEngine;
use kvproto::raft_serverpb::{ExtraMessage, ExtraMessageType, RaftMessage};
use raft_log_engine::RaftLogEngine;
use tracing::debug;

use types::PeerId;

use crate::fsm::peer::PeerFsmDelegate;
use crate::fsm::PollContext;
use crate::peer::Peer;

/// A replica's place in hibernation.
#[derive(Debug, Default)]
pub(crate) struct HibernateState {
    asleep: bool,
    /// Raft ticks in a row that found the region idle (leader).
    idle_ticks: usize,
    /// The (term, last index) the leader asked its followers to sleep at, and who agreed.
    asked: Option<(u64, u64)>,
    agreed: HashSet<PeerId>,
}

impl HibernateState {
    pub(crate) fn is_asleep(&self) -> bool {
        self.asleep
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    /// Whether this peer leads a region with nothing in flight, none of whose peers is down,
    /// all holding the whole log, applied.
    fn is_idle_leader(&self, ctx: &PollContext<EK, ER>) -> bool {
        let raft = &self.raft_group.raft;
        let last = raft.raft_log.last_index();
        self.is_leader()
            && !self.pending_remove
            && !self.apply_stopped
            && self.proposals.is_empty()
            && self.pending_writes.is_none()
            && self.pending_reads.is_empty()
            && self.waiting_reads.is_empty()
            && self.pending_split_index.is_none()
            && self.unpersisted.is_none()
            && raft.lead_transferee.is_none()
            && !raft.has_pending_conf()
            && raft.raft_log.committed == last
            && self.applied_index == last
            && raft
                .prs()
                .iter()
                .all(|(_, progress)| progress.matched == last)
            // A peer PD should hear about keeps the region awake (and reported).
            && !self.has_down_peer(ctx.cfg.election_timeout())
    }

    /// Whether this follower holds, committed and applied, exactly the log the leader `from`
    /// asked to sleep at.
    fn can_sleep_with(&self, from: PeerId, term: u64, index: u64) -> bool {
        let raft = &self.raft_group.raft;
        !self.is_leader()
            && raft.term == term
            && raft.leader_id == from.get()
            && raft.raft_log.last_index() == index
            && raft.raft_log.committed == index
            && self.applied_index == index
            && self.unpersisted.is_none()
            && self.pending_reads.is_empty()
            && !self.raft_group.has_ready()
    }

    fn fall_asleep(&mut self, ctx: &PollContext<EK, ER>) {
        self.hibernate.asleep = true;
        self.hibernate.idle_ticks = 0;
        ctx.hibernation.fall_asleep(self.region_id.get());
        debug!(
            region_id = self.region_id.get(),
            leader = self.is_leader(),
            "hibernating"
        );
    }

    /// Wakes a sleeping replica: it ticks again; a leader pings its followers, which wakes them
    /// too, and starts a fresh quorum check (its followers did not tick or talk while asleep).
    pub(crate) fn wake_up(&mut self, ctx: &PollContext<EK, ER>) {
        if !self.hibernate.asleep {
            return;
        }
        self.note_activity();
        self.hibernate.asleep = false;
        ctx.hibernation.wake(self.region_id.get());
        if self.is_leader() {
            self.raft_group.raft.election_elapsed = 0;
            self.raft_group.ping();
        }
        debug!(region_id = self.region_id.get(), "woke up");
    }

    /// A request reached the peer: the region counts as idle again only an election timeout
    /// from now (so that a lease granted for it runs out before the region sleeps).
    pub(crate) fn note_activity(&mut self) {
        self.hibernate.idle_ticks = 0;
        self.hibernate.asked = None;
        self.hibernate.agreed.clear();
    }

    fn hibernate_message(
        &self,
        to: PeerId,
        kind: ExtraMessageType,
        term: u64,
        index: u64,
    ) -> Option<RaftMessage> {
        let to_peer = self.peer_cache.get(&to).copied()?;
        Some(RaftMessage {
            region_id: self.region_id.get(),
            from_peer: Some(self.peer),
            to_peer: Some(to_peer),
            region_epoch: self.region.region_epoch,
            extra_msg: Some(ExtraMessage {
                r#type: kind as i32,
                term,
                index,
            }),
            ..Default::default()
        })
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'_, EK, ER> {
    /// After a raft tick: counts the leader's idle ticks and, after an election timeout of
    /// them, asks the followers that have not agreed yet to sleep (again every heartbeat).
    pub(crate) fn maybe_hibernate(&mut self) {
        let ctx = self.ctx;
        let peer = &mut self.fsm.peer;
        if !ctx.cfg.hibernate_regions || peer.hibernate.asleep {
            return;
        }
        if !peer.is_idle_leader(ctx) {
            peer.hibernate.idle_ticks = 0;
            peer.hibernate.asked = None;
            peer.hibernate.agreed.clear();
            return;
        }
        peer.hibernate.idle_ticks += 1;
        let waited = peer.hibernate.idle_ticks;
        if waited < ctx.cfg.raft_election_timeout_ticks
            || !(waited - ctx.cfg.raft_election_timeout_ticks)
                .is_multiple_of(ctx.cfg.raft_heartbeat_ticks)
        {
            return;
        }
        let at = (peer.term(), peer.raft_group.raft.raft_log.last_index());
        if peer.hibernate.asked != Some(at) {
            peer.hibernate.asked = Some(at);
            peer.hibernate.agreed.clear();
        }
        let others: Vec<PeerId> = peer
            .region
            .peers
            .iter()
            .map(|p| PeerId(p.id))
            .filter(|id| *id != peer.peer_id() && !peer.hibernate.agreed.contains(id))
            .collect();
        if others.is_empty() {
            peer.fall_asleep(ctx);
            return;
        }
        for to in others {
            if let Some(msg) =
                peer.hibernate_message(to, ExtraMessageType::MsgHibernateRequest, at.0, at.1)
            {
                ctx.trans.send(msg);
            }
        }
    }

    /// Handles a hibernation request or answer from the region's peer `from`.
    pub(crate) fn on_extra_message(&mut self, from: PeerId, extra: &ExtraMessage) {
        let ctx = self.ctx;
        let peer = &mut self.fsm.peer;
        match extra.r#type() {
            ExtraMessageType::MsgHibernateRequest => {
                if !ctx.cfg.hibernate_regions || !peer.can_sleep_with(from, extra.term, extra.index)
                {
                    return;
                }
                if let Some(msg) = peer.hibernate_message(
                    from,
                    ExtraMessageType::MsgHibernateResponse,
                    extra.term,
                    extra.index,
                ) {
                    ctx.trans.send(msg);
                    if !peer.hibernate.asleep {
                        peer.fall_asleep(ctx);
                    }
                }
            }
            ExtraMessageType::MsgHibernateResponse => {
                if peer.hibernate.asleep || peer.hibernate.asked != Some((extra.term, extra.index))
                {
                    return;
                }
                peer.hibernate.agreed.insert(from);
                let everyone =
                    peer.region.peers.iter().all(|p| {
                        p.id == peer.peer.id || peer.hibernate.agreed.contains(&PeerId(p.id))
                    });
                if everyone && peer.is_idle_leader(ctx) {
                    peer.fall_asleep(ctx);
                }
            }
            // Store to store; never routed to a peer.
            ExtraMessageType::MsgStoreHeartbeat => {}
        }
    }
}
