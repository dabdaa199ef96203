//! Filters on raft messages between the stores of an in-process cluster (TiKV's
//! `test_raftstore` filters): partitions, an isolated store, dropped message types, random
//! drops and delays. Every message passes every installed filter; the first that drops it
//! wins, and the longest delay asked for applies.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kvproto::raft_serverpb::RaftMessage;
use protobuf::Message as _;
use raft::eraftpb::{self, MessageType};

use crate::rng::SeededRng;

/// What becomes of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    Drop,
    /// Deliver after this long (messages delayed by different amounts overtake each other).
    Delay(Duration),
}

/// Decides the fate of raft messages. `from` and `to` are store ids.
pub trait Filter: Send + Sync {
    fn verdict(&self, from: u64, to: u64, msg: &RaftMessage) -> Verdict;
}

impl<F: Fn(u64, u64, &RaftMessage) -> Verdict + Send + Sync> Filter for F {
    fn verdict(&self, from: u64, to: u64, msg: &RaftMessage) -> Verdict {
        self(from, to, msg)
    }
}

/// The raft-rs message type inside a raft message; tombstones and hibernation messages have
/// none.
pub fn message_type(msg: &RaftMessage) -> Option<MessageType> {
    if msg.is_tombstone || msg.extra_msg.is_some() {
        return None;
    }
    eraftpb::Message::parse_from_bytes(&msg.message)
        .ok()
        .map(|m| m.get_msg_type())
}

/// Stores in different groups cannot talk; stores in no group talk to nobody.
pub struct Partition {
    groups: Vec<HashSet<u64>>,
}

impl Partition {
    pub fn new(groups: &[&[u64]]) -> Self {
        Partition {
            groups: groups.iter().map(|g| g.iter().copied().collect()).collect(),
        }
    }
}

impl Filter for Partition {
    fn verdict(&self, from: u64, to: u64, _: &RaftMessage) -> Verdict {
        let together = self
            .groups
            .iter()
            .any(|g| g.contains(&from) && g.contains(&to));
        if together {
            Verdict::Deliver
        } else {
            Verdict::Drop
        }
    }
}

/// Cuts one store off from all others, both ways.
pub struct Isolate(pub u64);

impl Filter for Isolate {
    fn verdict(&self, from: u64, to: u64, _: &RaftMessage) -> Verdict {
        if from == self.0 || to == self.0 {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }
}

/// Drops messages of one raft type, optionally only those of one region or to one store.
pub struct DropType {
    pub msg_type: MessageType,
    pub region_id: Option<u64>,
    pub to_store: Option<u64>,
}

impl DropType {
    pub fn all(msg_type: MessageType) -> Self {
        DropType {
            msg_type,
            region_id: None,
            to_store: None,
        }
    }
}

impl Filter for DropType {
    fn verdict(&self, _: u64, to: u64, msg: &RaftMessage) -> Verdict {
        let matches = self.region_id.is_none_or(|r| r == msg.region_id)
            && self.to_store.is_none_or(|s| s == to)
            && message_type(msg) == Some(self.msg_type);
        if matches {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }
}

/// Drops each message with probability `p`, from a seeded generator.
pub struct RandomDrop {
    pub p: f64,
    pub rng: Arc<SeededRng>,
}

impl Filter for RandomDrop {
    fn verdict(&self, _: u64, _: u64, _: &RaftMessage) -> Verdict {
        if self.rng.chance(self.p) {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    }
}

/// Delays each message by a seeded random amount up to `max`, which also reorders them.
pub struct RandomDelay {
    pub max: Duration,
    pub rng: Arc<SeededRng>,
}

impl Filter for RandomDelay {
    fn verdict(&self, _: u64, _: u64, _: &RaftMessage) -> Verdict {
        let micros = self.rng.below(self.max.as_micros().max(1) as u64);
        Verdict::Delay(Duration::from_micros(micros))
    }
}

/// Delays every message by a fixed amount.
pub struct Delay(pub Duration);

impl Filter for Delay {
    fn verdict(&self, _: u64, _: u64, _: &RaftMessage) -> Verdict {
        Verdict::Delay(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(msg_type: MessageType, region_id: u64) -> RaftMessage {
        let mut m = eraftpb::Message::default();
        m.set_msg_type(msg_type);
        RaftMessage {
            region_id,
            message: m.write_to_bytes().unwrap().into(),
            ..Default::default()
        }
    }

    #[test]
    fn partition_and_isolate() {
        let m = msg(MessageType::MsgAppend, 1);
        let p = Partition::new(&[&[1], &[2, 3]]);
        assert_eq!(p.verdict(1, 2, &m), Verdict::Drop);
        assert_eq!(p.verdict(2, 3, &m), Verdict::Deliver);
        assert_eq!(p.verdict(3, 4, &m), Verdict::Drop);
        let i = Isolate(2);
        assert_eq!(i.verdict(1, 2, &m), Verdict::Drop);
        assert_eq!(i.verdict(2, 3, &m), Verdict::Drop);
        assert_eq!(i.verdict(1, 3, &m), Verdict::Deliver);
    }

    #[test]
    fn drop_type_matches_type_region_and_store() {
        let f = DropType {
            msg_type: MessageType::MsgAppend,
            region_id: Some(1),
            to_store: Some(2),
        };
        assert_eq!(
            f.verdict(1, 2, &msg(MessageType::MsgAppend, 1)),
            Verdict::Drop
        );
        assert_eq!(
            f.verdict(1, 3, &msg(MessageType::MsgAppend, 1)),
            Verdict::Deliver
        );
        assert_eq!(
            f.verdict(1, 2, &msg(MessageType::MsgAppend, 2)),
            Verdict::Deliver
        );
        assert_eq!(
            f.verdict(1, 2, &msg(MessageType::MsgHeartbeat, 1)),
            Verdict::Deliver
        );
    }

    #[test]
    fn random_filters_replay_from_their_seed() {
        let m = msg(MessageType::MsgAppend, 1);
        let run = |seed| {
            let f = RandomDrop {
                p: 0.5,
                rng: Arc::new(SeededRng::new(seed)),
            };
            (0..64).map(|_| f.verdict(1, 2, &m)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert!(run(3).contains(&Verdict::Drop) && run(3).contains(&Verdict::Deliver));
        let d = RandomDelay {
            max: Duration::from_millis(10),
            rng: Arc::new(SeededRng::new(3)),
        };
        for _ in 0..64 {
            match d.verdict(1, 2, &m) {
                Verdict::Delay(t) => assert!(t < Duration::from_millis(10)),
                other => panic!("{other:?}"),
            }
        }
    }
}
