//! The snapshot applier (TiKV's region worker, for applying): a thread that writes a received
//! snapshot's data into the data engine and makes it durable, so that the raft poller, which
//! every other region of the store shares, does not stall on it. Making a write durable means
//! flushing the memtables here (the data engine runs without a WAL), tens of milliseconds and
//! more with a busy disk.
//!
//! The peer hands its pending snapshot over before it takes raft-rs's ready and takes no ready
//! until told the data is durable ([`PeerMsg::SnapshotWritten`]); then it records the snapshot
//! in its raft log and tells raft-rs, as a synchronous apply did. The order on disk is kept:
//! data and apply state first, raft log after (a crash between the two is recovered at start,
//! `recover_log_behind_apply`). While the write runs, the snapshot's range is reserved in
//! [`crate::StoreMeta`], so that no other peer's snapshot, split or clean-up touches it.
//!
//! Whatever queued while one write was syncing is written next, with one sync for all of it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{self, Receiver, Sender};
use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::raft_serverpb::RaftApplyState;
use raft::eraftpb::Snapshot as RaftSnapshot;
use tracing::{error, info};

use crate::errors::{Error, Result};
use crate::log_gc::KvSyncs;
use crate::peer_storage::write_snapshot_data;

/// What the applier answers: the snapshot's region and the apply state it wrote.
pub type Written = Result<(metapb::Region, RaftApplyState)>;

struct Task<EK: KvEngine> {
    kv: EK,
    snapshot: RaftSnapshot,
    /// The range the peer holds now, if any ([`write_snapshot_data`]).
    replaced: Option<metapb::Region>,
    reply: Box<dyn FnOnce(Written) + Send>,
}

/// Handle to the applier thread; it stops when every handle is dropped.
pub struct SnapApplier<EK: KvEngine> {
    sender: Sender<Task<EK>>,
}

impl<EK: KvEngine> Clone for SnapApplier<EK> {
    fn clone(&self) -> Self {
        SnapApplier {
            sender: self.sender.clone(),
        }
    }
}

impl<EK: KvEngine> SnapApplier<EK> {
    /// Starts the applier thread. Its syncs count as the data engine's syncs for raft log GC.
    ///
    /// # Errors
    ///
    /// If the thread cannot be spawned.
    pub fn start(kv_syncs: Arc<KvSyncs>) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (sender, receiver) = channel::unbounded::<Task<EK>>();
        let handle = std::thread::Builder::new()
            .name("snap-applier".into())
            .spawn(move || run(&receiver, &kv_syncs))?;
        Ok((SnapApplier { sender }, handle))
    }

    /// Writes `snapshot` into `kv` durably on the applier thread, deleting what of the
    /// `replaced` range it does not cover, and hands the outcome to `reply` (an error at once
    /// if the thread is gone).
    pub fn schedule(
        &self,
        kv: EK,
        snapshot: RaftSnapshot,
        replaced: Option<metapb::Region>,
        reply: impl FnOnce(Written) + Send + 'static,
    ) {
        let task = Task {
            kv,
            snapshot,
            replaced,
            reply: Box::new(reply),
        };
        if let Err(channel::SendError(task)) = self.sender.send(task) {
            (task.reply)(Err(Error::PersistFailed(
                "the snapshot applier has stopped".into(),
            )));
        }
    }
}

fn run<EK: KvEngine>(receiver: &Receiver<Task<EK>>, kv_syncs: &KvSyncs) {
    while let Ok(first) = receiver.recv() {
        let started = Instant::now();
        let mut tasks = vec![first];
        tasks.extend(receiver.try_iter());
        let mut results: Vec<Written> = tasks
            .iter()
            .map(|task| write_snapshot_data(&task.kv, &task.snapshot, task.replaced.as_ref()))
            .collect();
        if results.iter().any(Result::is_ok) {
            // One engine per store: a sync covers every task's write.
            let kv = &tasks[0].kv;
            if let Err(e) = kv_syncs.run(|| kv.sync()) {
                error!(error = %e, "syncing applied snapshots failed");
                let reason = e.to_string();
                for result in &mut results {
                    if result.is_ok() {
                        *result = Err(Error::PersistFailed(reason.clone()));
                    }
                }
            }
        }
        let took = started.elapsed();
        for (task, result) in tasks.into_iter().zip(results) {
            match &result {
                Ok((region, apply_state)) => {
                    crate::metrics::SNAPSHOT_DURATION
                        .with_label_values(&["apply"])
                        .observe(took.as_secs_f64());
                    info!(
                        region_id = region.id,
                        index = apply_state.applied_index,
                        took_ms = took.as_millis() as u64,
                        "snapshot data written"
                    );
                }
                Err(e) => error!(
                    index = task.snapshot.get_metadata().index,
                    error = %e,
                    "writing a snapshot's data failed"
                ),
            }
            (task.reply)(result);
        }
    }
}
