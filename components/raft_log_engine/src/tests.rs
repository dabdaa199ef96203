//! raft-rs `Storage` semantics, one test per method and per edge, run on both backends.

use protobuf::Message;
use raft::eraftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use raft::{GetEntriesContext, Storage, StorageError};
use tempfile::TempDir;
use types::RegionId;

use crate::{
    RaftEngineConfig, RaftEngineLog, RaftLogBatch, RaftLogEngine, RaftLogStorage, RocksLog,
};

const REGION: RegionId = RegionId(7);

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![b'x'; 100].into(),
        ..Default::default()
    }
}

fn entries(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn store_err<T: std::fmt::Debug>(result: raft::Result<T>) -> StorageError {
    match result {
        Err(raft::Error::Store(e)) => e,
        other => panic!("expected a storage error, got {other:?}"),
    }
}

fn open_raft_engine(dir: &TempDir) -> RaftEngineLog {
    RaftEngineLog::open(&RaftEngineConfig::new(dir.path())).expect("open raft-engine")
}

fn open_rocks(dir: &TempDir) -> RocksLog {
    RocksLog::open(dir.path()).expect("open rocks log")
}

/// A storage holding entries 4..=6 of term 4/5/6 after a compaction point at index 3 term 3,
/// like raft-rs's own storage tests.
fn compacted_storage<E: RaftLogEngine>(engine: E) -> RaftLogStorage<E> {
    let storage = RaftLogStorage::open(engine, REGION).unwrap();
    let meta = SnapshotMetadata {
        index: 3,
        term: 3,
        ..Default::default()
    };
    storage.apply_snapshot(&meta).unwrap();
    storage
        .append(&[entry(4, 4), entry(5, 5), entry(6, 6)], None, true)
        .unwrap();
    storage
}

/// An empty log of `REGION` on a new engine, the engine itself (to write batches or change it
/// behind the log's back) and the directory that must outlive both.
fn open_empty<E: RaftLogEngine>(open: fn(&TempDir) -> E) -> (RaftLogStorage<E>, E, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir);
    let log = RaftLogStorage::open(engine.clone(), REGION).unwrap();
    (log, engine, dir)
}

macro_rules! storage_tests {
    ($backend:ident, $open:ident) => {
        mod $backend {
            use super::*;

            fn new() -> (RaftLogStorage<impl RaftLogEngine>, TempDir) {
                let dir = tempfile::tempdir().unwrap();
                (compacted_storage($open(&dir)), dir)
            }

            #[test]
            fn empty_storage_starts_at_index_one() {
                let dir = tempfile::tempdir().unwrap();
                let storage = RaftLogStorage::open($open(&dir), REGION).unwrap();
                assert_eq!(storage.first_index().unwrap(), 1);
                assert_eq!(storage.last_index().unwrap(), 0);
                assert_eq!(storage.term(0).unwrap(), 0);
                let state = storage.initial_state().unwrap();
                assert!(!state.initialized());
            }

            #[test]
            fn initial_state_returns_persisted_hard_and_conf_state() {
                let dir = tempfile::tempdir().unwrap();
                let storage = RaftLogStorage::open($open(&dir), REGION).unwrap();
                let hard_state = HardState {
                    term: 5,
                    vote: 2,
                    commit: 0,
                    ..Default::default()
                };
                storage.set_hard_state(&hard_state).unwrap();
                let conf_state = ConfState {
                    voters: vec![1, 2, 3],
                    ..Default::default()
                };
                storage.set_conf_state(&conf_state).unwrap();
                let state = storage.initial_state().unwrap();
                assert_eq!(state.hard_state, hard_state);
                assert_eq!(state.conf_state, conf_state);
                drop(storage);
                let reopened = RaftLogStorage::open($open(&dir), REGION).unwrap();
                assert_eq!(reopened.initial_state().unwrap().hard_state, hard_state);
                assert_eq!(reopened.conf_state(), conf_state);
            }

            #[test]
            fn term_covers_compaction_point_and_log() {
                let (storage, _dir) = new();
                assert_eq!(store_err(storage.term(2)), StorageError::Compacted);
                assert_eq!(
                    storage.term(3).unwrap(),
                    3,
                    "term of the compaction point is kept"
                );
                assert_eq!(storage.term(4).unwrap(), 4);
                assert_eq!(storage.term(5).unwrap(), 5);
                assert_eq!(storage.term(6).unwrap(), 6);
                assert_eq!(store_err(storage.term(7)), StorageError::Unavailable);
            }

            #[test]
            fn entries_respect_range_and_size() {
                let (storage, _dir) = new();
                let one = entry(4, 4).compute_size() as u64;
                assert_eq!(
                    store_err(storage.entries(2, 6, None, ctx())),
                    StorageError::Compacted
                );
                assert_eq!(
                    store_err(storage.entries(3, 4, None, ctx())),
                    StorageError::Compacted
                );
                assert_eq!(
                    storage.entries(4, 5, None, ctx()).unwrap(),
                    vec![entry(4, 4)]
                );
                assert_eq!(storage.entries(4, 7, None, ctx()).unwrap().len(), 3);
                assert_eq!(
                    storage.entries(5, 5, None, ctx()).unwrap(),
                    vec![],
                    "empty range"
                );
                assert_eq!(
                    storage.entries(4, 7, 0, ctx()).unwrap(),
                    vec![entry(4, 4)],
                    "at least one"
                );
                assert_eq!(storage.entries(4, 7, one * 2, ctx()).unwrap().len(), 2);
                assert_eq!(storage.entries(4, 7, one * 2 + 1, ctx()).unwrap().len(), 2);
                assert_eq!(
                    storage.entries(4, 7, raft::NO_LIMIT, ctx()).unwrap().len(),
                    3
                );
                assert_eq!(
                    store_err(storage.entries(4, 8, None, ctx())),
                    StorageError::Unavailable
                );
            }

            #[test]
            fn first_and_last_index_follow_appends_and_compaction() {
                let (storage, _dir) = new();
                assert_eq!(storage.first_index().unwrap(), 4);
                assert_eq!(storage.last_index().unwrap(), 6);
                storage.append(&entries(7..9, 6), None, true).unwrap();
                assert_eq!(storage.last_index().unwrap(), 8);
                storage.compact(5).unwrap();
                assert_eq!(storage.first_index().unwrap(), 5);
                assert_eq!(storage.last_index().unwrap(), 8);
            }

            #[test]
            fn compact_drops_entries_and_keeps_the_boundary_term() {
                let (storage, dir) = new();
                storage.compact(5).unwrap();
                assert_eq!(storage.truncated(), (4, 4));
                assert_eq!(store_err(storage.term(3)), StorageError::Compacted);
                assert_eq!(storage.term(4).unwrap(), 4);
                assert_eq!(
                    store_err(storage.entries(4, 6, None, ctx())),
                    StorageError::Compacted
                );
                assert_eq!(
                    storage.entries(5, 7, None, ctx()).unwrap(),
                    vec![entry(5, 5), entry(6, 6)]
                );
                storage.compact(2).unwrap(); // at or below the first index: nothing to do
                assert_eq!(storage.first_index().unwrap(), 5);
                assert_eq!(store_err(storage.compact(9)), StorageError::Unavailable);
                storage.compact(7).unwrap(); // everything
                assert_eq!(
                    (
                        storage.first_index().unwrap(),
                        storage.last_index().unwrap()
                    ),
                    (7, 6)
                );
                assert_eq!(storage.term(6).unwrap(), 6);
                drop(storage);
                let reopened = RaftLogStorage::open($open(&dir), REGION).unwrap();
                assert_eq!(reopened.first_index().unwrap(), 7);
                assert_eq!(reopened.last_index().unwrap(), 6);
                reopened.append(&entries(7..8, 7), None, true).unwrap();
                assert_eq!(
                    reopened.entries(7, 8, None, ctx()).unwrap(),
                    vec![entry(7, 7)]
                );
            }

            #[test]
            fn append_replaces_a_conflicting_tail() {
                let (storage, dir) = new();
                storage.append(&entries(7..10, 6), None, true).unwrap();
                storage
                    .append(&[entry(5, 7), entry(6, 7)], None, true)
                    .unwrap();
                assert_eq!(storage.last_index().unwrap(), 6);
                assert_eq!(storage.term(6).unwrap(), 7);
                assert_eq!(
                    storage.entries(4, 7, None, ctx()).unwrap(),
                    vec![entry(4, 4), entry(5, 7), entry(6, 7)]
                );
                drop(storage);
                let reopened = RaftLogStorage::open($open(&dir), REGION).unwrap();
                assert_eq!(reopened.last_index().unwrap(), 6, "the old tail stays gone");
                assert_eq!(
                    store_err(reopened.entries(4, 8, None, ctx())),
                    StorageError::Unavailable
                );
            }

            #[test]
            fn append_refuses_gaps_and_compacted_indexes() {
                let (storage, _dir) = new();
                let gap = storage.append(&[entry(8, 6)], None, true);
                assert!(
                    matches!(gap, Err(crate::Error::NonContiguous { first: 8, .. })),
                    "{gap:?}"
                );
                let below = storage.append(&[entry(3, 6)], None, true);
                assert!(matches!(
                    below,
                    Err(crate::Error::NonContiguous { first: 3, .. })
                ));
                assert_eq!(
                    storage.last_index().unwrap(),
                    6,
                    "a refused append changes nothing"
                );
            }

            #[test]
            fn snapshot_is_at_commit_and_waits_for_request_index() {
                let (storage, _dir) = new();
                let mut hard_state = storage.hard_state();
                hard_state.commit = 5;
                storage.set_hard_state(&hard_state).unwrap();
                let conf_state = ConfState {
                    voters: vec![1, 2],
                    ..Default::default()
                };
                storage.set_conf_state(&conf_state).unwrap();
                let snap = storage.snapshot(4, 2).unwrap();
                assert_eq!(
                    (snap.get_metadata().index, snap.get_metadata().term),
                    (5, 5)
                );
                assert_eq!(snap.get_metadata().get_conf_state(), &conf_state);
                assert_eq!(
                    store_err(storage.snapshot(6, 2)),
                    StorageError::SnapshotTemporarilyUnavailable
                );
            }

            #[test]
            fn apply_snapshot_replaces_the_log() {
                let (storage, dir) = new();
                let mut meta = SnapshotMetadata {
                    index: 10,
                    term: 8,
                    ..Default::default()
                };
                meta.mut_conf_state().voters = vec![1, 2, 3];
                storage.apply_snapshot(&meta).unwrap();
                assert_eq!(storage.first_index().unwrap(), 11);
                assert_eq!(storage.last_index().unwrap(), 10);
                assert_eq!(storage.term(10).unwrap(), 8);
                assert_eq!(storage.hard_state().commit, 10);
                assert_eq!(storage.conf_state().voters, vec![1, 2, 3]);
                assert_eq!(
                    store_err(storage.entries(6, 7, None, ctx())),
                    StorageError::Compacted
                );
                let old = SnapshotMetadata {
                    index: 9,
                    term: 8,
                    ..Default::default()
                };
                assert_eq!(
                    store_err(storage.apply_snapshot(&old)),
                    StorageError::SnapshotOutOfDate
                );
                storage.append(&entries(11..13, 8), None, true).unwrap();
                drop(storage);
                let reopened = RaftLogStorage::open($open(&dir), REGION).unwrap();
                assert_eq!(reopened.first_index().unwrap(), 11);
                assert_eq!(reopened.last_index().unwrap(), 12);
                assert_eq!(reopened.entries(11, 13, None, ctx()).unwrap().len(), 2);
            }

            #[test]
            fn regions_are_independent() {
                let dir = tempfile::tempdir().unwrap();
                let engine = $open(&dir);
                let a = RaftLogStorage::open(engine.clone(), RegionId(1)).unwrap();
                let b = RaftLogStorage::open(engine.clone(), RegionId(2)).unwrap();
                a.append(&entries(1..4, 1), None, true).unwrap();
                b.append(&entries(1..2, 2), None, true).unwrap();
                a.compact(3).unwrap();
                assert_eq!(b.entries(1, 2, None, ctx()).unwrap(), vec![entry(1, 2)]);
                assert_eq!(a.last_index().unwrap(), 3);
                assert_eq!(engine.regions().unwrap(), vec![RegionId(1), RegionId(2)]);
            }

            /// For the store writer: staged entries are readable before the batch is written,
            /// replacing the stored tail they overwrite, and stay so once it is.
            #[test]
            fn visibly_staged_entries_are_read_before_the_write() {
                let dir = tempfile::tempdir().unwrap();
                let engine = $open(&dir);
                let log = RaftLogStorage::open(engine.clone(), RegionId(1)).unwrap();
                log.append(&entries(1..5, 1), None, true).unwrap();
                let mut batch = engine.new_batch();
                // A new leader's entries replace 3 and 4 and add 5.
                let staged = log
                    .stage_append_visible(&entries(3..6, 2), None, &mut batch)
                    .unwrap();
                let expected: Vec<Entry> = entries(1..3, 1)
                    .into_iter()
                    .chain(entries(3..6, 2))
                    .collect();
                assert_eq!(log.last_index().unwrap(), 5);
                assert_eq!(log.term(2).unwrap(), 1);
                assert_eq!(log.term(4).unwrap(), 2);
                assert_eq!(log.entries(1, 6, None, ctx()).unwrap(), expected);
                assert_eq!(log.entries(4, 6, None, ctx()).unwrap(), expected[3..]);
                let one_entry = u64::from(protobuf::Message::compute_size(&expected[0]));
                assert_eq!(
                    log.entries(1, 6, Some(one_entry * 3), ctx()).unwrap(),
                    expected[..3],
                    "the size limit counts stored and unwritten entries together"
                );
                engine.write(&mut batch, true).unwrap();
                log.finish_append(staged);
                assert_eq!(log.entries(1, 6, None, ctx()).unwrap(), expected);
                assert_eq!(log.term(4).unwrap(), 2);
            }

            /// The entry cache answers reads of entries not yet applied without the engine;
            /// once trimmed, the engine answers.
            #[test]
            fn cached_entries_are_read_without_the_engine() {
                let (log, engine, _dir) = open_empty($open);
                log.append(&entries(1..11, 1), None, true).unwrap();
                log.append(&entries(8..11, 2), None, true).unwrap();
                // Remove the entries behind the storage's back: only the cache has them now.
                engine.compact_to(REGION, 11).unwrap();
                let expected: Vec<Entry> = entries(1..8, 1)
                    .into_iter()
                    .chain(entries(8..11, 2))
                    .collect();
                assert_eq!(log.entries(1, 11, None, ctx()).unwrap(), expected);
                assert_eq!(log.term(7).unwrap(), 1);
                assert_eq!(log.term(9).unwrap(), 2);
                log.compact_cache_to(6);
                assert_eq!(log.entries(6, 11, None, ctx()).unwrap(), expected[5..]);
                assert!(
                    log.entries(5, 11, None, ctx()).is_err(),
                    "entries trimmed from the cache are read from the engine"
                );
                assert!(log.term(5).is_err());
            }

            /// Entries staged visibly stay cached until their batch is written, whatever the
            /// peer trims meanwhile: the engine does not have them yet.
            #[test]
            fn unwritten_entries_are_not_trimmed() {
                let (log, engine, _dir) = open_empty($open);
                log.append(&entries(1..3, 1), None, true).unwrap();
                let mut batch = engine.new_batch();
                let staged = log
                    .stage_append_visible(&entries(3..5, 1), None, &mut batch)
                    .unwrap();
                log.compact_cache_to(100);
                assert_eq!(log.entries(1, 5, None, ctx()).unwrap(), entries(1..5, 1));
                engine.write(&mut batch, true).unwrap();
                log.finish_append(staged);
                log.compact_cache_to(100);
                assert_eq!(log.entries(1, 5, None, ctx()).unwrap(), entries(1..5, 1));
            }

            /// A region's cache is bounded even when nothing is applied.
            #[test]
            fn entry_cache_is_bounded() {
                let (log, engine, _dir) = open_empty($open);
                let big: Vec<Entry> = (1..7)
                    .map(|index| Entry {
                        index,
                        term: 1,
                        data: vec![b'x'; 1 << 20].into(),
                        ..Default::default()
                    })
                    .collect();
                log.append(&big, None, true).unwrap();
                assert_eq!(log.entries(1, 7, None, ctx()).unwrap(), big);
                engine.compact_to(REGION, 7).unwrap();
                assert!(
                    log.entries(1, 7, None, ctx()).is_err(),
                    "6 MiB of entries do not all stay cached"
                );
                assert_eq!(log.entries(4, 7, None, ctx()).unwrap(), big[3..]);
            }

            #[test]
            fn staged_appends_of_many_regions_share_one_write() {
                let dir = tempfile::tempdir().unwrap();
                let engine = $open(&dir);
                let a = RaftLogStorage::open(engine.clone(), RegionId(1)).unwrap();
                let b = RaftLogStorage::open(engine.clone(), RegionId(2)).unwrap();
                let hard_state = HardState {
                    term: 3,
                    vote: 1,
                    commit: 1,
                    ..Default::default()
                };
                let mut batch = engine.new_batch();
                let staged_a = a
                    .stage_append(&entries(1..4, 3), Some(&hard_state), &mut batch)
                    .unwrap();
                let staged_b = b.stage_append(&entries(1..2, 3), None, &mut batch).unwrap();
                assert_eq!(
                    a.last_index().unwrap(),
                    0,
                    "nothing is visible before the batch is written"
                );
                let gap = b.stage_append(&[entry(5, 3)], None, &mut batch);
                assert!(
                    matches!(gap, Err(crate::Error::NonContiguous { first: 5, .. })),
                    "{gap:?}"
                );
                engine.write(&mut batch, true).unwrap();
                assert!(batch.is_empty());
                a.finish_append(staged_a);
                b.finish_append(staged_b);
                assert_eq!(a.last_index().unwrap(), 3);
                assert_eq!(a.term(3).unwrap(), 3);
                assert_eq!(a.hard_state(), hard_state);
                assert_eq!(b.entries(1, 2, None, ctx()).unwrap(), vec![entry(1, 3)]);
                drop((a, b, engine, batch));
                let engine = $open(&dir);
                let a = RaftLogStorage::open(engine.clone(), RegionId(1)).unwrap();
                let b = RaftLogStorage::open(engine, RegionId(2)).unwrap();
                assert_eq!(a.last_index().unwrap(), 3);
                assert_eq!(a.hard_state(), hard_state);
                assert_eq!(b.last_index().unwrap(), 1);
            }
        }
    };
}

storage_tests!(raft_engine, open_raft_engine);
storage_tests!(rocksdb, open_rocks);

fn log_files(dir: &TempDir) -> usize {
    std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".raftlog")
        })
        .count()
}

/// Compacted entries give their space back once the files are purged (issue 9, bug 9: purging
/// was never called and the raft directory only grew).
#[test]
fn purging_removes_files_of_compacted_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RaftEngineConfig::new(dir.path());
    cfg.target_file_size = 16 << 10;
    cfg.purge_threshold = 32 << 10;
    let engine = RaftEngineLog::open(&cfg).unwrap();
    let storage = RaftLogStorage::open(engine.clone(), REGION).unwrap();
    for batch in 0..20u64 {
        let entries: Vec<Entry> = (batch * 10 + 1..batch * 10 + 11)
            .map(|index| {
                let mut e = entry(index, 1);
                // Incompressible, so that the files really fill up.
                let mut x = index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                e.data = (0..1024)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect::<Vec<u8>>()
                    .into();
                e
            })
            .collect();
        storage.append(&entries, None, true).unwrap();
    }
    let before = log_files(&dir);
    assert!(before > 4, "{before} files");
    storage.compact(200).unwrap();
    engine.purge_expired_files().unwrap();
    let after = log_files(&dir);
    assert!(
        after < before / 2,
        "{before} files before purging, {after} after"
    );
    assert_eq!(storage.entries(200, 201, None, ctx()).unwrap().len(), 1);
}
