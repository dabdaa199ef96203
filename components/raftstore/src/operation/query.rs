//! Reads and the leader lease: under a valid lease a read is answered at once; otherwise it
//! waits for a read index, and is checked against the region's epoch again when answered.

use std::time::Instant;

use engine_traits::KvEngine;
use kvproto::raft_cmdpb::RaftCmdRequest;
use raft_log_engine::RaftLogEngine;

use crate::errors::Error;
use crate::fsm::PollContext;
use crate::msg::{Callback, ReadResponse};
use crate::peer::{ok_response, Peer, PendingRead};
use crate::region_snapshot::RegionSnapshot;
use crate::store_meta::ReadDelegate;
use crate::util;

impl<EK: KvEngine, ER: RaftLogEngine> Peer<EK, ER> {
    pub(crate) fn lease_valid(&self, now: Instant) -> bool {
        self.raft_group.raft.lead_transferee.is_none()
            && self.pending_split_index.is_none()
            && self.lease_expire.is_some_and(|expire| now < expire)
    }

    pub(crate) fn renew_lease(&mut self, ctx: &PollContext<EK, ER>, since: Instant) {
        // A leader handing over leadership gets no new lease: the target campaigns without
        // waiting for any lease to run out.
        // Nor does a leader with a committed split it has not applied: once the followers
        // apply it, the split-off region elects its own leader, which this lease knows
        // nothing of.
        if self.raft_group.raft.lead_transferee.is_some() || self.pending_split_index.is_some() {
            return;
        }
        let expire = since + ctx.cfg.max_leader_lease();
        if self.lease_expire.is_none_or(|old| old < expire) {
            self.lease_expire = Some(expire);
            // Local readers see the renewal at once, not when the next write is applied: a
            // region that is only read renews its lease with read indexes alone.
            self.read_cell.renew_lease(expire);
        }
    }

    /// Publishes what a local read must check in this peer's read cell, or empties it when
    /// not leader. The store-wide map of cells changes (under its lock) only when the peer
    /// starts or stops leading; a lease renewal touches the cell alone.
    pub fn update_read_delegate(&self, ctx: &PollContext<EK, ER>) {
        let delegate =
            (self.is_leader() && !self.pending_remove && !self.apply_stopped).then(|| {
                ReadDelegate {
                    region: self.region.clone(),
                    store_id: ctx.store_id,
                    peer_id: self.peer_id(),
                    term: self.term(),
                    applied_term: self.applied_term,
                    lease_expire: self.lease_expire,
                }
            });
        let published = self.read_cell.with(|_| ()).is_some();
        let leading = delegate.is_some();
        self.read_cell.set(delegate);
        if published != leading {
            let mut meta = ctx.store_meta.lock();
            if leading {
                meta.readers.insert(self.region_id, self.read_cell.clone());
            } else {
                meta.readers.remove(&self.region_id);
            }
        }
    }

    pub(crate) fn read(
        &mut self,
        ctx: &PollContext<EK, ER>,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) {
        let now = Instant::now();

        if self.lease_valid(now) && self.applied_term == self.term() {
            crate::metrics::PROPOSALS
                .with_label_values(&["lease_read"])
                .inc();
            self.respond_read(ctx, &request, callback);
            return;
        }
        if !self.raft_group.raft.commit_to_current_term() {
            self.waiting_reads.push((request, callback));
            return;
        }
        crate::metrics::PROPOSALS
            .with_label_values(&["read_index"])
            .inc();
        let id = self.next_read_id;
        self.next_read_id += 1;
        self.raft_group.read_index(id.to_be_bytes().to_vec());
        self.pending_reads.push_back(PendingRead {
            id,
            request,
            callback,
            propose_time: now,
            read_index: None,
        });
    }

    /// Answers a read with a snapshot of the region, unless the region changed (a split)
    /// since the read was checked: its snapshot would silently miss the part split off.
    pub(crate) fn respond_read(
        &self,
        ctx: &PollContext<EK, ER>,
        request: &RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) {
        if let Err(e) = util::check_region_epoch(request, &self.region) {
            callback.invoke_with_error(e, self.term());
            return;
        }
        let snapshot = RegionSnapshot::new(ctx.kv.snapshot(), self.region.clone());
        match callback {
            Callback::Read(cb) => cb(ReadResponse {
                response: ok_response(self.term()),
                snapshot: Some(snapshot),
            }),
            other => other.invoke_with_response(ok_response(self.term())),
        }
    }

    /// Answers reads whose read index is applied; retries reads that waited for this leader
    /// to commit in its term; fails reads that waited too long.
    pub fn process_reads(&mut self, ctx: &PollContext<EK, ER>) {
        if !self.waiting_reads.is_empty() && self.raft_group.raft.commit_to_current_term() {
            for (request, callback) in std::mem::take(&mut self.waiting_reads) {
                self.read(ctx, request, callback);
            }
        }
        while let Some(read) = self.pending_reads.front() {
            match read.read_index {
                Some(index) if index <= self.applied_index => {
                    let read = self.pending_reads.pop_front().expect("front exists");
                    self.respond_read(ctx, &read.request, read.callback);
                }
                _ => break,
            }
        }
        let timeout = ctx.cfg.election_timeout() * 2;
        let now = Instant::now();
        while self
            .pending_reads
            .front()
            .is_some_and(|r| r.read_index.is_none() && now.duration_since(r.propose_time) > timeout)
        {
            let read = self.pending_reads.pop_front().expect("front exists");
            read.callback.invoke_with_error(
                Error::ReadIndexTimeout {
                    region_id: self.region_id,
                },
                self.term(),
            );
        }
    }

    pub(crate) fn on_read_states(
        &mut self,
        ctx: &PollContext<EK, ER>,
        states: Vec<raft::ReadState>,
    ) {
        for state in states {
            let Ok(id) = <[u8; 8]>::try_from(state.request_ctx.as_slice()).map(u64::from_be_bytes)
            else {
                continue;
            };
            let mut confirmed_at = None;
            if let Some(read) = self.pending_reads.iter_mut().find(|r| r.id == id) {
                read.read_index = Some(state.index);
                confirmed_at = Some(read.propose_time);
            }
            if let Some(since) = confirmed_at {
                self.renew_lease(ctx, since);
            }
        }
    }

    /// Fails every waiting read and proposal: the peer lost leadership or is being removed.
    pub fn fail_pending(&mut self, error: impl Fn() -> Error) {
        let term = self.term();
        if let Some(writes) = self.pending_writes.take() {
            writes.fail(error(), term);
        }
        for read in self.pending_reads.drain(..) {
            read.callback.invoke_with_error(error(), term);
        }
        for (_, callback) in self.waiting_reads.drain(..) {
            callback.invoke_with_error(error(), term);
        }
    }
}
