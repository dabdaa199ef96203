//! The store writer (TiKV's `StoreWriter`, `store-io-pool-size = 1`): a thread that writes and
//! syncs the raft log batches of the raft pollers, so that a poller hands its round's batch over
//! and goes on stepping other peers while the fsync runs.
//!
//! Whatever queued while one write was syncing is written next, with one sync for all of it
//! (none if every ready in it only moved a commit index): a synced write makes every earlier
//! write of the engine durable (raft-engine syncs a file before rotating to the next), so
//! batches written unsynced before it are covered. Each peer
//! of a batch is told, in order, once its ready is durable ([`PeerMsg::Persisted`]).
//!
//! A peer has at most one ready in flight: it makes no new ready until told (`handle_ready`
//! waits on `unpersisted`), and a peer to be destroyed waits for its write, so that clearing
//! its log cannot be overtaken by the write.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};
use engine_traits::KvEngine;
use raft_log_engine::RaftLogEngine;
use tracing::error;
use types::{PeerId, RegionId};

use crate::errors::{Error, Result};
use crate::fsm::RaftRouter;
use crate::metrics;
use crate::msg::PeerMsg;

/// One raft poll round's raft log batch and the peers whose readies it holds.
pub(crate) struct WriteTask<ER: RaftLogEngine> {
    pub(crate) batch: ER::Batch,
    /// Whether a ready in it must be durable before its peer hears back.
    pub(crate) sync: bool,
    pub(crate) peers: Vec<(RegionId, PeerId)>,
    /// When the poller handed it over: the append duration runs from here to durable.
    pub(crate) queued_at: Instant,
}

/// Where raft pollers hand their batches; cloned into each poller.
pub(crate) type WriterSender<ER> = Sender<WriteTask<ER>>;

/// Starts the writer thread. It stops once every sender is dropped (the raft pollers stopped).
pub(crate) fn spawn<EK: KvEngine, ER: RaftLogEngine>(
    raft: ER,
    router: RaftRouter<EK, ER>,
) -> Result<(WriterSender<ER>, JoinHandle<()>)> {
    let (sender, receiver) = crossbeam::channel::unbounded();
    let thread = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(&raft, &router, &receiver))
        .map_err(|e| Error::Start {
            what: "store writer",
            reason: e.to_string(),
        })?;
    Ok((sender, thread))
}

fn run<EK: KvEngine, ER: RaftLogEngine>(
    raft: &ER,
    router: &RaftRouter<EK, ER>,
    receiver: &Receiver<WriteTask<ER>>,
) {
    while let Ok(first) = receiver.recv() {
        let mut tasks = vec![first];
        tasks.extend(receiver.try_iter());
        let written = write_all(raft, &mut tasks);
        if let Err(e) = &written {
            error!(error = %e, "raft log write failed; its peers stop");
        }
        for task in tasks {
            metrics::APPEND_LOG_DURATION.observe(task.queued_at.elapsed().as_secs_f64());
            for (region_id, peer_id) in task.peers {
                let msg = PeerMsg::Persisted {
                    peer_id,
                    error: written.as_ref().err().map(ToString::to_string),
                };
                // A peer gone meanwhile (the store stopping) needs no answer.
                let _ = router.force_send(region_id.get(), msg);
            }
        }
    }
}

/// Writes the batches in order and syncs once, with the last one that must be durable (a sync
/// makes the writes before it durable too; writing an empty batch does nothing, not even sync).
/// After a failure none of them is known durable.
fn write_all<ER: RaftLogEngine>(raft: &ER, tasks: &mut [WriteTask<ER>]) -> Result<()> {
    use raft_log_engine::RaftLogBatch as _;
    let last_synced = tasks
        .iter()
        .rposition(|task| task.sync && !task.batch.is_empty());
    for (i, task) in tasks.iter_mut().enumerate() {
        if !task.batch.is_empty() {
            raft.write(&mut task.batch, Some(i) == last_synced)?;
        }
    }
    Ok(())
}
