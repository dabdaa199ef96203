//! A peer never votes twice in one term, whatever restarts in between.

use std::sync::Arc;

use kvproto::metapb;
use kvproto::raft_serverpb::RaftMessage;
use parking_lot::Mutex;
use protobuf::Message as _;
use raft::eraftpb::{self, MessageType};
use raftstore::RouterHandle;
use test_raftstore::{Cluster, ClusterConfig, Verdict};

const REGION: u64 = 9_999;

fn peer(id: u64, store_id: u64) -> metapb::Peer {
    metapb::Peer {
        id,
        store_id,
        ..Default::default()
    }
}

/// A vote request of `candidate` for `REGION` at `term`, to peer 100 on `to_store`.
fn vote_request(candidate: metapb::Peer, to_store: u64, term: u64) -> RaftMessage {
    let mut m = eraftpb::Message::default();
    m.set_msg_type(MessageType::MsgRequestVote);
    m.from = candidate.id;
    m.to = 100;
    m.term = term;
    m.log_term = 6;
    m.index = 6;
    RaftMessage {
        region_id: REGION,
        from_peer: Some(candidate),
        to_peer: Some(peer(100, to_store)),
        message: m.write_to_bytes().unwrap().into(),
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: 2,
            version: 2,
        }),
        ..Default::default()
    }
}

/// Issue 9, bugs 9 and 10. A peer created by a vote request (uninitialized: no data yet) votes
/// and its store restarts; such a peer is not reloaded at start, and the next message
/// recreates it. It must keep the vote it cast: granting a second candidate in the same term
/// would let two leaders be elected. (Recreating a peer wiped its raft state.)
#[test]
fn an_uninitialized_peer_remembers_its_vote_across_a_restart() {
    let cluster = Cluster::new(ClusterConfig::with_spare_store());
    cluster.start();
    let ids = cluster.store_ids();
    let voter_store = ids[3];
    let answers: Arc<Mutex<Vec<(u64, bool)>>> = Arc::default();
    let seen = answers.clone();
    cluster.add_filter(move |_: u64, _: u64, msg: &RaftMessage| {
        if msg.region_id != REGION {
            return Verdict::Deliver;
        }
        let m = eraftpb::Message::parse_from_bytes(&msg.message).unwrap();
        if m.get_msg_type() == MessageType::MsgRequestVoteResponse {
            seen.lock().push((m.to, m.reject));
        }
        Verdict::Drop
    });
    let ask = |candidate: metapb::Peer| {
        let before = answers.lock().len();
        cluster
            .router(voter_store)
            .unwrap()
            .send_raft_message(vote_request(candidate, voter_store, 10));
        cluster.wait_until(std::time::Duration::from_secs(10), "a vote answer", || {
            answers.lock().len() > before
        });
        *answers.lock().last().unwrap()
    };

    assert_eq!(
        ask(peer(201, ids[0])),
        (201, false),
        "the first candidate gets the vote"
    );
    cluster.stop_store(voter_store);
    cluster.start_store(voter_store);
    assert_eq!(
        ask(peer(202, ids[1])),
        (202, true),
        "voted twice in term 10"
    );
}
