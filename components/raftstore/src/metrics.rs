//! Prometheus metrics of raftstore, in the default registry (the status server renders it).

use std::sync::LazyLock;

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts,
};
use protobuf::ProtobufEnum as _;
use raft::eraftpb::MessageType;

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    prometheus::default_registry()
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

/// Proposals and reads by kind: `normal`, `conf_change`, `split`, `read_index`, `lease_read`.
pub static PROPOSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_raftstore_proposal_total",
                "Raft proposals and reads, by kind",
            ),
            &["type"],
        )
        .expect("valid metric"),
    )
});

/// Raft entries applied to the data engine.
pub static APPLIED_ENTRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new("tikv_raftstore_apply_entries_total", "Raft entries applied")
            .expect("valid metric"),
    )
});

/// Snapshots generated and applied.
pub static SNAPSHOTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_raftstore_snapshot_total",
                "Region snapshots, by generate or apply",
            ),
            &["type"],
        )
        .expect("valid metric"),
    )
});

/// How long applying a snapshot took, on the raft poller that applied it (`apply`): its data
/// is written and, the data engine having no WAL, every memtable flushed, while the poller's
/// other regions wait.
pub static SNAPSHOT_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "tikv_raftstore_snapshot_duration_seconds",
        "Bucketed histogram of snapshot work, by type",
    )
    .buckets(exponential_buckets(0.000_1, 2.0, 20).expect("valid buckets"));
    register(HistogramVec::new(opts, &["type"]).expect("valid metric"))
});

/// Leaderless replicas checked with PD, by outcome (TiKV's names): `peer valid`, `peer stale`
/// (destroyed), `region epoch error` (PD's region older than the replica's).
pub static PD_VALIDATE_PEER: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "tikv_pd_validate_peer_total",
                "Replicas without a leader checked with PD, by outcome",
            ),
            &["type"],
        )
        .expect("valid metric"),
    )
});

/// A duration histogram with TiKV's raftstore buckets: 10 µs doubling up to about 5 minutes.
fn duration_histogram(name: &str, help: &str) -> Histogram {
    let opts = HistogramOpts::new(name, help)
        .buckets(exponential_buckets(0.000_01, 2.0, 26).expect("valid buckets"));
    register(Histogram::with_opts(opts).expect("valid metric"))
}

/// One raft poll round's raft log write and sync, shared by every peer with a ready.
pub static APPEND_LOG_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    duration_histogram(
        "tikv_raftstore_append_log_duration_seconds",
        "Bucketed histogram of the raft poller's raft log writes (one per round, synced)",
    )
});

/// From a command being sent to its peer to the peer taking it from its mailbox to propose.
pub static REQUEST_WAIT_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    duration_histogram(
        "tikv_raftstore_request_wait_time_duration_secs",
        "Bucketed histogram of the time commands wait in their peer's mailbox",
    )
});

/// From a proposal to its entry being committed (seen by the leader).
pub static COMMIT_LOG_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    duration_histogram(
        "tikv_raftstore_commit_log_duration_seconds",
        "Bucketed histogram of the time from proposing an entry to its commit",
    )
});

/// From committed entries being handed to the apply poller to their apply starting.
pub static APPLY_WAIT_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    duration_histogram(
        "tikv_raftstore_apply_wait_time_duration_secs",
        "Bucketed histogram of the time committed entries wait for the apply poller",
    )
});

/// Applying one region's entries of a round: executing them and writing the batch.
pub static APPLY_LOG_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    duration_histogram(
        "tikv_raftstore_apply_log_duration_seconds",
        "Bucketed histogram of applying a region's committed entries (execute and write)",
    )
});

/// The data engine's syncs for raft log GC (a flush of every memtable without the WAL).
pub static RAFT_LOG_KV_SYNC_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    duration_histogram(
        "tikv_raftstore_raft_log_kv_sync_duration_secs",
        "Bucketed histogram of the data engine's syncs (memtable flushes without the WAL) for raft log GC",
    )
});

/// Entries one raft log GC of a peer dropped.
pub static RAFT_LOG_GC_DELETED_KEYS: LazyLock<Histogram> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "tikv_raftstore_raft_log_gc_deleted_keys",
        "Bucketed histogram of the raft log entries one GC of a peer's log dropped",
    )
    .buckets(exponential_buckets(1.0, 2.0, 20).expect("valid buckets"));
    register(Histogram::with_opts(opts).expect("valid metric"))
});

/// Replicas of this store by hibernation state; `state="hibernated"` is set.
pub static HIBERNATED_PEERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "tikv_raftstore_hibernated_peer_state",
                "Replicas of this store by hibernation state",
            ),
            &["state"],
        )
        .expect("valid metric"),
    )
});

/// TiKV's label for a raft message type in `tikv_raftstore_raft_sent_message_total`; the
/// types raft-rs only uses locally (hup, beat, propose, ...) never reach the transport.
fn message_type_label(kind: MessageType) -> &'static str {
    match kind {
        MessageType::MsgAppend => "append",
        MessageType::MsgAppendResponse => "append_resp",
        MessageType::MsgRequestPreVote => "prevote",
        MessageType::MsgRequestPreVoteResponse => "prevote_resp",
        MessageType::MsgRequestVote => "vote",
        MessageType::MsgRequestVoteResponse => "vote_resp",
        MessageType::MsgSnapshot => "snapshot",
        MessageType::MsgHeartbeat => "heartbeat",
        MessageType::MsgHeartbeatResponse => "heartbeat_resp",
        MessageType::MsgTransferLeader => "transfer_leader",
        MessageType::MsgTimeoutNow => "timeout_now",
        MessageType::MsgReadIndex => "read_index",
        MessageType::MsgReadIndexResp => "read_index_resp",
        _ => "other",
    }
}

/// `tikv_raftstore_raft_sent_message_total{type, status}`, resolved once per type so that
/// counting a message is one atomic add: `[accepted, dropped]` per message type number.
static SENT_MESSAGES: LazyLock<Vec<[IntCounter; 2]>> = LazyLock::new(|| {
    let vec = register(
        IntCounterVec::new(
            Opts::new(
                "tikv_raftstore_raft_sent_message_total",
                "Raft messages sent by this store's replicas, by type; status \"drop\" counts \
                 those without an address",
            ),
            &["type", "status"],
        )
        .expect("valid metric"),
    );
    // raft-rs numbers its types from 0 without gaps (checked by a test below).
    MessageType::values()
        .iter()
        .map(|&kind| {
            let label = message_type_label(kind);
            [
                vec.with_label_values(&[label, "accept"]),
                vec.with_label_values(&[label, "drop"]),
            ]
        })
        .collect()
});

/// Counts a raft message a replica handed to the transport (`accepted`) or dropped.
pub fn count_sent_message(kind: MessageType, accepted: bool) {
    if let Some(counters) = SENT_MESSAGES.get(kind as usize) {
        counters[usize::from(!accepted)].inc();
    }
}

/// What a replica's raft ready carried, counted once per ready (TiKV's
/// `tikv_raftstore_raft_ready_handled_total`).
pub struct ReadyCounters {
    pub has_ready_region: IntCounter,
    pub message: IntCounter,
    pub append: IntCounter,
    pub commit: IntCounter,
    pub snapshot: IntCounter,
}

pub static READY_HANDLED: LazyLock<ReadyCounters> = LazyLock::new(|| {
    let vec = register(
        IntCounterVec::new(
            Opts::new(
                "tikv_raftstore_raft_ready_handled_total",
                "Raft readies handled, and how many carried messages, new entries, committed \
                 entries or a snapshot",
            ),
            &["type"],
        )
        .expect("valid metric"),
    );
    ReadyCounters {
        has_ready_region: vec.with_label_values(&["has_ready_region"]),
        message: vec.with_label_values(&["message"]),
        append: vec.with_label_values(&["append"]),
        commit: vec.with_label_values(&["commit"]),
        snapshot: vec.with_label_values(&["snapshot"]),
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_are_listed_in_the_order_of_their_numbers() {
        for (number, kind) in MessageType::values().iter().enumerate() {
            assert_eq!(*kind as usize, number, "{kind:?}");
        }
    }

    #[test]
    fn sent_messages_are_counted_by_type_and_status() {
        let before = SENT_MESSAGES[MessageType::MsgHeartbeat as usize][1].get();
        count_sent_message(MessageType::MsgHeartbeat, false);
        assert_eq!(
            SENT_MESSAGES[MessageType::MsgHeartbeat as usize][1].get(),
            before + 1
        );
        let rendered = prometheus::TextEncoder::new()
            .encode_to_string(&prometheus::default_registry().gather())
            .expect("metrics render");
        assert!(rendered.contains(
            "tikv_raftstore_raft_sent_message_total{status=\"drop\",type=\"heartbeat\"}"
        ));
    }
}
