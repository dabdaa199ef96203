//! Tests of the apply side: committed entries go through the apply poller's own message
//! handling and flush into an in-memory engine; the tests check the engine, the answers to
//! proposals and the results reported to the raft side.

use std::collections::BTreeMap;
use std::time::Instant;

use crossbeam::channel::{self, Receiver};
use engine_memory::{MemoryEngine, MemorySnapshot};
use engine_traits::{
    CfName, Iterable, KvEngine, Peekable, WriteBatch, WriteOptions, ALL_CFS, CF_DEFAULT, CF_LOCK,
    CF_RAFT, CF_WRITE,
};
use kvproto::errorpb;
use kvproto::metapb;
use kvproto::raft_cmdpb::{
    AdminCmdType, AdminRequest, BatchSplitRequest, ChangePeerRequest, ChangePeerType, CmdType,
    DeleteRangeRequest, DeleteRequest, PutRequest, RaftCmdRequest, RaftCmdResponse,
    RaftRequestHeader, Request, SplitRequest,
};
use kvproto::raft_serverpb::{PeerState, RaftApplyState, RaftTruncatedState};
use prost::Message as _;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType};
use raft_log_engine::RaftEngineLog;
use types::{PeerId, RegionId};

use super::{ApplyContext, ApplyFsm, ApplyMsg, ApplyPoller, ApplyTask, Proposal};
use crate::config::Config;
use crate::fsm::store::{create_raft_system, RaftSystemBuilder};
use crate::msg::{Callback, ExecResult, Undetermined, WriteResult};
use crate::peer_storage::{
    load_apply_state, load_region_state, write_initial_apply_state, RAFT_INIT_LOG_INDEX,
    RAFT_INIT_LOG_TERM,
};

const REGION_ID: u64 = 1;
/// This store's peer of region 1 (store 1).
const PEER_ID: u64 = 11;
/// The term of the entries applied; the region's log starts at `RAFT_INIT_LOG_TERM`.
const TERM: u64 = RAFT_INIT_LOG_TERM + 1;
/// The index of the first entry after the region's initial state.
const FIRST_INDEX: u64 = RAFT_INIT_LOG_INDEX + 1;

fn epoch(conf_ver: u64, version: u64) -> metapb::RegionEpoch {
    metapb::RegionEpoch { conf_ver, version }
}

fn peer(id: u64, store_id: u64) -> metapb::Peer {
    metapb::Peer {
        id,
        store_id,
        ..Default::default()
    }
}

/// Region `id` over `[start, end)` with one peer on each of stores 1 to 3, peer ids
/// `id * 10 + store_id` (the ids the split requests below allocate).
fn region(id: u64, start: &[u8], end: &[u8], epoch: metapb::RegionEpoch) -> metapb::Region {
    metapb::Region {
        id,
        start_key: start.to_vec(),
        end_key: end.to_vec(),
        region_epoch: Some(epoch),
        peers: (1..=3).map(|store| peer(id * 10 + store, store)).collect(),
        ..Default::default()
    }
}

/// The region the tests start from: `[b, m)`, conf_ver 1, version 2.
fn initial_region() -> metapb::Region {
    region(REGION_ID, b"b", b"m", epoch(1, 2))
}

fn header(epoch: metapb::RegionEpoch) -> Option<RaftRequestHeader> {
    Some(RaftRequestHeader {
        region_id: REGION_ID,
        region_epoch: Some(epoch),
        ..Default::default()
    })
}

fn write_command(epoch: metapb::RegionEpoch, requests: Vec<Request>) -> RaftCmdRequest {
    RaftCmdRequest {
        header: header(epoch),
        requests,
        admin_request: None,
    }
}

fn admin_command(epoch: metapb::RegionEpoch, admin: AdminRequest) -> RaftCmdRequest {
    RaftCmdRequest {
        header: header(epoch),
        requests: vec![],
        admin_request: Some(admin),
    }
}

fn put(cf: &str, key: &[u8], value: &[u8]) -> Request {
    Request {
        cmd_type: CmdType::Put as i32,
        put: Some(PutRequest {
            cf: cf.to_string(),
            key: key.to_vec(),
            value: value.to_vec().into(),
        }),
        ..Default::default()
    }
}

fn delete(cf: &str, key: &[u8]) -> Request {
    Request {
        cmd_type: CmdType::Delete as i32,
        delete: Some(DeleteRequest {
            cf: cf.to_string(),
            key: key.to_vec(),
        }),
        ..Default::default()
    }
}

fn delete_range(cf: &str, start: &[u8], end: &[u8]) -> Request {
    Request {
        cmd_type: CmdType::DeleteRange as i32,
        delete_range: Some(DeleteRangeRequest {
            cf: cf.to_string(),
            start_key: start.to_vec(),
            end_key: end.to_vec(),
        }),
        ..Default::default()
    }
}

/// A split at `key` creating region `new_region_id`, with peer ids as [`region`] numbers them.
fn split(key: &[u8], new_region_id: u64) -> SplitRequest {
    SplitRequest {
        split_key: key.to_vec(),
        new_region_id,
        new_peer_ids: (1..=3).map(|store| new_region_id * 10 + store).collect(),
    }
}

fn split_command(epoch: metapb::RegionEpoch, requests: Vec<SplitRequest>) -> RaftCmdRequest {
    admin_command(
        epoch,
        AdminRequest {
            cmd_type: AdminCmdType::BatchSplit as i32,
            splits: Some(BatchSplitRequest { requests }),
            ..Default::default()
        },
    )
}

fn entry(index: u64, term: u64, entry_type: EntryType) -> Entry {
    let mut entry = Entry {
        index,
        term,
        ..Default::default()
    };
    entry.set_entry_type(entry_type);
    entry
}

/// A normal entry holding `command`, as `Peer::propose_write` proposes it.
fn command_entry(index: u64, command: &RaftCmdRequest) -> Entry {
    let mut entry = entry(index, TERM, EntryType::EntryNormal);
    entry.data = command.encode_to_vec().into();
    entry
}

/// A conf change entry as `Peer::propose_admin` proposes it: raft's `ConfChange` is the data,
/// the command is the context.
fn change_peer_entry(
    index: u64,
    epoch: metapb::RegionEpoch,
    change_type: ChangePeerType,
    peer: metapb::Peer,
) -> Entry {
    let command = admin_command(
        epoch,
        AdminRequest {
            cmd_type: AdminCmdType::ChangePeer as i32,
            change_peer: Some(ChangePeerRequest {
                change_type: change_type as i32,
                peer: Some(peer),
            }),
            ..Default::default()
        },
    );
    let mut conf_change = ConfChange::default();
    conf_change.set_change_type(match change_type {
        ChangePeerType::AddNode => ConfChangeType::AddNode,
        ChangePeerType::RemoveNode => ConfChangeType::RemoveNode,
        ChangePeerType::AddLearnerNode => ConfChangeType::AddLearnerNode,
    });
    conf_change.node_id = peer.id;
    conf_change.context = command.encode_to_vec().into();
    let mut entry = entry(index, TERM, EntryType::EntryConfChange);
    entry.data = conf_change
        .write_to_bytes()
        .expect("encode conf change")
        .into();
    entry.context = command.encode_to_vec().into();
    entry
}

/// A proposal at `(index, term)` and where its answer arrives. Answers are given while the
/// round is flushed, so they are there as soon as `Harness::apply` returns.
fn proposal(index: u64, term: u64) -> (Proposal<MemorySnapshot>, Receiver<WriteResult>) {
    let (sender, receiver) = channel::bounded(1);
    let callback = Callback::Write(Box::new(move |response| {
        sender.send(response).expect("the test holds the receiver");
    }));
    let proposal = Proposal {
        index: types::LogIndex(index),
        term: types::Term(term),
        callback,
        propose_time: Instant::now(),
    };
    (proposal, receiver)
}

fn answer(receiver: &Receiver<WriteResult>) -> RaftCmdResponse {
    receiver
        .try_recv()
        .expect("the proposal was answered")
        .expect("the outcome is known")
}

fn undetermined(receiver: &Receiver<WriteResult>) -> Undetermined {
    match receiver.try_recv().expect("the proposal was answered") {
        Err(undetermined) => undetermined,
        Ok(response) => panic!("answered as decided: {response:?}"),
    }
}

fn assert_ok(response: &RaftCmdResponse) {
    let error = response.header.as_ref().and_then(|h| h.error.as_ref());
    assert!(error.is_none(), "unexpected error {error:?}");
}

fn region_error(response: &RaftCmdResponse) -> &errorpb::Error {
    response
        .header
        .as_ref()
        .and_then(|h| h.error.as_ref())
        .expect("the response carries an error")
}

/// The apply FSM of [`initial_region`] on a store whose engine holds the region's initial
/// states, and the apply poller that drives it.
struct Harness {
    kv: MemoryEngine,
    poller: ApplyPoller<MemoryEngine, RaftEngineLog>,
    fsm: ApplyFsm<MemoryEngine>,
    /// Owns the raft router the poller reports to. No peer FSM is registered on it, so the
    /// reports are dropped; the tests take the results from the round's context instead.
    _raft_system: RaftSystemBuilder<MemoryEngine, RaftEngineLog>,
}

impl Harness {
    fn new() -> Self {
        let kv = MemoryEngine::new();
        // Messages are handed to the poller directly, so nothing is ever received here.
        let (fsm, _) = fsm_of(&kv, initial_region());
        assert_eq!(fsm.peer_id, PeerId(PEER_ID));
        let raft_system = create_raft_system(Config::default());
        let poller = ApplyPoller::new(kv.clone(), raft_system.router.clone());
        Harness {
            kv,
            poller,
            fsm,
            _raft_system: raft_system,
        }
    }

    fn epoch(&self) -> metapb::RegionEpoch {
        self.fsm
            .region
            .region_epoch
            .expect("the region has an epoch")
    }

    /// Hands `entries` and the proposals waiting on them to the FSM; what the round would
    /// write stays in the returned context until [`Harness::flush`].
    fn stage(
        &mut self,
        entries: Vec<Entry>,
        proposals: Vec<Proposal<MemorySnapshot>>,
    ) -> ApplyContext<MemoryEngine> {
        let mut ctx = ApplyContext::new(&self.kv);
        let task = ApplyTask {
            sent_at: Instant::now(),
            term: TERM,
            entries,
            proposals,
        };
        self.poller
            .handle_msg(&mut self.fsm, ApplyMsg::Apply(task), &mut ctx);
        ctx
    }

    fn flush(&mut self, ctx: ApplyContext<MemoryEngine>) {
        self.poller.flush(&mut self.fsm, ctx);
        assert!(!self.fsm.stopped, "the region stopped applying");
    }

    /// Applies `entries` in one round; returns the results reported to the raft side.
    fn apply(
        &mut self,
        entries: Vec<Entry>,
        proposals: Vec<Proposal<MemorySnapshot>>,
    ) -> Vec<ExecResult> {
        let mut ctx = self.stage(entries, proposals);
        let results = std::mem::take(&mut ctx.results);
        self.flush(ctx);
        results
    }

    /// Applies `entry`, proposed at its own index and term, alone; returns the answer to the
    /// proposal and the reported results.
    fn apply_proposed(&mut self, entry: Entry) -> (RaftCmdResponse, Vec<ExecResult>) {
        let (proposal, receiver) = proposal(entry.index, entry.term);
        let results = self.apply(vec![entry], vec![proposal]);
        (answer(&receiver), results)
    }

    fn get(&self, cf: CfName, key: &[u8]) -> Option<Vec<u8>> {
        self.kv
            .get_value_cf(cf, &keys::data_key(key))
            .expect("read data")
    }

    fn persisted_apply_state(&self, region_id: u64) -> RaftApplyState {
        load_apply_state(&self.kv, region_id)
            .expect("read apply state")
            .expect("apply state exists")
    }

    fn persisted_region(&self, region_id: u64) -> (PeerState, metapb::Region) {
        let state = load_region_state(&self.kv, region_id)
            .expect("read region state")
            .expect("region state exists");
        (
            state.state(),
            state.region.expect("region state has a region"),
        )
    }

    fn assert_applied(&self, index: u64, term: u64) {
        assert_eq!(
            (
                self.fsm.apply_state.applied_index,
                self.fsm.apply_state.applied_term
            ),
            (index, term)
        );
        let persisted = self.persisted_apply_state(REGION_ID);
        assert_eq!(
            (persisted.applied_index, persisted.applied_term),
            (index, term)
        );
    }

    /// Every key of every column family, except region 1's apply state.
    fn contents_except_apply_state(&self) -> BTreeMap<(CfName, Vec<u8>), Vec<u8>> {
        let apply_state_key = keys::apply_state_key(REGION_ID);
        let mut contents = BTreeMap::new();
        for &cf in ALL_CFS {
            self.kv
                .scan(cf, b"", b"", |key, value| {
                    if !(cf == CF_RAFT && key == apply_state_key.as_slice()) {
                        contents.insert((cf, key.to_vec()), value.to_vec());
                    }
                    Ok(true)
                })
                .expect("scan engine");
        }
        contents
    }
}

/// Writes a Normal region state for `region` and an apply state at the initial log index.
fn persist_initial_states(kv: &MemoryEngine, region: &metapb::Region) {
    let mut batch = kv.write_batch();
    write_initial_apply_state(&mut batch, region).expect("stage initial states");
    batch
        .write_opt(WriteOptions::default())
        .expect("write initial states");
}

#[test]
fn writes_land_under_data_keys_together_with_the_apply_state() {
    let mut h = Harness::new();
    let epoch = h.epoch();
    let first = write_command(
        epoch,
        vec![
            put(CF_DEFAULT, b"c1", b"v1"),
            put(CF_DEFAULT, b"c2", b"v2"),
            put("", b"c3", b"v3"),
            put(CF_LOCK, b"c2", b"lock"),
            put(CF_WRITE, b"c2", b"write"),
        ],
    );
    let second = write_command(
        epoch,
        vec![
            delete(CF_LOCK, b"c2"),
            delete_range(CF_DEFAULT, b"c1", b"c3"),
        ],
    );
    let (first_proposal, first_answer) = proposal(FIRST_INDEX, TERM);
    let (second_proposal, second_answer) = proposal(FIRST_INDEX + 1, TERM);
    let ctx = h.stage(
        vec![
            command_entry(FIRST_INDEX, &first),
            command_entry(FIRST_INDEX + 1, &second),
        ],
        vec![first_proposal, second_proposal],
    );

    // Until the round is flushed the engine has neither the data nor the new apply state.
    assert_eq!(h.fsm.apply_state.applied_index, FIRST_INDEX + 1);
    assert_eq!(h.get(CF_DEFAULT, b"c3"), None);
    assert_eq!(
        h.persisted_apply_state(REGION_ID).applied_index,
        RAFT_INIT_LOG_INDEX
    );
    assert!(first_answer.is_empty(), "answered before the write");

    h.flush(ctx);
    h.assert_applied(FIRST_INDEX + 1, TERM);
    assert_eq!(h.get(CF_DEFAULT, b"c1"), None);
    assert_eq!(h.get(CF_DEFAULT, b"c2"), None);
    assert_eq!(h.get(CF_DEFAULT, b"c3"), Some(b"v3".to_vec()));
    assert_eq!(h.get(CF_LOCK, b"c2"), None);
    // The range deletion was of the default column family only.
    assert_eq!(h.get(CF_WRITE, b"c2"), Some(b"write".to_vec()));
    // Data lives under the data key only.
    assert_eq!(h.kv.get_value_cf(CF_DEFAULT, b"c3").unwrap(), None);

    let first_response = answer(&first_answer);
    assert_ok(&first_response);
    let kinds: Vec<_> = first_response
        .responses
        .iter()
        .map(|r| r.cmd_type())
        .collect();
    assert_eq!(kinds, vec![CmdType::Put; 5]);
    let second_response = answer(&second_answer);
    assert_ok(&second_response);
    assert_eq!(second_response.header.unwrap().current_term, TERM);
}

#[test]
fn write_with_a_stale_version_is_rejected_after_a_split() {
    let mut h = Harness::new();
    let proposed_at = h.epoch();
    // The split is applied first and bumps the version the write was proposed with.
    let split = split_command(proposed_at, vec![split(b"f", 2)]);
    let write = write_command(proposed_at, vec![put(CF_DEFAULT, b"c", b"stale")]);
    let (write_proposal, write_answer) = proposal(FIRST_INDEX + 1, TERM);
    h.apply(
        vec![
            command_entry(FIRST_INDEX, &split),
            command_entry(FIRST_INDEX + 1, &write),
        ],
        vec![write_proposal],
    );

    let response = answer(&write_answer);
    let epoch_not_match = region_error(&response)
        .epoch_not_match
        .as_ref()
        .expect("epoch not match");
    assert_eq!(epoch_not_match.current_regions, vec![h.fsm.region.clone()]);
    assert_eq!(h.get(CF_DEFAULT, b"c"), None);
    h.assert_applied(FIRST_INDEX + 1, TERM);
}

#[test]
fn write_outside_the_region_is_rejected_as_a_whole() {
    let mut h = Harness::new();
    // Each command also puts an in-range key, which must not be written either.
    let cases: [(Request, &[u8]); 4] = [
        (put(CF_DEFAULT, b"a", b"v"), b"a"),
        (delete(CF_DEFAULT, b"m"), b"m"),
        (delete_range(CF_DEFAULT, b"k", b"n"), b"n"),
        (delete_range(CF_DEFAULT, b"k", b""), b""),
    ];
    for (index, (outside, key)) in (FIRST_INDEX..).zip(cases) {
        let command = write_command(h.epoch(), vec![put(CF_DEFAULT, b"c", b"v"), outside]);
        let (response, _) = h.apply_proposed(command_entry(index, &command));
        let error = region_error(&response)
            .key_not_in_region
            .as_ref()
            .expect("key not in region");
        assert_eq!((error.region_id, error.key.as_slice()), (REGION_ID, key));
        assert_eq!(h.get(CF_DEFAULT, b"c"), None);
        h.assert_applied(index, TERM);
    }
}

#[test]
fn command_failing_at_apply_writes_none_of_its_requests() {
    let mut h = Harness::new();
    let without_body = Request {
        cmd_type: CmdType::Put as i32,
        ..Default::default()
    };
    let cases = [
        put("no-such-cf", b"d", b"v"),
        delete_range(CF_DEFAULT, b"f", b"d"),
        without_body,
    ];
    for (index, bad) in (FIRST_INDEX..).zip(cases) {
        let command = write_command(h.epoch(), vec![put(CF_DEFAULT, b"c", b"v"), bad]);
        let (response, _) = h.apply_proposed(command_entry(index, &command));
        region_error(&response);
        assert_eq!(h.get(CF_DEFAULT, b"c"), None, "entry {index}");
        h.assert_applied(index, TERM);
    }
}

#[test]
fn empty_entry_only_advances_the_applied_index() {
    let mut h = Harness::new();
    let before = h.contents_except_apply_state();
    // A proposal of the previous leader's term at the index the new leader's empty entry took.
    let (old_proposal, old_answer) = proposal(FIRST_INDEX, TERM - 1);
    let results = h.apply(
        vec![entry(FIRST_INDEX, TERM, EntryType::EntryNormal)],
        vec![old_proposal],
    );

    assert!(results.is_empty());
    h.assert_applied(FIRST_INDEX, TERM);
    assert_eq!(h.contents_except_apply_state(), before);
    assert!(region_error(&answer(&old_answer)).stale_command.is_some());
}

/// A proposal whose index this FSM never applied (a snapshot covered it) may or may not have
/// been the entry there: it is answered undetermined, never as a retryable StaleCommand.
#[test]
fn a_proposal_below_the_applied_entry_is_undetermined() {
    let mut h = Harness::new();
    let (covered, covered_answer) = proposal(FIRST_INDEX, TERM);
    let (ours, our_answer) = proposal(FIRST_INDEX + 1, TERM);
    let command = write_command(h.epoch(), vec![put(CF_DEFAULT, b"c", b"v")]);
    h.apply(
        vec![command_entry(FIRST_INDEX + 1, &command)],
        vec![covered, ours],
    );
    assert_eq!(undetermined(&covered_answer).region_id, RegionId(REGION_ID));
    assert_ok(&answer(&our_answer));
}

#[test]
fn proposals_pending_at_destroy_are_undetermined() {
    let mut h = Harness::new();
    let (pending, pending_answer) = proposal(FIRST_INDEX + 5, TERM);
    let mut ctx = h.stage(vec![], vec![pending]);
    h.poller.handle_msg(&mut h.fsm, ApplyMsg::Destroy, &mut ctx);
    assert!(h.fsm.stopped);
    assert_eq!(undetermined(&pending_answer).region_id, RegionId(REGION_ID));
}

#[test]
fn entries_already_applied_are_skipped() {
    let mut h = Harness::new();
    let first = write_command(h.epoch(), vec![put(CF_DEFAULT, b"c", b"first")]);
    h.apply(vec![command_entry(FIRST_INDEX, &first)], vec![]);
    // Raft hands an entry again (say, after a restart before the apply state was written).
    let again = write_command(h.epoch(), vec![put(CF_DEFAULT, b"c", b"again")]);
    h.apply(vec![command_entry(FIRST_INDEX, &again)], vec![]);

    assert_eq!(h.get(CF_DEFAULT, b"c"), Some(b"first".to_vec()));
    h.assert_applied(FIRST_INDEX, TERM);
}

#[test]
fn batch_split_derives_the_left_region_and_creates_the_others() {
    let mut h = Harness::new();
    let command = split_command(h.epoch(), vec![split(b"d", 2), split(b"h", 3)]);
    let (response, results) = h.apply_proposed(command_entry(FIRST_INDEX, &command));

    // Two splits: the version moves by two, the configuration stays.
    let new_epoch = epoch(1, 4);
    let expected = vec![
        region(REGION_ID, b"b", b"d", new_epoch),
        region(2, b"d", b"h", new_epoch),
        region(3, b"h", b"m", new_epoch),
    ];
    assert_ok(&response);
    let admin = response.admin_response.expect("admin response");
    assert_eq!(admin.cmd_type(), AdminCmdType::BatchSplit);
    assert_eq!(admin.splits.expect("split response").regions, expected);
    match results.as_slice() {
        [ExecResult::Split { regions }] => assert_eq!(regions, &expected),
        other => panic!("unexpected results {other:?}"),
    }
    assert_eq!(h.fsm.region, expected[0]);
    for region in &expected {
        assert_eq!(
            h.persisted_region(region.id),
            (PeerState::Normal, region.clone())
        );
    }
    h.assert_applied(FIRST_INDEX, TERM);
    let initial = RaftApplyState {
        applied_index: RAFT_INIT_LOG_INDEX,
        applied_term: RAFT_INIT_LOG_TERM,
        truncated_state: Some(RaftTruncatedState {
            index: RAFT_INIT_LOG_INDEX,
            term: RAFT_INIT_LOG_TERM,
        }),
        commit_index: RAFT_INIT_LOG_INDEX,
        commit_term: RAFT_INIT_LOG_TERM,
    };
    assert_eq!(h.persisted_apply_state(2), initial);
    assert_eq!(h.persisted_apply_state(3), initial);
}

#[test]
fn batch_split_keeps_the_state_of_a_new_region_that_already_exists() {
    let mut h = Harness::new();
    // A peer of region 2 was created here by a raft message and got a newer snapshot.
    let newer = region(2, b"d", b"f", epoch(2, 7));
    persist_initial_states(&h.kv, &newer);
    let command = split_command(h.epoch(), vec![split(b"d", 2)]);
    let (response, _) = h.apply_proposed(command_entry(FIRST_INDEX, &command));

    assert_ok(&response);
    assert_eq!(h.persisted_region(2), (PeerState::Normal, newer));
    assert_eq!(h.fsm.region.end_key, b"d");
}

#[test]
fn invalid_batch_split_changes_nothing() {
    let mut h = Harness::new();
    let too_few_peer_ids = SplitRequest {
        new_peer_ids: vec![21],
        ..split(b"d", 2)
    };
    let cases = [
        vec![],
        vec![split(b"b", 2)],
        vec![split(b"m", 2)],
        vec![split(b"h", 2), split(b"d", 3)],
        vec![too_few_peer_ids],
    ];
    for (index, splits) in (FIRST_INDEX..).zip(cases) {
        let command = split_command(h.epoch(), splits);
        let (response, results) = h.apply_proposed(command_entry(index, &command));
        region_error(&response);
        assert!(results.is_empty());
        assert_eq!(h.fsm.region, initial_region());
        assert_eq!(
            h.persisted_region(REGION_ID),
            (PeerState::Normal, initial_region())
        );
        for new_region_id in [2, 3] {
            assert!(load_region_state(&h.kv, new_region_id).unwrap().is_none());
        }
        h.assert_applied(index, TERM);
    }
}

#[test]
fn change_peer_updates_peers_and_conf_ver() {
    let mut h = Harness::new();
    let added = peer(14, 4);
    // Adding a peer twice changes the peers once, but like every applied conf change it moves
    // conf_ver: raft applies it (as a no-op) too.
    let steps = [
        (ChangePeerType::AddNode, added, vec![11, 12, 13, 14], 2),
        (ChangePeerType::AddNode, added, vec![11, 12, 13, 14], 3),
        (ChangePeerType::RemoveNode, peer(12, 2), vec![11, 13, 14], 4),
    ];
    for (index, (change_type, target, peer_ids, conf_ver)) in (FIRST_INDEX..).zip(steps) {
        let entry = change_peer_entry(index, h.epoch(), change_type, target);
        let (response, results) = h.apply_proposed(entry);

        let region = h.fsm.region.clone();
        let ids: Vec<u64> = region.peers.iter().map(|p| p.id).collect();
        assert_eq!(ids, peer_ids);
        assert_eq!(h.epoch(), epoch(conf_ver, 2));
        assert_ok(&response);
        let admin = response.admin_response.expect("admin response");
        assert_eq!(admin.cmd_type(), AdminCmdType::ChangePeer);
        assert_eq!(
            admin.change_peer.and_then(|c| c.region),
            Some(region.clone())
        );
        match results.as_slice() {
            [ExecResult::ChangePeer {
                conf_change,
                region: reported,
            }] => {
                assert_eq!(conf_change.node_id, target.id);
                assert_eq!(reported, &region);
            }
            other => panic!("unexpected results {other:?}"),
        }
        assert_eq!(h.persisted_region(REGION_ID), (PeerState::Normal, region));
        h.assert_applied(index, TERM);
    }
}

/// A new replica joins as a learner and becomes a voter when promoted (issue 9, bug 10).
#[test]
fn a_learner_is_added_then_promoted() {
    let mut h = Harness::new();
    let learner = peer(14, 4);
    let entry = change_peer_entry(
        FIRST_INDEX,
        h.epoch(),
        ChangePeerType::AddLearnerNode,
        learner,
    );
    assert_ok(&h.apply_proposed(entry).0);
    let role = |h: &Harness| {
        h.fsm
            .region
            .peers
            .iter()
            .find(|p| p.id == 14)
            .map(|p| p.role)
    };
    assert_eq!(role(&h), Some(metapb::PeerRole::Learner as i32));
    let entry = change_peer_entry(FIRST_INDEX + 1, h.epoch(), ChangePeerType::AddNode, learner);
    assert_ok(&h.apply_proposed(entry).0);
    assert_eq!(role(&h), Some(metapb::PeerRole::Voter as i32));
    assert_eq!(h.fsm.region.peers.len(), 4);
    let (_, persisted) = h.persisted_region(REGION_ID);
    assert_eq!(persisted, h.fsm.region);
}

#[test]
fn removing_this_stores_peer_tombstones_the_region() {
    let mut h = Harness::new();
    let entry = change_peer_entry(
        FIRST_INDEX,
        h.epoch(),
        ChangePeerType::RemoveNode,
        peer(PEER_ID, 1),
    );
    let (response, _) = h.apply_proposed(entry);

    assert_ok(&response);
    let (state, region) = h.persisted_region(REGION_ID);
    assert_eq!(state, PeerState::Tombstone);
    assert!(region.peers.iter().all(|p| p.id != PEER_ID));
    assert_eq!(region.region_epoch, Some(epoch(2, 2)));
    h.assert_applied(FIRST_INDEX, TERM);
}

/// Entries after the one removing this replica are not applied: the peer is about to delete
/// the region's data, which a later write must not bring back.
#[test]
fn entries_after_this_replicas_removal_are_not_applied() {
    let mut h = Harness::new();
    let removal = change_peer_entry(
        FIRST_INDEX,
        h.epoch(),
        ChangePeerType::RemoveNode,
        peer(PEER_ID, 1),
    );
    let mut epoch_after = h.epoch();
    epoch_after.conf_ver += 1;
    let later = write_command(epoch_after, vec![put(CF_DEFAULT, b"c", b"late")]);
    h.apply(
        vec![removal, command_entry(FIRST_INDEX + 1, &later)],
        vec![],
    );

    assert_eq!(h.get(CF_DEFAULT, b"c"), None);
    h.assert_applied(FIRST_INDEX, TERM);
    assert_eq!(h.persisted_region(REGION_ID).0, PeerState::Tombstone);
}

/// The apply FSM of `region`, on `kv` where the region's initial states are, and the sender of
/// its mailbox.
fn fsm_of(
    kv: &MemoryEngine,
    region: metapb::Region,
) -> (
    ApplyFsm<MemoryEngine>,
    channel::Sender<ApplyMsg<MemorySnapshot>>,
) {
    persist_initial_states(kv, &region);
    let apply_state = load_apply_state(kv, region.id)
        .expect("read apply state")
        .expect("apply state was written");
    let peer_id = PeerId(region.id * 10 + 1);
    ApplyFsm::new(region, peer_id, apply_state)
}

#[test]
fn the_regions_of_a_round_share_one_write_and_are_answered_after_it() {
    use batch_system::PollHandler;

    let kv = MemoryEngine::new();
    let raft_system: RaftSystemBuilder<MemoryEngine, RaftEngineLog> =
        create_raft_system(Config::default());
    let mut poller: ApplyPoller<_, RaftEngineLog> =
        ApplyPoller::new(kv.clone(), raft_system.router.clone());
    let mut rounds = Vec::new();
    for (id, start, end, key) in [(1, &b""[..], &b"m"[..], &b"a"[..]), (2, b"m", b"", b"x")] {
        let (fsm, sender) = fsm_of(&kv, region(id, start, end, epoch(1, 2)));
        let mut command = write_command(epoch(1, 2), vec![put(CF_DEFAULT, key, b"v")]);
        command.header.as_mut().expect("header").region_id = id;
        let (proposal, answer) = proposal(FIRST_INDEX, TERM);
        let task = ApplyTask {
            sent_at: Instant::now(),
            term: TERM,
            entries: vec![command_entry(FIRST_INDEX, &command)],
            proposals: vec![proposal],
        };
        sender
            .send(ApplyMsg::Apply(task))
            .expect("fsm holds the receiver");
        rounds.push((fsm, sender, answer, key));
    }

    poller.begin(rounds.len());
    for (fsm, ..) in &mut rounds {
        poller.handle_normal(fsm);
    }
    // Both regions are applied in memory; nothing is in the engine or answered yet.
    let data = |key: &[u8]| {
        kv.get_value_cf(CF_DEFAULT, &keys::data_key(key))
            .expect("read data")
    };
    for (fsm, _, answer, key) in &rounds {
        assert_eq!(fsm.apply_state.applied_index, FIRST_INDEX);
        assert_eq!(data(key), None);
        assert!(answer.is_empty(), "answered before the write");
        let persisted = load_apply_state(&kv, fsm.region.id).unwrap().unwrap();
        assert_eq!(persisted.applied_index, RAFT_INIT_LOG_INDEX);
    }

    poller.end(&mut []);
    for (fsm, _, answer, key) in &rounds {
        assert_eq!(data(key), Some(b"v".to_vec()));
        assert_ok(&self::answer(answer));
        let persisted = load_apply_state(&kv, fsm.region.id).unwrap().unwrap();
        assert_eq!(persisted.applied_index, FIRST_INDEX);
    }
}
