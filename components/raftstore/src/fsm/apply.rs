//! The apply side (seed: `ApplyFsm` on the apply poller): writes committed entries to the data
//! engine together with the apply state, answers proposals, and reports progress and admin
//! results (conf changes, splits) back to the peer FSM.
//!
//! Writes are not synced: the raft log already holds every applied entry durably, so after a
//! crash the entries after the persisted apply state are simply applied again.

use std::collections::VecDeque;
use std::time::Instant;

use batch_system::{BasicMailbox, Fsm, HandleResult, HandlerBuilder, NormalFsm, PollHandler};
use crossbeam::channel::{Receiver, TryRecvError};
use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, CF_RAFT};
use kvproto::metapb;
use kvproto::raft_cmdpb::{
    AdminCmdType, AdminResponse, BatchSplitResponse, CmdType, DeleteRequest, PutRequest,
    RaftCmdRequest, RaftCmdResponse, Request, Response,
};
use kvproto::raft_serverpb::{PeerState, RaftApplyState, RegionLocalState};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, Entry, EntryType};
use raft_log_engine::RaftLogEngine;
use tracing::{error, warn};

use types::{LogIndex, PeerId, RegionId, Term};

use crate::errors::{Error, Result};
use crate::fsm::store::RaftRouter;
use crate::msg::{error_response, ApplyRes, Callback, ExecResult, PeerMsg, Undetermined};
use crate::operation::{exec_batch_split, exec_change_peer};
use crate::peer::ok_response;
use crate::util;

/// A proposal waiting for its entry to be applied.
pub struct Proposal<S: engine_traits::Snapshot> {
    /// Where the proposal's entry was appended, and in which term: matched against the entry
    /// applied at that index, whose term tells whether it is this proposal's.
    pub index: LogIndex,
    pub term: Term,
    pub callback: Callback<S>,
    pub propose_time: Instant,
}

/// Committed entries of a region, with the proposals they may answer.
pub struct ApplyTask<S: engine_traits::Snapshot> {
    /// When the raft side handed the entries over.
    pub sent_at: Instant,
    pub term: u64,
    pub entries: Vec<Entry>,
    pub proposals: Vec<Proposal<S>>,
}

pub enum ApplyMsg<S: engine_traits::Snapshot> {
    Apply(ApplyTask<S>),
    /// The raft side installed a snapshot: start over from its state.
    Snapshot {
        region: metapb::Region,
        apply_state: RaftApplyState,
        peer_id: PeerId,
    },
    /// The peer is destroyed: answer what is left, stop, and tell the peer
    /// (`PeerMsg::ApplyDestroyed`) once everything applied is written.
    Destroy,
}

pub struct ApplyFsm<EK: KvEngine> {
    pub(crate) region: metapb::Region,
    pub(crate) peer_id: PeerId,
    pub(crate) apply_state: RaftApplyState,
    pub(crate) pending: VecDeque<Proposal<EK::Snapshot>>,
    pub(crate) receiver: Receiver<ApplyMsg<EK::Snapshot>>,
    pub(crate) stopped: bool,
    /// This replica's own removal is applied: the entries after it are not applied here.
    pub(crate) removed: bool,
    /// The peer asked it to stop (`ApplyMsg::Destroy`) and waits to hear that it has.
    pub(crate) destroyed: bool,
}

impl<EK: KvEngine> Fsm for ApplyFsm<EK> {
    type Message = ApplyMsg<EK::Snapshot>;

    fn is_stopped(&self) -> bool {
        self.stopped
    }
}

impl<EK: KvEngine> ApplyFsm<EK> {
    /// Returns the FSM and its mailbox.
    pub fn create(
        region: metapb::Region,
        peer_id: PeerId,
        apply_state: RaftApplyState,
    ) -> (BasicMailbox<ApplyFsm<EK>>, u64) {
        let region_id = region.id;
        let (fsm, sender) = Self::new(region, peer_id, apply_state);
        (BasicMailbox::new(sender, Box::new(fsm)), region_id)
    }

    /// The FSM and the sending end of its message queue.
    pub(crate) fn new(
        region: metapb::Region,
        peer_id: PeerId,
        apply_state: RaftApplyState,
    ) -> (Self, crossbeam::channel::Sender<ApplyMsg<EK::Snapshot>>) {
        let (sender, receiver) = crossbeam::channel::unbounded();
        let fsm = ApplyFsm {
            region,
            peer_id,
            apply_state,
            pending: VecDeque::new(),
            receiver,
            stopped: false,
            removed: false,
            destroyed: false,
        };
        (fsm, sender)
    }
}

/// The apply poller's control FSM; it has nothing to do.
pub struct ApplyControlFsm {
    receiver: Receiver<()>,
}

impl ApplyControlFsm {
    pub fn new() -> (crossbeam::channel::Sender<()>, Box<ApplyControlFsm>) {
        let (sender, receiver) = crossbeam::channel::unbounded();
        (sender, Box::new(ApplyControlFsm { receiver }))
    }
}

impl Fsm for ApplyControlFsm {
    type Message = ();

    fn is_stopped(&self) -> bool {
        false
    }
}

pub type ApplyRouter<EK> = batch_system::Router<ApplyFsm<EK>, ApplyControlFsm>;

/// What one round of applying a region produced.
pub(crate) struct ApplyContext<EK: KvEngine> {
    pub(crate) batch: EK::WriteBatch,
    pub(crate) callbacks: Vec<(Callback<EK::Snapshot>, RaftCmdResponse)>,
    pub(crate) results: Vec<ExecResult>,
    pub(crate) written_bytes: u64,
    pub(crate) written_keys: u64,
    /// Of `written_keys`, those in the write CF: what the split checker counts as keys.
    pub(crate) written_commit_keys: u64,
    /// Whether any entry was applied: even an entry that writes nothing (a new leader's empty
    /// entry) moves the applied index, which reads and the raft side wait for.
    pub(crate) applied_any: bool,
}

impl<EK: KvEngine> ApplyContext<EK> {
    fn new(kv: &EK) -> Self {
        ApplyContext {
            batch: kv.write_batch(),
            callbacks: Vec::new(),
            results: Vec::new(),
            written_bytes: 0,
            written_keys: 0,
            written_commit_keys: 0,
            applied_any: false,
        }
    }
}

/// A region whose applied data waits in the round's write batch, with what is handed out
/// once the batch is written.
struct Staged<S: engine_traits::Snapshot> {
    callbacks: Vec<(Callback<S>, RaftCmdResponse)>,
    res: ApplyRes,
    /// When the poller took the region up this round.
    started: Instant,
}

/// The apply poller: the regions of one round share a write batch (TiKV's apply `kv_wb`), so
/// a round of many regions taking a write each costs one engine write instead of one per
/// region. Answers and reports go out only after the write; the batch is written when the
/// round ends, or as soon as it holds [`WRITE_BATCH_MAX_KEYS`].
pub struct ApplyPoller<EK: KvEngine, ER: RaftLogEngine> {
    kv: EK,
    router: RaftRouter<EK, ER>,
    /// The round's batch between regions (`None` only while a region is handled).
    round: Option<ApplyContext<EK>>,
    staged: Vec<Staged<EK::Snapshot>>,
    /// Regions of this round whose write failed; they stop applying at the round's end.
    failed: Vec<u64>,
}

pub struct ApplyPollerBuilder<EK: KvEngine, ER: RaftLogEngine> {
    pub kv: EK,
    pub router: RaftRouter<EK, ER>,
}

impl<EK: KvEngine, ER: RaftLogEngine> HandlerBuilder<ApplyFsm<EK>, ApplyControlFsm>
    for ApplyPollerBuilder<EK, ER>
{
    type Handler = ApplyPoller<EK, ER>;

    fn build(&mut self) -> ApplyPoller<EK, ER> {
        ApplyPoller::new(self.kv.clone(), self.router.clone())
    }
}

/// Messages handled per FSM per round before others get a turn.
const MAX_MESSAGES_PER_ROUND: usize = 256;

/// The round's batch is written once it holds this many keys (TiKV's `WRITE_BATCH_MAX_KEYS`),
/// so that the first regions of a long round are not kept waiting.
const WRITE_BATCH_MAX_KEYS: usize = 256;

impl<EK: KvEngine, ER: RaftLogEngine> PollHandler<ApplyFsm<EK>, ApplyControlFsm>
    for ApplyPoller<EK, ER>
{
    fn begin(&mut self, _batch_size: usize) {}

    fn handle_control(&mut self, control: &mut ApplyControlFsm) -> Option<usize> {
        while control.receiver.try_recv().is_ok() {}
        Some(0)
    }

    fn handle_normal(&mut self, fsm: &mut ApplyFsm<EK>) -> HandleResult {
        let started = Instant::now();
        let mut ctx = self
            .round
            .take()
            .unwrap_or_else(|| ApplyContext::new(&self.kv));
        let keys_before = ctx.batch.count();
        let mut handled = 0;
        let mut more = false;
        while handled < MAX_MESSAGES_PER_ROUND && !fsm.stopped {
            match fsm.receiver.try_recv() {
                Ok(msg) => {
                    handled += 1;
                    self.handle_msg(fsm, msg, &mut ctx);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
            if handled == MAX_MESSAGES_PER_ROUND {
                more = true;
            }
        }
        let wrote = ctx.batch.count() != keys_before;
        self.stage(fsm, &mut ctx, wrote, started);
        if fsm.stopped || ctx.batch.count() >= WRITE_BATCH_MAX_KEYS {
            // A stopped region's last writes go out before it is destroyed.
            self.write_staged(&mut ctx);
        }
        self.round = Some(ctx);
        if fsm.stopped {
            // Drain what arrived after Destroy (or after the error that stopped it).
            while let Ok(msg) = fsm.receiver.try_recv() {
                match msg {
                    ApplyMsg::Apply(task) => {
                        for proposal in task.proposals {
                            proposal
                                .callback
                                .invoke_undetermined(stopped_undetermined(fsm.region.id), 0);
                        }
                    }
                    ApplyMsg::Destroy => fsm.destroyed = true,
                    ApplyMsg::Snapshot { .. } => {}
                }
            }
            if std::mem::take(&mut fsm.destroyed) {
                // Everything it applied is written (above): the peer may delete the data.
                let _ = self
                    .router
                    .force_send(fsm.region.id, PeerMsg::ApplyDestroyed);
            }
        }
        if more {
            HandleResult::KeepProcessing
        } else {
            HandleResult::stop_at(0)
        }
    }

    fn end(&mut self, normals: &mut [Option<NormalFsm<ApplyFsm<EK>>>]) {
        if let Some(mut ctx) = self.round.take() {
            self.write_staged(&mut ctx);
            self.round = Some(ctx);
        }
        if !self.failed.is_empty() {
            for fsm in normals.iter_mut().flatten() {
                if !fsm.stopped && self.failed.contains(&fsm.region.id) {
                    self.stop_on_error(fsm);
                }
            }
            self.failed.clear();
        }
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> ApplyPoller<EK, ER> {
    fn handle_msg(
        &mut self,
        fsm: &mut ApplyFsm<EK>,
        msg: ApplyMsg<EK::Snapshot>,
        ctx: &mut ApplyContext<EK>,
    ) {
        match msg {
            ApplyMsg::Apply(task) => {
                crate::metrics::APPLY_WAIT_DURATION.observe(task.sent_at.elapsed().as_secs_f64());
                fsm.pending.extend(task.proposals);
                for entry in task.entries {
                    if entry.index <= fsm.apply_state.applied_index {
                        continue;
                    }
                    if fsm.removed {
                        // Entries after this replica's own removal are not its business, and
                        // its data is about to be deleted; applying them could write it back.
                        break;
                    }
                    if let Err(e) = apply_entry(fsm, &entry, ctx, &self.kv) {
                        // An entry that cannot be applied would make replicas diverge; stop
                        // applying this region and say why, rather than skip it.
                        error!(region_id = fsm.region.id, index = entry.index, error = %e, "failed to apply entry; region stops applying");
                        self.stop_on_error(fsm);
                        return;
                    }
                }
            }
            ApplyMsg::Snapshot {
                region,
                apply_state,
                peer_id,
            } => {
                fsm.region = region;
                fsm.apply_state = apply_state;
                fsm.peer_id = peer_id;
            }
            ApplyMsg::Destroy => {
                for proposal in fsm.pending.drain(..) {
                    proposal
                        .callback
                        .invoke_undetermined(stopped_undetermined(fsm.region.id), 0);
                }
                fsm.stopped = true;
                fsm.destroyed = true;
            }
        }
    }

    /// Stops applying the region after an error: what waits is answered undetermined (the
    /// entries are committed; other replicas apply them), and the peer is told, so that it
    /// stops serving and can start over from a snapshot.
    fn stop_on_error(&mut self, fsm: &mut ApplyFsm<EK>) {
        fsm.stopped = true;
        for proposal in fsm.pending.drain(..) {
            proposal
                .callback
                .invoke_undetermined(stopped_undetermined(fsm.region.id), 0);
        }
        let _ = self.router.force_send(fsm.region.id, PeerMsg::ApplyStopped);
    }

    fn new(kv: EK, router: RaftRouter<EK, ER>) -> Self {
        ApplyPoller {
            kv,
            router,
            round: None,
            staged: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Adds the region's apply state to the round's batch (`wrote`: whether it put anything
    /// in the batch this round) and keeps its answers and report until the batch is written.
    fn stage(
        &mut self,
        fsm: &mut ApplyFsm<EK>,
        ctx: &mut ApplyContext<EK>,
        wrote: bool,
        started: Instant,
    ) {
        if !ctx.applied_any && ctx.callbacks.is_empty() && !wrote {
            return;
        }
        ctx.applied_any = false;
        let callbacks = std::mem::take(&mut ctx.callbacks);
        let res = ApplyRes {
            region_id: RegionId(fsm.region.id),
            apply_state: fsm.apply_state,
            exec_results: std::mem::take(&mut ctx.results),
            written_bytes: std::mem::take(&mut ctx.written_bytes),
            written_keys: std::mem::take(&mut ctx.written_keys),
            written_commit_keys: std::mem::take(&mut ctx.written_commit_keys),
        };
        if let Err(e) = ctx.batch.put_cf(
            CF_RAFT,
            &keys::apply_state_key(fsm.region.id),
            &fsm.apply_state.encode_to_vec(),
        ) {
            // Its data may go out with the batch; without the apply state it is applied again
            // after a restart, which rewrites the same values.
            error!(region_id = fsm.region.id, error = %e, "failed to stage the apply state; region stops applying");
            self.stop_on_error(fsm);
            answer_undetermined(RegionId(fsm.region.id), callbacks);
            return;
        }
        self.staged.push(Staged {
            callbacks,
            res,
            started,
        });
    }

    /// Writes the round's batch, then answers and reports for every region in it. If the
    /// write fails, their proposals are answered undetermined (the entries are committed;
    /// other replicas apply them) and the regions stop applying at the round's end.
    fn write_staged(&mut self, ctx: &mut ApplyContext<EK>) {
        if self.staged.is_empty() && ctx.batch.is_empty() {
            return;
        }
        let written = if ctx.batch.is_empty() {
            Ok(())
        } else {
            ctx.batch.write_opt(WriteOptions { sync: false })
        };
        ctx.batch.clear();
        if let Err(e) = written {
            error!(regions = self.staged.len(), error = %e, "failed to write applied data; the regions stop applying");
            for staged in self.staged.drain(..) {
                self.failed.push(staged.res.region_id.get());
                answer_undetermined(staged.res.region_id, staged.callbacks);
            }
            return;
        }
        for staged in self.staged.drain(..) {
            for (callback, response) in staged.callbacks {
                callback.invoke_with_response(response);
            }
            crate::metrics::APPLY_LOG_DURATION.observe(staged.started.elapsed().as_secs_f64());
            let region_id = staged.res.region_id.get();
            if self
                .router
                .force_send(region_id, PeerMsg::ApplyRes(Box::new(staged.res)))
                .is_err()
            {
                warn!(region_id, "peer fsm is gone; apply result dropped");
            }
        }
    }

    /// Stages the region's round and writes the batch at once, as a round of this region
    /// alone would.
    #[cfg(test)]
    fn flush(&mut self, fsm: &mut ApplyFsm<EK>, mut ctx: ApplyContext<EK>) {
        let wrote = !ctx.batch.is_empty();
        self.stage(fsm, &mut ctx, wrote, Instant::now());
        self.write_staged(&mut ctx);
        if self.failed.contains(&fsm.region.id) && !fsm.stopped {
            self.stop_on_error(fsm);
        }
        self.failed.clear();
    }
}

fn answer_undetermined<S: engine_traits::Snapshot>(
    region_id: RegionId,
    callbacks: Vec<(Callback<S>, RaftCmdResponse)>,
) {
    let undetermined = Undetermined {
        region_id,
        reason: "this replica failed to write the applied entry",
    };
    for (callback, _) in callbacks {
        callback.invoke_undetermined(undetermined.clone(), 0);
    }
}

/// Finds the proposal of the entry `(index, term)` being applied and answers the ones before it.
///
/// A proposal at this index but of another term was overwritten: a log index holds one
/// committed entry, so it was certainly not applied (StaleCommand, which clients retry). A
/// proposal below this index was never seen here: its entry came in a snapshot or was applied
/// before this FSM started, so whether it was the proposal's own entry is unknown.
fn take_proposal<EK: KvEngine>(
    fsm: &mut ApplyFsm<EK>,
    index: LogIndex,
    term: Term,
) -> Option<Callback<EK::Snapshot>> {
    while let Some(front) = fsm.pending.front() {
        if front.index > index {
            return None;
        }
        let proposal = fsm.pending.pop_front().expect("front exists");
        if proposal.index < index {
            let undetermined = Undetermined {
                region_id: RegionId(fsm.region.id),
                reason: "its log entry was replaced by a snapshot before this replica applied it",
            };
            proposal
                .callback
                .invoke_undetermined(undetermined, term.get());
        } else if proposal.term == term {
            return Some(proposal.callback);
        } else {
            proposal
                .callback
                .invoke_with_error(Error::StaleCommand, term.get());
        }
    }
    None
}

fn stopped_undetermined(region_id: u64) -> Undetermined {
    Undetermined {
        region_id: RegionId(region_id),
        reason: "the replica was destroyed or stopped applying before the entry's fate was known",
    }
}

fn apply_entry<EK: KvEngine>(
    fsm: &mut ApplyFsm<EK>,
    entry: &Entry,
    ctx: &mut ApplyContext<EK>,
    kv: &EK,
) -> Result<()> {
    // Fails one replica's apply (the fail point names its peer).
    fail::fail_point!(
        &format!("apply_entry_error_{}", fsm.peer_id.get()),
        |_| Err(Error::FailPoint("apply_entry_error"))
    );
    let index = entry.index;
    let term = entry.term;
    let response = match entry.get_entry_type() {
        EntryType::EntryNormal if entry.data.is_empty() => None,
        EntryType::EntryNormal => {
            let request =
                RaftCmdRequest::decode(entry.data.clone()).map_err(|e| Error::Corrupt {
                    what: format!("entry {index}"),
                    reason: e.to_string(),
                })?;
            Some(exec_command(fsm, &request, term, ctx, kv))
        }
        EntryType::EntryConfChange => {
            let conf_change =
                ConfChange::parse_from_bytes(&entry.data).map_err(|e| Error::Corrupt {
                    what: format!("conf change entry {index}"),
                    reason: e.to_string(),
                })?;
            let request =
                RaftCmdRequest::decode(entry.context.as_ref()).map_err(|e| Error::Corrupt {
                    what: format!("conf change context {index}"),
                    reason: e.to_string(),
                })?;
            Some(exec_change_peer(fsm, &request, conf_change, term, ctx))
        }
        EntryType::EntryConfChangeV2 => {
            return Err(Error::InvalidRequest(
                "joint consensus entries are not supported".into(),
            ));
        }
    };
    fsm.apply_state.applied_index = index;
    fsm.apply_state.applied_term = term;
    ctx.applied_any = true;
    crate::metrics::APPLIED_ENTRIES.inc();
    let callback = take_proposal(fsm, LogIndex(index), Term(term));
    if let (Some(callback), Some(response)) = (callback, response) {
        ctx.callbacks.push((callback, response));
    }
    Ok(())
}

fn exec_command<EK: KvEngine>(
    fsm: &mut ApplyFsm<EK>,
    request: &RaftCmdRequest,
    term: u64,
    ctx: &mut ApplyContext<EK>,
    kv: &EK,
) -> RaftCmdResponse {
    if let Err(e) = util::check_region_epoch(request, &fsm.region) {
        return error_response(e, term);
    }
    if let Some(admin) = &request.admin_request {
        return match admin.cmd_type() {
            AdminCmdType::BatchSplit => match exec_batch_split(fsm, request, ctx, kv) {
                Ok(regions) => {
                    let mut response = ok_response(term);
                    response.admin_response = Some(AdminResponse {
                        cmd_type: AdminCmdType::BatchSplit as i32,
                        splits: Some(BatchSplitResponse { regions }),
                        ..Default::default()
                    });
                    response
                }
                Err(e) => error_response(e, term),
            },
            other => error_response(
                Error::InvalidRequest(format!("unexpected admin command {other:?} in the log")),
                term,
            ),
        };
    }
    if let Err(e) = util::check_write_keys(request, &fsm.region) {
        return error_response(e, term);
    }
    // Every request is checked before any reaches the batch: a command answered with an error
    // must have written nothing.
    let writes = match request
        .requests
        .iter()
        .map(check_write)
        .collect::<Result<Vec<_>>>()
    {
        Ok(writes) => writes,
        Err(e) => return error_response(e, term),
    };
    let mut response = ok_response(term);
    for (req, write) in request.requests.iter().zip(writes) {
        if let Err(e) = exec_write(write, ctx) {
            return error_response(e, term);
        }
        response.responses.push(Response {
            cmd_type: req.cmd_type,
        });
    }
    response
}

fn cf_name(cf: &str) -> Result<&'static str> {
    engine_traits::data_cf(cf)
        .ok_or_else(|| Error::InvalidRequest(format!("unknown column family {cf:?}")))
}

/// A write request that has been checked: adding it to a batch fails only if the engine lacks
/// one of the column families every engine opens with.
pub(crate) enum Write<'a> {
    Put {
        cf: &'static str,
        put: &'a PutRequest,
    },
    Delete {
        cf: &'static str,
        delete: &'a DeleteRequest,
    },
    DeleteRange {
        cf: &'static str,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// Checks that `req` is a write with a body, a known column family and (for a range) a start
/// not after its end.
pub(crate) fn check_write(req: &Request) -> Result<Write<'_>> {
    match req.cmd_type() {
        CmdType::Put => {
            let put = req
                .put
                .as_ref()
                .ok_or_else(|| Error::InvalidRequest("put without body".into()))?;
            Ok(Write::Put {
                cf: cf_name(&put.cf)?,
                put,
            })
        }
        CmdType::Delete => {
            let delete = req
                .delete
                .as_ref()
                .ok_or_else(|| Error::InvalidRequest("delete without body".into()))?;
            Ok(Write::Delete {
                cf: cf_name(&delete.cf)?,
                delete,
            })
        }
        CmdType::DeleteRange => {
            let range = req
                .delete_range
                .as_ref()
                .ok_or_else(|| Error::InvalidRequest("delete range without body".into()))?;
            let start = keys::data_key(&range.start_key);
            let end = keys::data_end_key(&range.end_key);
            engine_traits::Error::check_bounded_range(&start, &end)?;
            Ok(Write::DeleteRange {
                cf: cf_name(&range.cf)?,
                start,
                end,
            })
        }
        CmdType::Snap | CmdType::Invalid => Err(Error::InvalidRequest(format!(
            "{:?} is not a write",
            req.cmd_type()
        ))),
    }
}

fn exec_write<EK: KvEngine>(write: Write<'_>, ctx: &mut ApplyContext<EK>) -> Result<()> {
    match write {
        Write::Put { cf, put } => {
            ctx.batch
                .put_cf(cf, &keys::data_key(&put.key), &put.value)?;
            ctx.written_bytes += (put.key.len() + put.value.len()) as u64;
            ctx.written_keys += 1;
            ctx.written_commit_keys += u64::from(cf == engine_traits::CF_WRITE);
        }
        Write::Delete { cf, delete } => {
            ctx.batch.delete_cf(cf, &keys::data_key(&delete.key))?;
            ctx.written_keys += 1;
        }
        Write::DeleteRange { cf, start, end } => {
            ctx.batch.delete_range_cf(cf, &start, &end)?;
        }
    }
    Ok(())
}

pub(crate) fn put_region_state(
    batch: &mut impl Mutable,
    region: &metapb::Region,
    state: PeerState,
) -> Result<()> {
    let local = RegionLocalState {
        state: state as i32,
        region: Some(region.clone()),
    };
    batch.put_cf(
        CF_RAFT,
        &keys::region_state_key(region.id),
        &local.encode_to_vec(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
