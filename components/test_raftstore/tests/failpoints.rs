//! Crashes at the persistence boundaries of raftstore, simulated with fail points (this test
//! target needs `--features failpoints`): a store stopped between two writes must restart and
//! catch up. Fail points are process-wide, so each test holds a `FailScenario`, which runs the
//! tests one at a time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use config_types::ReadableDuration;
use kvproto::kvrpcpb;
use kvproto::raft_cmdpb::ChangePeerType;
use kvproto::raft_serverpb::{PeerState, RaftMessage};
use raft::eraftpb::MessageType;
use raft_log_engine::RaftLogEngine;
use raftstore::peer_storage::{load_apply_state, load_region_state};
use raftstore::RouterHandle;
use test_raftstore::filter::message_type;
use test_raftstore::{Cluster, ClusterConfig, Isolate, Verdict};

/// Issue 9, bug 1. The split's apply batch wrote the new region's states; every store crashes
/// before the new peer's raft log is written. Each must restart (the log restarts at the
/// applied index) and the new region must serve.
#[test]
fn stores_restart_after_a_crash_between_a_split_and_its_new_peer() {
    let _scenario = fail::FailScenario::setup();
    let cluster = Cluster::new(ClusterConfig::default());
    cluster.start();
    let region_id = cluster.first_region_id();
    let a = cluster.store_ids()[0];
    cluster.must_transfer_leader(region_id, a);
    cluster.must_put(b"a", b"1");
    cluster.must_put(b"z", b"1");

    fail::cfg("before_create_split_peer", "return").unwrap();
    let regions = cluster.must_split(region_id, b"m");
    let new_region = regions.iter().find(|r| r.id != region_id).unwrap().id;
    // Every store has applied the split; crashing now, before or after the fail point, leaves
    // the same state.
    for store_id in cluster.store_ids() {
        cluster.wait_until(Duration::from_secs(10), "the split applied", || {
            load_region_state(cluster.kv(store_id), new_region)
                .unwrap()
                .is_some()
        });
        cluster.stop_store(store_id);
    }
    fail::remove("before_create_split_peer");
    for store_id in cluster.store_ids() {
        cluster.start_store(store_id);
    }

    cluster.must_put(b"z", b"2");
    assert_eq!(cluster.must_get(b"z"), Some(b"2".to_vec()));
    assert_eq!(cluster.must_get(b"a"), Some(b"1".to_vec()));
    let right = cluster.pd.region_by_key(b"z").unwrap().region;
    assert_ne!(right.id, region_id);
}

/// Issue 9, bug 1. A follower that was down gets a snapshot, writes its data and apply state,
/// and crashes before its raft log follows. It must restart and catch up.
#[test]
fn a_store_restarts_after_a_crash_between_snapshot_data_and_raft_log() {
    let _scenario = fail::FailScenario::setup();
    let (cluster, region_id, a, c) = snapshot_cluster();
    stop_until_it_needs_a_snapshot(&cluster, region_id, a, c);

    fail::cfg("snapshot_after_data_before_raft_log", "return").unwrap();
    cluster.start_store(c);
    cluster.wait_until(
        Duration::from_secs(10),
        "the snapshot's data on the store",
        || cluster.stored_raw(c, b"k29") == Some(b"v".to_vec()),
    );
    cluster.stop_store(c);
    fail::remove("snapshot_after_data_before_raft_log");
    cluster.start_store(c);

    cluster.must_put(b"after", b"restart");
    cluster.wait_until(Duration::from_secs(10), "the store catching up", || {
        cluster.stored_raw(c, b"after") == Some(b"restart".to_vec())
    });
}

/// A started cluster whose log GC soon compacts past a stopped follower, so that it needs a
/// snapshot: the cluster, its region, the store leading it and another store.
fn snapshot_cluster() -> (Cluster, u64, u64, u64) {
    let cluster = Cluster::new(ClusterConfig::with_short_raft_logs());
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    let (a, c) = (ids[0], ids[2]);
    cluster.must_transfer_leader(region_id, a);
    (cluster, region_id, a, c)
}

/// Stops store `down` and writes into `region_id` until `down` needs a snapshot.
fn stop_until_it_needs_a_snapshot(cluster: &Cluster, region_id: u64, leader: u64, down: u64) {
    cluster.stop_store(down);
    cluster.write_until_compacted_past(region_id, leader, down);
}

/// Issue 9, bug 2. Apply writes the data engine without syncing; the raft log must keep the
/// entries until a sync of the data engine covered them, or a power failure would lose
/// entries that are in neither. While syncs fail, no log is compacted; once they succeed, it is.
#[test]
fn raft_logs_are_compacted_only_past_a_synced_apply() {
    let _scenario = fail::FailScenario::setup();
    let mut cfg = ClusterConfig::default();
    cfg.raftstore.raft_log_gc_threshold = 5;
    cfg.raftstore.raft_log_gc_tick_interval = ReadableDuration::millis(50);
    let cluster = Cluster::new(cfg);
    fail::cfg("sync_for_log_gc", "return").unwrap();
    cluster.start();
    let region_id = cluster.first_region_id();
    for i in 0..20 {
        cluster.must_put(format!("k{i:02}").as_bytes(), b"v");
    }
    let first_index = |store_id| {
        cluster
            .raft_log(store_id)
            .entry_span(types::RegionId(region_id))
            .unwrap()
            .map_or(0, |(first, _)| first)
    };
    let before: Vec<u64> = cluster.store_ids().into_iter().map(first_index).collect();
    // Absence cannot be waited for: give GC ten of its ticks.
    std::thread::sleep(Duration::from_millis(500));
    let during: Vec<u64> = cluster.store_ids().into_iter().map(first_index).collect();
    assert_eq!(before, during, "a log was compacted past unsynced applies");

    fail::remove("sync_for_log_gc");
    for store_id in cluster.store_ids() {
        cluster.wait_until(Duration::from_secs(10), "compaction after a sync", || {
            first_index(store_id) > before[0] + 5
        });
    }
}

/// Issue 9, bug 4. The leader's apply is held up just before a split, while its raft side keeps
/// committing writes. The followers apply the split and the split-off region elects its own
/// leader, which takes a write. The old leader must not answer a read of the split-off range
/// from a lease its later commits renewed: it has not seen that write.
#[test]
fn a_leader_with_an_unapplied_split_serves_no_lease_reads() {
    let _scenario = fail::FailScenario::setup();
    let mut cfg = ClusterConfig::default();
    // A 1 s election timeout: the new region elects after 1-2 s.
    cfg.raftstore.raft_election_timeout_ticks = 50;
    let cluster = Arc::new(Cluster::new(cfg));
    cluster.start();
    let region_id = cluster.first_region_id();
    let a = cluster.store_ids()[0];
    cluster.must_transfer_leader(region_id, a);
    cluster.must_put(b"z", b"old");
    let leader = cluster.leader_of(region_id).unwrap();
    let region = cluster.region_on_store(a, b"z").unwrap();

    let hold = format!("apply_before_split_{}", leader.id);
    fail::cfg(&hold, "pause").unwrap();
    let (sender, split_done) = crossbeam::channel::bounded(1);
    cluster.router(a).unwrap().send_peer(
        types::RegionId(region_id),
        raftstore::PeerMsg::SplitRegion {
            region_epoch: region.region_epoch.unwrap(),
            split_keys: vec![b"m".to_vec()],
            callback: Box::new(move |result| {
                let _ = sender.send(result);
            }),
        },
    );
    // Writes through the old leader keep committing (their apply waits behind the split).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        let storage = cluster.storage(a).unwrap();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            // Distinct keys: a write holds its key's latch until it is applied.
            for n in 0u32.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let ctx = kvrpcpb::Context {
                    region_id,
                    region_epoch: region.region_epoch,
                    peer: Some(leader),
                    ..Default::default()
                };
                let storage = storage.clone();
                pending.push(cluster.spawn(async move {
                    let key = format!("a{n}").into_bytes();
                    storage
                        .raw()
                        .raw_put(&ctx, "", key, b"x".to_vec(), 0, false)
                        .await
                }));
                std::thread::sleep(Duration::from_millis(100));
            }
            pending
        })
    };
    let mut right = None;
    cluster.wait_until(
        Duration::from_secs(20),
        "a leader of the split-off region",
        || {
            right = cluster
                .store_ids()
                .into_iter()
                .filter_map(|s| cluster.region_on_store(s, b"z"))
                .find(|r| r.id != region_id)
                .and_then(|r| cluster.leader_of(r.id).map(|l| (r, l)));
            right.is_some()
        },
    );
    let (right_region, right_leader) = right.unwrap();
    let storage = cluster.storage(right_leader.store_id).unwrap();
    let ctx = kvrpcpb::Context {
        region_id: right_region.id,
        region_epoch: right_region.region_epoch,
        peer: Some(right_leader),
        ..Default::default()
    };
    cluster
        .block_on(
            storage
                .raw()
                .raw_put(&ctx, "", b"z".to_vec(), b"new".to_vec(), 0, false),
        )
        .unwrap();

    let old_leader = cluster.storage(a).unwrap();
    let ctx = kvrpcpb::Context {
        region_id,
        region_epoch: region.region_epoch,
        peer: Some(leader),
        ..Default::default()
    };
    let read = cluster.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(2),
            old_leader.raw().raw_get(&ctx, "", b"z".to_vec()),
        )
        .await
    });
    stop.store(true, Ordering::SeqCst);
    fail::remove(&hold);
    let pending = writer.join().unwrap();
    split_done
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .ok();
    for write in pending {
        let _ = cluster.block_on(write);
    }
    assert!(
        !matches!(&read, Ok(Ok(Some(v))) if v == b"old"),
        "the old leader served a stale read: {read:?}"
    );
}

/// Issue 9, bug 12. One replica fails to apply an entry and stops applying; a snapshot must
/// restart it (it waited for its stopped apply to catch up before taking the snapshot, and
/// stayed wedged).
#[test]
fn a_replica_whose_apply_stopped_recovers_from_a_snapshot() {
    let _scenario = fail::FailScenario::setup();
    let (cluster, region_id, a, c) = snapshot_cluster();
    let region = cluster.region_on_store(a, b"").unwrap();
    let broken = region.peers.iter().find(|p| p.store_id == c).unwrap().id;

    let fail_apply = format!("apply_entry_error_{broken}");
    fail::cfg(&fail_apply, "return").unwrap();
    cluster.must_put(b"k", b"lost-on-c");
    // The replica says so once its apply has stopped.
    let storage = cluster.storage(c).unwrap();
    let ctx = kvrpcpb::Context {
        region_id,
        region_epoch: region.region_epoch,
        peer: region.peers.iter().find(|p| p.store_id == c).copied(),
        ..Default::default()
    };
    cluster.wait_until(
        Duration::from_secs(10),
        "the replica's apply stopped",
        || {
            let read = cluster.block_on(storage.raw().raw_get(&ctx, "", b"k".to_vec()));
            matches!(read, Err(e) if e.to_string().contains("stopped applying"))
        },
    );
    fail::remove(&fail_apply);
    // The replica lags behind the log's compaction, so the leader sends it a snapshot.
    let isolate = cluster.add_filter(Isolate(c));
    for i in 0..30 {
        cluster.must_put(format!("k{i:02}").as_bytes(), b"v");
    }
    cluster.remove_filter(isolate);
    cluster.wait_until(
        Duration::from_secs(20),
        "the replica restarted by a snapshot",
        || cluster.stored_raw(c, b"k29") == Some(b"v".to_vec()),
    );
    cluster.must_put(b"after", b"snapshot");
    cluster.wait_until(
        Duration::from_secs(10),
        "the replica applying again",
        || cluster.stored_raw(c, b"after") == Some(b"snapshot".to_vec()),
    );
    assert_eq!(cluster.stored_raw(c, b"k"), Some(b"lost-on-c".to_vec()));
}

/// The conf-change boundary: every store crashes after applying a conf change to the data
/// engine and before its raft side took it. After a restart, raft's configuration comes from
/// the region state, so the added peer is a member and gets the data.
#[test]
fn stores_restart_after_a_crash_between_a_conf_change_and_raft() {
    let _scenario = fail::FailScenario::setup();
    let cluster = Cluster::new(ClusterConfig::with_spare_store());
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    cluster.must_transfer_leader(region_id, ids[0]);
    cluster.must_put(b"k", b"v");

    fail::cfg("on_change_peer_before_raft", "return").unwrap();
    let region = cluster.region_on_store(ids[0], b"k").unwrap();
    let new_peer = kvproto::metapb::Peer {
        id: cluster.pd.alloc_id(),
        store_id: ids[3],
        ..Default::default()
    };
    let request = kvproto::raft_cmdpb::RaftCmdRequest {
        header: Some(kvproto::raft_cmdpb::RaftRequestHeader {
            region_id,
            peer: cluster.leader_of(region_id),
            region_epoch: region.region_epoch,
            term: 0,
        }),
        requests: Vec::new(),
        admin_request: Some(kvproto::raft_cmdpb::AdminRequest {
            cmd_type: kvproto::raft_cmdpb::AdminCmdType::ChangePeer as i32,
            change_peer: Some(kvproto::raft_cmdpb::ChangePeerRequest {
                change_type: kvproto::raft_cmdpb::ChangePeerType::AddNode as i32,
                peer: Some(new_peer),
            }),
            ..Default::default()
        }),
    };
    let (sender, done) = crossbeam::channel::bounded(1);
    let callback = raftstore::Callback::Write(Box::new(move |result| {
        let _ = sender.send(result);
    }));
    cluster.router(ids[0]).unwrap().send_peer(
        types::RegionId(region_id),
        raftstore::PeerMsg::RaftCommand(Box::new(raftstore::RaftCommand::new(request, callback))),
    );
    let response = done.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert!(response.header.unwrap().error.is_none());
    for store_id in &ids[..3] {
        cluster.wait_until(Duration::from_secs(10), "the conf change applied", || {
            load_region_state(cluster.kv(*store_id), region_id)
                .unwrap()
                .and_then(|s| s.region)
                .is_some_and(|r| r.peers.iter().any(|p| p.id == new_peer.id))
        });
    }
    // The raft side has not taken it: the crash window is open.
    let raft_side = cluster.region_on_store(ids[0], b"k").unwrap();
    assert!(raft_side.peers.iter().all(|p| p.id != new_peer.id));
    for store_id in cluster.store_ids() {
        cluster.stop_store(store_id);
    }
    fail::remove("on_change_peer_before_raft");
    for store_id in cluster.store_ids() {
        cluster.start_store(store_id);
    }
    cluster.must_put(b"k2", b"v2");
    cluster.wait_until(Duration::from_secs(20), "the added peer's data", || {
        cluster.stored_raw(ids[3], b"k2") == Some(b"v2".to_vec())
    });
}

/// Found by the client's multi-region suite. A follower store applied a split, narrowing the
/// parent region, but had not created the new region's peer yet when the new leader's first
/// vote requests came: it found the region's state written and no peer, took it for a peer
/// stopped by a write failure, and dropped them. The new region then had no leader for an
/// election timeout (10-20 s with TiKV's defaults), and the client gave up on it.
///
/// Every store is held between the split and the creation of its new peers; once both
/// followers hold a narrowed parent, the leader goes on and campaigns, and when its first
/// pre-vote requests have reached both followers, they go on too. Every later pre-vote
/// request of the new region, from any store, is dropped: only those first requests, kept
/// until the new peers exist, can elect a leader.
#[test]
fn vote_requests_reaching_a_split_before_its_new_peers_are_kept() {
    let _scenario = fail::FailScenario::setup();
    let cluster = Cluster::new(ClusterConfig::default());
    cluster.start();
    let parent = cluster.first_region_id();
    let ids = cluster.store_ids();
    let (a, followers) = (ids[0], [ids[1], ids[2]]);
    cluster.must_transfer_leader(parent, a);
    cluster.must_put(b"a", b"1");

    let released = Arc::new(AtomicBool::new(false));
    let asked: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let (filter_released, filter_asked) = (released.clone(), asked.clone());
    cluster.add_filter(move |from: u64, to: u64, msg: &RaftMessage| {
        if msg.region_id == parent || message_type(msg) != Some(MessageType::MsgRequestPreVote) {
            return Verdict::Deliver;
        }
        if filter_released.load(Ordering::SeqCst) {
            return Verdict::Drop;
        }
        if from == a {
            filter_asked.lock().unwrap().insert(to);
        }
        Verdict::Deliver
    });
    let hold = |store_id: u64| format!("split_before_create_peers_{store_id}");
    for store_id in ids.iter().copied() {
        fail::cfg(hold(store_id), "pause").unwrap();
    }
    let regions = cluster.must_split(parent, b"m");
    let new_region = regions.iter().find(|r| r.id != parent).unwrap().id;
    for store_id in followers {
        cluster.wait_until(
            Duration::from_secs(10),
            "a follower holding the narrowed parent",
            || cluster.region_on_store(store_id, b"z").is_none(),
        );
    }
    fail::remove(hold(a));
    cluster.wait_until(
        Duration::from_secs(10),
        "the new region's first pre-votes at both followers",
        || asked.lock().unwrap().len() == followers.len(),
    );
    released.store(true, Ordering::SeqCst);
    for store_id in followers {
        fail::remove(hold(store_id));
    }
    cluster.wait_until(
        Duration::from_secs(10),
        "the new region elected by its first pre-votes",
        || cluster.leader_of(new_region).is_some(),
    );
    cluster.must_put(b"z", b"2");
    assert_eq!(cluster.must_get(b"z"), Some(b"2".to_vec()));
}

/// A replica removed from its region while its apply is behind learns of it from a tombstone
/// message. Its destroy must wait for its apply FSM: the destroy deleted the region's data
/// and marked it tombstone while the apply still held a split, whose late write then made the
/// region Normal again on that store (with its data gone).
#[test]
fn a_replica_destroyed_while_its_apply_is_behind_stays_destroyed() {
    let _scenario = fail::FailScenario::setup();
    let cluster = Cluster::new(ClusterConfig::default());
    cluster.start();
    let region_id = cluster.first_region_id();
    let ids = cluster.store_ids();
    let (a, c) = (ids[0], ids[2]);
    cluster.must_transfer_leader(region_id, a);
    cluster.must_put(b"a", b"1");
    let region = cluster.region_on_store(a, b"a").unwrap();
    let removed = *region.peers.iter().find(|p| p.store_id == c).unwrap();

    // c's apply stops before the split until `release` is dropped.
    let (release, reached) = hold_at(&format!("apply_before_split_{}", removed.id));
    let regions = cluster.must_split(region_id, b"m");
    let right = regions.iter().find(|r| r.id != region_id).unwrap().id;
    cluster.wait_until(Duration::from_secs(10), "c's apply at the split", || {
        reached.load(Ordering::SeqCst)
    });
    // c must not get the entry that removes it: with it committed, raft would not let c's
    // replica campaign, and only a campaign gets the leader to answer with a tombstone.
    cluster.add_filter(move |_from: u64, to: u64, msg: &RaftMessage| {
        if to == c && msg.region_id == region_id && !msg.is_tombstone {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });
    cluster.must_change_peer(region_id, ChangePeerType::RemoveNode, removed);

    // c's replica, no longer hearing from the leader, campaigns; the leader answers that it
    // was removed, and c destroys it while its apply still waits before the split.
    let waiting = Arc::new(AtomicBool::new(false));
    {
        let waiting = waiting.clone();
        fail::cfg_callback(
            format!("destroy_waits_for_apply_{}", removed.id),
            move || {
                waiting.store(true, Ordering::SeqCst);
            },
        )
        .unwrap();
    }
    let tombstoned = || {
        load_region_state(cluster.kv(c), region_id)
            .unwrap()
            .is_some_and(|s| s.state() == PeerState::Tombstone)
    };
    cluster.wait_until(Duration::from_secs(30), "c's replica destroyed", || {
        tombstoned() || waiting.load(Ordering::SeqCst)
    });

    drop(release);
    cluster.wait_until(Duration::from_secs(10), "c applied the split", || {
        load_region_state(cluster.kv(c), right).unwrap().is_some()
    });
    cluster.wait_until(
        Duration::from_secs(10),
        "c's replica of the left region tombstoned after the split was written",
        || {
            tombstoned()
                && load_apply_state(cluster.kv(c), region_id)
                    .unwrap()
                    .is_none()
        },
    );
    assert_eq!(cluster.stored_raw(c, b"a"), None);
}

/// Holds every thread that reaches the fail point `name` until the returned sender is dropped
/// (also when the test fails, or the cluster could not stop); the flag tells whether one did.
fn hold_at(name: &str) -> (crossbeam::channel::Sender<()>, Arc<AtomicBool>) {
    let (release, released) = crossbeam::channel::bounded::<()>(0);
    let reached = Arc::new(AtomicBool::new(false));
    let flag = reached.clone();
    fail::cfg_callback(name, move || {
        flag.store(true, Ordering::SeqCst);
        let _ = released.recv();
    })
    .unwrap();
    (release, reached)
}

/// A received snapshot's data is written and flushed off the raft thread. While a store writes
/// one, its other regions keep replicating: before, the raft poller wrote it and flushed the
/// data engine's memtables itself, and every region of the store waited (the test cluster
/// runs one raft poller per store, so there was no other poller to take them).
#[test]
fn a_store_writing_a_snapshot_keeps_replicating_its_other_regions() {
    let _scenario = fail::FailScenario::setup();
    let (cluster, region_id, a, c) = snapshot_cluster();
    cluster.must_split(region_id, b"m");
    cluster.wait_until(Duration::from_secs(10), "c applied the split", || {
        cluster
            .region_on_store(c, b"z")
            .is_some_and(|r| r.id != region_id)
    });
    stop_until_it_needs_a_snapshot(&cluster, region_id, a, c);

    let (release, reached) = hold_at("before_write_snapshot_data");
    cluster.start_store(c);
    cluster.wait_until(Duration::from_secs(10), "c writing the snapshot", || {
        reached.load(Ordering::SeqCst)
    });
    cluster.must_put(b"z", b"1");
    cluster.wait_until(
        Duration::from_secs(10),
        "c applying the other region's write",
        || cluster.stored_raw(c, b"z") == Some(b"1".to_vec()),
    );

    drop(release);
    fail::remove("before_write_snapshot_data");
    cluster.wait_until(Duration::from_secs(10), "c applied the snapshot", || {
        cluster.stored_raw(c, b"k29") == Some(b"v".to_vec())
    });
    cluster.must_put(b"k30", b"v");
    cluster.wait_until(Duration::from_secs(10), "c catching up after it", || {
        cluster.stored_raw(c, b"k30") == Some(b"v".to_vec())
    });
}

/// A cluster of four stores whose region has a replica on three, with `k0`..`k9` written; a
/// replica is added on the fourth and its snapshot held before its data is written until the
/// returned sender is dropped. Returns the cluster, the region, the fourth store, the new
/// replica and the sender.
fn replica_writing_its_snapshot() -> (
    Cluster,
    u64,
    u64,
    kvproto::metapb::Peer,
    crossbeam::channel::Sender<()>,
) {
    let cluster = Cluster::new(ClusterConfig::with_spare_store());
    cluster.start();
    let region_id = cluster.first_region_id();
    for i in 0..10 {
        cluster.must_put(format!("k{i}").as_bytes(), b"v");
    }
    let spare = *cluster
        .store_ids()
        .iter()
        .find(|id| cluster.region_on_store(**id, b"k0").is_none())
        .unwrap();
    let (release, reached) = hold_at("before_write_snapshot_data");
    let added = cluster.must_add_peer(region_id, spare);
    cluster.wait_until(
        Duration::from_secs(10),
        "the new replica's snapshot",
        || reached.load(Ordering::SeqCst),
    );
    (cluster, region_id, spare, added, release)
}

/// A replica applying its snapshot knows the snapshot's configuration: a tombstone sent under
/// an older one (from before the replica was added) must not destroy it. It did while the
/// replica counted as uninitialized, which it is until the snapshot is applied.
#[test]
fn a_stale_tombstone_does_not_destroy_a_replica_applying_its_snapshot() {
    let _scenario = fail::FailScenario::setup();
    let (cluster, region_id, spare, added, release) = replica_writing_its_snapshot();
    let leader = cluster.wait_leader(region_id);
    let mut old_epoch = cluster
        .region_on_store(leader.store_id, b"k0")
        .unwrap()
        .region_epoch
        .unwrap();
    old_epoch.conf_ver -= 1;
    cluster
        .router(spare)
        .unwrap()
        .send_raft_message(raftstore::util::tombstone_message(
            region_id,
            leader,
            added,
            Some(old_epoch),
        ));

    drop(release);
    fail::remove("before_write_snapshot_data");
    cluster.wait_until(Duration::from_secs(10), "the snapshot applied", || {
        cluster.region_on_store(spare, b"k0").is_some()
    });
    cluster.must_put(b"k0", b"after");
    cluster.wait_until(Duration::from_secs(10), "the replica replicating", || {
        cluster.stored_raw(spare, b"k0") == Some(b"after".to_vec())
    });
}

/// A replica removed while the snapshot applier writes its snapshot is destroyed once the
/// write is done, and its destruction deletes what the write brought. Destroyed at once, it
/// would be overtaken by the write, which makes the region Normal again on that store.
#[test]
fn a_replica_removed_while_its_snapshot_is_written_stays_destroyed() {
    let _scenario = fail::FailScenario::setup();
    let (cluster, region_id, spare, added, release) = replica_writing_its_snapshot();
    cluster.must_change_peer(region_id, ChangePeerType::RemoveNode, added);
    let leader = cluster.wait_leader(region_id);
    let epoch = cluster
        .region_on_store(leader.store_id, b"k0")
        .unwrap()
        .region_epoch;
    cluster
        .router(spare)
        .unwrap()
        .send_raft_message(raftstore::util::tombstone_message(
            region_id, leader, added, epoch,
        ));

    drop(release);
    fail::remove("before_write_snapshot_data");
    let destroyed = || {
        load_region_state(cluster.kv(spare), region_id)
            .unwrap()
            .is_some_and(|s| s.state() == PeerState::Tombstone)
            && load_apply_state(cluster.kv(spare), region_id)
                .unwrap()
                .is_none()
            && cluster.stored_raw(spare, b"k0").is_none()
    };
    cluster.wait_until(
        Duration::from_secs(10),
        "the replica destroyed after its snapshot",
        &destroyed,
    );
    cluster.stop_store(spare);
    cluster.start_store(spare);
    assert!(destroyed(), "the destroyed replica came back on restart");
    assert!(cluster.region_on_store(spare, b"k0").is_none());
}
