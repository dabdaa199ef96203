//! The store FSM and the raft poller (seed: `StoreFsm`, `RaftPoller`), and starting and stopping
//! the two batch systems of a store.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use batch_system::{
    create_system, BatchSystem, Fsm, HandleResult, HandlerBuilder, NormalFsm, PollHandler,
};
use crossbeam::channel::{Receiver, Sender};
use engine_traits::KvEngine;
use kvproto::metapb;
use kvproto::raft_serverpb::{
    ExtraMessage, ExtraMessageType, PeerState, RaftMessage, RegionLocalState,
};
use parking_lot::Mutex;
use protobuf::Message as _;
use raft::eraftpb;
use raft_log_engine::RaftLogEngine;
use tracing::{debug, error, info, warn};
use types::{PeerId, RegionId, StoreId};

use crate::config::Config;
use crate::errors::{Error, Result};
use crate::fsm::apply::{ApplyControlFsm, ApplyPollerBuilder};
use crate::fsm::peer::{is_initial_message, PeerFsmDelegate};
use crate::fsm::{ApplyFsm, ApplyRouter, PeerFsm, PollContext};
use crate::hibernate::Hibernation;
use crate::log_gc::KvSyncs;
use crate::metrics;
use crate::msg::{PeerMsg, PeerTick, StoreMsg};
use crate::operation::{init_split_region, send_tombstone};
use crate::pd::{PdScheduler, PdTask};
use crate::peer_storage::{
    load_all_region_states, load_apply_state, load_region_state, SnapGenerator, RAFT_INIT_LOG_INDEX,
};
use crate::snap_apply::SnapApplier;
use crate::split_check::{SplitCheckConfig, SplitChecker};
use crate::store_meta::StoreMeta;
use crate::store_writer::{self, WriteTask, WriterSender};
use crate::transport::Transport;
use crate::util;

pub type RaftRouter<EK, ER> = batch_system::Router<PeerFsm<EK, ER>, StoreFsm<EK, ER>>;

pub struct StoreFsm<EK: KvEngine, ER: RaftLogEngine> {
    receiver: Receiver<StoreMsg>,
    /// Raft messages for regions that a split this store has not applied yet will create,
    /// delivered when it does: the new region's first vote requests arrive before that, and
    /// dropping them would leave the region without a leader for an election timeout.
    /// Each region's messages with when the first was kept.
    pending_split_messages: HashMap<u64, (Instant, Vec<RaftMessage>)>,
    _engines: PhantomData<fn() -> (EK, ER)>,
}

/// Bounds on [`StoreFsm::pending_split_messages`]: messages kept per region, and regions.
const MAX_PENDING_MESSAGES_PER_REGION: usize = 16;
const MAX_PENDING_REGIONS: usize = 1024;

impl<EK: KvEngine, ER: RaftLogEngine> StoreFsm<EK, ER> {
    /// Keeps a message for a region that a split this store has not applied yet will create,
    /// within the bounds on how many are kept. When the regions are at their bound, the oldest
    /// region's messages make room: a split that never applies here (its parent moved away
    /// first) or whose peer came another way leaves messages nobody takes, and they must not
    /// crowd out the next splits'.
    fn keep_for_pending_split(&mut self, msg: RaftMessage, now: Instant) {
        if self.pending_split_messages.len() >= MAX_PENDING_REGIONS
            && !self.pending_split_messages.contains_key(&msg.region_id)
        {
            let oldest = self
                .pending_split_messages
                .iter()
                .min_by_key(|(_, (kept_at, _))| *kept_at)
                .map(|(region_id, _)| *region_id);
            if let Some(oldest) = oldest {
                self.pending_split_messages.remove(&oldest);
            }
        }
        let (_, pending) = self
            .pending_split_messages
            .entry(msg.region_id)
            .or_insert_with(|| (now, Vec::new()));
        if pending.len() >= MAX_PENDING_MESSAGES_PER_REGION {
            pending.remove(0);
        }
        pending.push(msg);
    }

    /// The messages kept for `region_id`, oldest first, to deliver before any newer one.
    fn take_pending_split_messages(&mut self, region_id: u64) -> Vec<RaftMessage> {
        self.pending_split_messages
            .remove(&region_id)
            .map(|(_, messages)| messages)
            .unwrap_or_default()
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> Fsm for StoreFsm<EK, ER> {
    type Message = StoreMsg;

    fn is_stopped(&self) -> bool {
        false
    }
}

/// Messages handled per FSM per round before others get a turn.
const MAX_MESSAGES_PER_ROUND: usize = 256;

pub struct RaftPoller<EK: KvEngine, ER: RaftLogEngine> {
    ctx: PollContext<EK, ER>,
    /// The round's raft log writes, of every peer with a ready: written with one sync in
    /// `end` (group commit, TiKV's per-poll `write_batch`), or handed to the store writer.
    log_batch: ER::Batch,
    /// The store writer, with `store-io-pool-size = 1`.
    writer: Option<WriterSender<ER>>,
    /// The peers that staged a ready in `log_batch` this round.
    staged: Vec<(RegionId, PeerId)>,
    /// Whether one of them needs the write synced; a round that only moved commit indexes
    /// writes without a sync.
    must_sync: bool,
}

impl<EK: KvEngine, ER: RaftLogEngine> PollHandler<PeerFsm<EK, ER>, StoreFsm<EK, ER>>
    for RaftPoller<EK, ER>
{
    fn begin(&mut self, _batch_size: usize) {}

    fn handle_control(&mut self, store: &mut StoreFsm<EK, ER>) -> Option<usize> {
        for _ in 0..MAX_MESSAGES_PER_ROUND {
            match store.receiver.try_recv() {
                Ok(msg) => self.on_store_msg(store, msg),
                Err(_) => return Some(0),
            }
        }
        None
    }

    fn handle_normal(&mut self, fsm: &mut PeerFsm<EK, ER>) -> HandleResult {
        let mut handled = 0;
        let mut delegate = PeerFsmDelegate::new(fsm, &self.ctx);
        while handled < MAX_MESSAGES_PER_ROUND {
            match delegate.fsm.receiver().try_recv() {
                Ok(msg) => delegate.handle_msg(msg),
                Err(_) => break,
            }
            handled += 1;
        }
        if let Some(must_sync) = delegate.collect_ready(&mut self.log_batch) {
            let peer = &delegate.fsm.peer;
            self.must_sync |= must_sync;
            self.staged.push((peer.region_id, peer.peer_id()));
        }
        if handled == MAX_MESSAGES_PER_ROUND {
            HandleResult::KeepProcessing
        } else {
            HandleResult::stop_at(0)
        }
    }

    fn end(&mut self, normals: &mut [Option<NormalFsm<PeerFsm<EK, ER>>>]) {
        if self.staged.is_empty() {
            return;
        }
        let peers = std::mem::take(&mut self.staged);
        let sync = std::mem::take(&mut self.must_sync);
        if let Some(writer) = &self.writer {
            let batch = std::mem::replace(&mut self.log_batch, self.ctx.raft.new_batch());
            let task = WriteTask {
                batch,
                sync,
                peers,
                queued_at: Instant::now(),
            };
            // The writer outlives the pollers; a failed send means the store is stopping.
            let _ = writer.send(task);
            return;
        }
        let mut waiting = normals
            .iter_mut()
            .flatten()
            .filter(|normal| normal.peer.has_unpersisted_ready())
            .peekable();
        if waiting.peek().is_none() {
            return;
        }
        let start = Instant::now();
        let written = self.ctx.raft.write(&mut self.log_batch, sync);
        metrics::APPEND_LOG_DURATION.observe(start.elapsed().as_secs_f64());
        if written.is_err() {
            // What a failed write left in the batch must not reach a later one.
            self.log_batch = self.ctx.raft.new_batch();
        }
        let written = written.map_err(Error::from);
        for normal in waiting {
            let mut delegate = PeerFsmDelegate::new(normal, &self.ctx);
            match &written {
                Ok(()) => delegate.on_ready_persisted(),
                Err(e) => delegate.on_persist_failed(e),
            }
        }
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> RaftPoller<EK, ER> {
    fn on_store_msg(&mut self, store: &mut StoreFsm<EK, ER>, msg: StoreMsg) {
        match msg {
            StoreMsg::RaftMessage(msg) => {
                if let Err(e) = self.maybe_create_peer(store, *msg) {
                    warn!(error = %e, "cannot create a peer for a raft message");
                }
            }
            StoreMsg::SplitRegions { regions, campaign } => {
                for region in regions {
                    if let Err(e) = self.create_split_peer(&region, campaign) {
                        error!(region_id = region.id, error = %e, "cannot create the peer of a split region");
                    }
                    self.ctx
                        .store_meta
                        .lock()
                        .splitting
                        .remove(&RegionId(region.id));
                    // Delivered even if the peer existed already (a snapshot made it).
                    self.deliver_kept(store, region.id, None);
                }
            }
            StoreMsg::PeerDestroyed { region_id, peer_id } => {
                info!(
                    region_id = region_id.get(),
                    peer_id = peer_id.get(),
                    "peer destroyed"
                );
            }
            StoreMsg::LivenessTick => self.on_liveness_tick(),
            StoreMsg::StoreHeartbeatTick => {
                let (region_count, leader_count) = {
                    let meta = self.ctx.store_meta.lock();
                    (meta.regions.len() as u32, meta.readers.len() as u32)
                };
                self.ctx.pd_scheduler.schedule(PdTask::StoreHeartbeat {
                    region_count,
                    leader_count,
                });
            }
        }
    }

    /// Tells every store this one shares a region with that it is alive, and wakes every
    /// sleeping replica when one of them has been silent for an election timeout.
    fn on_liveness_tick(&mut self) {
        let store_id = self.ctx.store_id.get();
        let peer_stores: HashSet<u64> = {
            let meta = self.ctx.store_meta.lock();
            meta.regions
                .values()
                .flat_map(|region| region.peers.iter().map(|p| p.store_id))
                .filter(|id| *id != store_id)
                .collect()
        };
        for to in &peer_stores {
            self.ctx.trans.send(RaftMessage {
                region_id: 0,
                from_peer: Some(metapb::Peer {
                    store_id,
                    ..Default::default()
                }),
                to_peer: Some(metapb::Peer {
                    store_id: *to,
                    ..Default::default()
                }),
                extra_msg: Some(ExtraMessage {
                    r#type: ExtraMessageType::MsgStoreHeartbeat as i32,
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let silent = self.ctx.hibernation.newly_silent(
            &peer_stores,
            Instant::now(),
            self.ctx.cfg.election_timeout(),
        );
        if silent.is_empty() {
            return;
        }
        let asleep: Vec<u64> = self.ctx.hibernation.asleep().iter().copied().collect();
        info!(
            stores = ?silent,
            regions = asleep.len(),
            "stores went silent; waking the hibernating regions"
        );
        for region_id in asleep {
            let _ = self.ctx.router.force_send(region_id, PeerMsg::WakeUp);
        }
    }

    fn register(&self, peer: BasicPair<EK, ER>) {
        let (peer_mailbox, apply_mailbox, region_id) = peer;
        self.ctx.apply_router.register(region_id, apply_mailbox);
        self.ctx.router.register(region_id, peer_mailbox);
    }

    fn maybe_create_peer(&mut self, store: &mut StoreFsm<EK, ER>, msg: RaftMessage) -> Result<()> {
        if let Some(extra) = &msg.extra_msg {
            // Hibernation messages never create a peer.
            if extra.r#type() == ExtraMessageType::MsgStoreHeartbeat {
                if let Some(from) = msg.from_peer {
                    self.ctx
                        .hibernation
                        .heard_from(from.store_id, Instant::now());
                }
            }
            return Ok(());
        }
        let region_id = msg.region_id;
        if self.ctx.router.mailbox(region_id).is_some() {
            // Created meanwhile (by a snapshot, say): deliver, after what was kept for it.
            self.deliver_kept(store, region_id, Some(msg));
            return Ok(());
        }
        let Some(to_peer) = msg.to_peer else {
            return Ok(());
        };
        if to_peer.store_id != self.ctx.store_id.get() || msg.is_tombstone {
            return Ok(());
        }
        let raft_msg = eraftpb::Message::parse_from_carllerche_bytes(&msg.message)
            .map_err(|e| Error::InvalidRequest(format!("undecodable raft message: {e}")))?;
        if !is_initial_message(&raft_msg) {
            return Ok(());
        }
        let local_state = load_region_state(&self.ctx.kv, region_id)?;
        if let Some(state) = &local_state {
            if state.state == PeerState::Tombstone as i32 {
                let local = state.region.clone().unwrap_or_default();
                let local_conf_ver = local.region_epoch.map_or(0, |e| e.conf_ver);
                let msg_conf_ver = msg.region_epoch.map_or(0, |e| e.conf_ver);
                let stale_peer =
                    util::find_peer(&local, self.ctx.store_id).is_some_and(|p| p.id >= to_peer.id);
                if msg_conf_ver <= local_conf_ver || stale_peer {
                    debug!(region_id, "message for a destroyed peer dropped");
                    if msg_conf_ver < local_conf_ver {
                        self.answer_removed_sender(&msg, &local);
                    }
                    return Ok(());
                }
            }
        }
        let (overlapping, splitting) = {
            let meta = self.ctx.store_meta.lock();
            let overlapping = meta
                .overlapping_region(RegionId(region_id), &msg.start_key, &msg.end_key)
                .and_then(|other| {
                    let epoch = meta.region(other)?.region_epoch.unwrap_or_default();
                    Some((other, epoch))
                });
            (overlapping, meta.splitting.contains(&RegionId(region_id)))
        };
        if splitting {
            // A split applied here creates the peer (`StoreMsg::SplitRegions`, queued).
            store.keep_for_pending_split(msg, Instant::now());
            return Ok(());
        }
        if let Some((other, epoch)) = overlapping {
            // From a split of `other` that this store has not applied yet (the message's
            // region is newer), which will create the peer: keep the message until then.
            if msg.region_epoch.unwrap_or_default().version > epoch.version {
                debug!(
                    region_id,
                    overlaps = other.get(),
                    "message for a region a pending split creates; kept"
                );
                store.keep_for_pending_split(msg, Instant::now());
            }
            return Ok(());
        }
        let tombstone = match &local_state {
            Some(state) if state.state == PeerState::Normal as i32 => {
                // The region has data here but no peer: it stopped after a failed write. A
                // new, empty peer must not take over its data and raft state; a restart
                // recovers it from disk.
                warn!(
                    region_id,
                    "message for a region whose peer stopped after a write failure dropped; restart the store to recover the region"
                );
                return Ok(());
            }
            Some(_) => true,
            None => false,
        };
        info!(
            region_id,
            peer_id = to_peer.id,
            "creating peer for a raft message"
        );
        let (peer_mailbox, apply_mailbox) =
            PeerFsm::replicate(&self.ctx, region_id, to_peer, tombstone)?;
        self.register((peer_mailbox, apply_mailbox, region_id));
        // Messages kept for the region before this one go first, as if they had come now.
        self.deliver_kept(store, region_id, Some(msg));
        Ok(())
    }

    /// Answers a message for a region whose replica here was destroyed, sent under an older
    /// configuration than the destroyed replica's last one, with a tombstone message if that
    /// configuration had no replica on the sender's store (TiKV's gc message): the sender was
    /// removed without hearing of it. Otherwise a replica removed while it was cut off, whose
    /// region then left every store it knows, would campaign against these stores forever.
    fn answer_removed_sender(&self, msg: &RaftMessage, destroyed: &metapb::Region) {
        let (Some(from), Some(to)) = (msg.from_peer, msg.to_peer) else {
            return;
        };
        if util::find_peer(destroyed, StoreId(from.store_id)).is_some() {
            return;
        }
        send_tombstone(
            self.ctx.trans.as_ref(),
            msg.region_id,
            to,
            from,
            destroyed.region_epoch,
        );
    }

    /// Sends the peer of `region_id` the messages kept for it, oldest first, then `msg`.
    fn deliver_kept(&self, store: &mut StoreFsm<EK, ER>, region_id: u64, msg: Option<RaftMessage>) {
        for msg in store
            .take_pending_split_messages(region_id)
            .into_iter()
            .chain(msg)
        {
            let _ = self
                .ctx
                .router
                .force_send(region_id, PeerMsg::RaftMessage(Box::new(msg)));
        }
    }

    fn create_split_peer(&mut self, region: &metapb::Region, campaign: bool) -> Result<()> {
        if self
            .ctx
            .store_meta
            .lock()
            .region(RegionId(region.id))
            .is_some()
        {
            // Already initialized here, or being so, by a snapshot that arrived before the
            // split applied.
            return Ok(());
        }
        // A crash here leaves the split's region state and apply state in the data engine
        // (written by the apply batch) and no raft log; `Peer::new` rebuilds the log's start.
        fail::fail_point!("before_create_split_peer", |_| Ok(()));
        init_split_region(&self.ctx.raft, region)?;
        let (peer_mailbox, apply_mailbox) = PeerFsm::create(&self.ctx, region.clone())?;
        self.register((peer_mailbox, apply_mailbox, region.id));
        self.ctx.store_meta.lock().set_region(region);
        info!(region_id = region.id, "peer of a split region created");
        if campaign {
            let _ = self.ctx.router.force_send(region.id, PeerMsg::Campaign);
        }
        Ok(())
    }
}

type BasicPair<EK, ER> = (
    batch_system::BasicMailbox<PeerFsm<EK, ER>>,
    batch_system::BasicMailbox<ApplyFsm<EK>>,
    u64,
);

struct RaftPollerBuilder<EK: KvEngine, ER: RaftLogEngine> {
    ctx: PollContext<EK, ER>,
    writer: Option<WriterSender<ER>>,
}

impl<EK: KvEngine, ER: RaftLogEngine> HandlerBuilder<PeerFsm<EK, ER>, StoreFsm<EK, ER>>
    for RaftPollerBuilder<EK, ER>
{
    type Handler = RaftPoller<EK, ER>;

    fn build(&mut self) -> RaftPoller<EK, ER> {
        RaftPoller {
            ctx: self.ctx.clone(),
            log_batch: self.ctx.raft.new_batch(),
            writer: self.writer.clone(),
            staged: Vec::new(),
            must_sync: false,
        }
    }
}

/// The raft and apply batch systems of a store, created but not yet started, so that the
/// transport and PD worker can be given the router first.
pub struct RaftSystemBuilder<EK: KvEngine, ER: RaftLogEngine> {
    pub router: RaftRouter<EK, ER>,
    pub apply_router: ApplyRouter<EK>,
    raft_system: BatchSystem<PeerFsm<EK, ER>, StoreFsm<EK, ER>>,
    apply_system: BatchSystem<ApplyFsm<EK>, ApplyControlFsm>,
    cfg: Arc<Config>,
}

/// A running store: stop it with [`RaftSystem::shutdown`] (also on drop).
pub struct RaftSystem<EK: KvEngine, ER: RaftLogEngine> {
    raft_system: BatchSystem<PeerFsm<EK, ER>, StoreFsm<EK, ER>>,
    apply_system: BatchSystem<ApplyFsm<EK>, ApplyControlFsm>,
    /// Dropped to stop the ticker at once, whatever the tick interval.
    stop_ticker: Option<Sender<()>>,
    ticker: Option<JoinHandle<()>>,
    purger: Option<JoinHandle<()>>,
    kv_syncer: Option<JoinHandle<()>>,
    /// Stops once the raft pollers, which hold its senders, are gone.
    writer: Option<JoinHandle<()>>,
    /// The snapshot applier; it also stops once the raft pollers are gone, after the writes
    /// they handed it.
    snap_applier: Option<JoinHandle<()>>,
    hibernation: Arc<Hibernation>,
}

fn batch_config(pool_size: usize) -> batch_system::Config {
    batch_system::Config {
        pool_size,
        ..batch_system::Config::default()
    }
}

/// Creates the batch systems of a store.
pub fn create_raft_system<EK: KvEngine, ER: RaftLogEngine>(
    cfg: Config,
) -> RaftSystemBuilder<EK, ER> {
    let (store_tx, store_rx): (Sender<StoreMsg>, _) = crossbeam::channel::unbounded();
    let store_fsm = Box::new(StoreFsm {
        receiver: store_rx,
        pending_split_messages: HashMap::new(),
        _engines: PhantomData,
    });
    let (router, raft_system) =
        create_system(&batch_config(cfg.store_pool_size), store_tx, store_fsm);
    let (apply_tx, apply_fsm) = ApplyControlFsm::new();
    let (apply_router, apply_system) =
        create_system(&batch_config(cfg.apply_pool_size), apply_tx, apply_fsm);
    RaftSystemBuilder {
        router,
        apply_router,
        raft_system,
        apply_system,
        cfg: Arc::new(cfg),
    }
}

/// What a store needs to start its raft system.
pub struct StoreDeps<EK: KvEngine, ER: RaftLogEngine> {
    pub store_id: StoreId,
    pub kv: EK,
    pub raft: ER,
    pub trans: Arc<dyn Transport>,
    pub pd_scheduler: PdScheduler,
    pub store_meta: Arc<Mutex<StoreMeta>>,
    /// When regions split by size (`[coprocessor]`).
    pub split_check: SplitCheckConfig,
}

impl<EK: KvEngine, ER: RaftLogEngine> RaftSystemBuilder<EK, ER> {
    /// Loads every region of the store, starts the pollers and the ticker.
    ///
    /// # Errors
    ///
    /// Engine errors while loading, or a thread that cannot be started.
    pub fn start(self, deps: StoreDeps<EK, ER>) -> Result<RaftSystem<EK, ER>> {
        let RaftSystemBuilder {
            router,
            apply_router,
            mut raft_system,
            mut apply_system,
            cfg,
        } = self;
        let (snap_generator, _snap_thread) = SnapGenerator::start().map_err(|e| Error::Start {
            what: "snapshot generator",
            reason: e.to_string(),
        })?;
        let (split_checker, _split_thread) = SplitChecker::start(deps.split_check.clone())
            .map_err(|e| Error::Start {
                what: "split checker",
                reason: e.to_string(),
            })?;
        let kv_syncs = Arc::<KvSyncs>::default();
        let (snap_applier, snap_apply_thread) =
            SnapApplier::start(kv_syncs.clone()).map_err(|e| Error::Start {
                what: "snapshot applier",
                reason: e.to_string(),
            })?;
        let ctx = PollContext {
            store_id: deps.store_id,
            cfg: cfg.clone(),
            kv: deps.kv.clone(),
            raft: deps.raft.clone(),
            router: router.clone(),
            apply_router: apply_router.clone(),
            trans: deps.trans,
            pd_scheduler: deps.pd_scheduler,
            store_meta: deps.store_meta,
            snap_generator,
            snap_applier,
            split_checker,
            kv_syncs,
            hibernation: Arc::default(),
        };
        let kv_syncs = ctx.kv_syncs.clone();
        let hibernation = ctx.hibernation.clone();
        let store_hibernation = hibernation.clone();
        let mut peers = Vec::new();
        let mut applies = Vec::new();
        let states = load_all_region_states(&deps.kv)?;
        check_raft_log_matches_data(&deps.kv, &deps.raft, &states)?;
        for state in states {
            if state.state != PeerState::Normal as i32 {
                continue;
            }
            let Some(region) = state.region else {
                continue;
            };
            if util::find_peer(&region, deps.store_id).is_none() {
                continue;
            }
            let (peer, apply) = PeerFsm::create(&ctx, region.clone())?;
            ctx.store_meta.lock().set_region(&region);
            peers.push((region.id, peer));
            applies.push((region.id, apply));
        }
        info!(
            store_id = deps.store_id.get(),
            regions = peers.len(),
            "raftstore starting"
        );
        apply_router.register_all(applies);
        router.register_all(peers);
        apply_system
            .spawn(
                "apply",
                ApplyPollerBuilder {
                    kv: deps.kv.clone(),
                    router: router.clone(),
                },
            )
            .map_err(|e| Error::Start {
                what: "apply pollers",
                reason: e.to_string(),
            })?;
        let (writer, writer_thread) = if cfg.store_io_pool_size > 0 {
            let (sender, thread) = store_writer::spawn(deps.raft.clone(), router.clone())?;
            (Some(sender), Some(thread))
        } else {
            (None, None)
        };
        raft_system
            .spawn("raftstore", RaftPollerBuilder { ctx, writer })
            .map_err(|e| Error::Start {
                what: "raft pollers",
                reason: e.to_string(),
            })?;
        let (stop_ticker, stopped) = crossbeam::channel::bounded(0);
        let ticker = spawn_ticker(router, &cfg, stopped.clone(), hibernation)?;
        let kv_syncer = spawn_kv_syncer(
            deps.kv.clone(),
            kv_syncs,
            cfg.raft_log_gc_tick_interval.0,
            stopped.clone(),
        )?;
        let purger = spawn_purger(deps.raft.clone(), cfg.raft_engine_purge_interval.0, stopped)?;
        Ok(RaftSystem {
            raft_system,
            apply_system,
            stop_ticker: Some(stop_ticker),
            ticker: Some(ticker),
            purger: Some(purger),
            kv_syncer: Some(kv_syncer),
            writer: writer_thread,
            snap_applier: Some(snap_apply_thread),
            hibernation: store_hibernation,
        })
    }
}

/// Runs `work` on a thread named `name` every `interval` until `stop` ends.
fn spawn_periodic(
    name: &str,
    what: &'static str,
    interval: Duration,
    stop: Receiver<()>,
    mut work: impl FnMut() + Send + 'static,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || loop {
            match stop.recv_timeout(interval) {
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => work(),
                _ => return,
            }
        })
        .map_err(|e| Error::Start {
            what,
            reason: e.to_string(),
        })
}

/// Reclaims the raft log engine's files of compacted entries every `interval`, off the raft
/// threads (a purge may rewrite files).
fn spawn_purger<ER: RaftLogEngine>(
    raft: ER,
    interval: Duration,
    stop: Receiver<()>,
) -> Result<JoinHandle<()>> {
    spawn_periodic(
        "raft-log-purge",
        "raft log purger",
        interval,
        stop,
        move || match raft.purge_expired_files() {
            Ok(lagging) if !lagging.is_empty() => {
                warn!(regions = ?lagging, "raft log files are held back by these regions' old entries");
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "purging raft log files failed"),
        },
    )
}

/// Whether the store heartbeat is due at the ticker's `count`-th tick (counted from 1): at the
/// first, so that PD hears from a store as soon as it starts, then every `every` ticks.
fn store_heartbeat_due(count: u64, every: u64) -> bool {
    count.saturating_sub(1).is_multiple_of(every)
}

fn sync_for_log_gc<EK: KvEngine>(kv: &EK) -> Result<()> {
    fail::fail_point!("sync_for_log_gc", |_| Err(Error::FailPoint(
        "sync_for_log_gc"
    )));
    Ok(kv.sync()?)
}

/// Syncs the data engine every `interval` (a memtable flush when it has no WAL), so that raft
/// log GC may drop what the sync covered (see `log_gc`). A thread of its own: a flush of full
/// memtables takes a fraction of a second, which would hold up the ticks.
fn spawn_kv_syncer<EK: KvEngine>(
    kv: EK,
    syncs: Arc<KvSyncs>,
    interval: Duration,
    stop: Receiver<()>,
) -> Result<JoinHandle<()>> {
    spawn_periodic("kv-sync", "data engine syncer", interval, stop, move || {
        let start = Instant::now();
        match syncs.run(|| sync_for_log_gc(&kv)) {
            Ok(()) => metrics::RAFT_LOG_KV_SYNC_DURATION.observe(start.elapsed().as_secs_f64()),
            Err(e) => warn!(error = %e, "syncing the data engine failed; raft logs are kept"),
        }
    })
}

/// Refuses to start on a raft log that cannot be this data engine's: one holding no region at
/// all while the data engine has regions that applied entries past their initial log. That is
/// a raft log directory moved or emptied (`raft-engine.dir` changed, say), not a crash (which
/// leaves the regions' raft states, or only the newest ones missing): starting would rebuild
/// every region's log at its applied index, losing each replica's term, vote and the entries
/// it had acknowledged but not applied.
fn check_raft_log_matches_data<EK: KvEngine, ER: RaftLogEngine>(
    kv: &EK,
    raft: &ER,
    states: &[RegionLocalState],
) -> Result<()> {
    if !raft.regions()?.is_empty() {
        return Ok(());
    }
    let mut with_data = 0;
    for state in states {
        let Some(region) = state
            .region
            .as_ref()
            .filter(|_| state.state == PeerState::Normal as i32)
        else {
            continue;
        };
        let applied = load_apply_state(kv, region.id)?.map_or(0, |s| s.applied_index);
        if applied > RAFT_INIT_LOG_INDEX {
            with_data += 1;
        }
    }
    if with_data == 0 {
        return Ok(());
    }
    Err(Error::Start {
        what: "raftstore",
        reason: format!(
            "the raft log is empty but the data engine holds {with_data} regions with applied \
             entries: the raft log directory is not this store's (was raft-engine.dir changed \
             or the directory emptied?). Point raft-engine.dir at the store's raft log (by \
             default \"raft\" under storage.data-dir)"
        ),
    })
}

/// Drives the ticks of every peer that is not hibernating from one thread.
fn spawn_ticker<EK: KvEngine, ER: RaftLogEngine>(
    router: RaftRouter<EK, ER>,
    cfg: &Config,
    stop: Receiver<()>,
    hibernation: Arc<Hibernation>,
) -> Result<JoinHandle<()>> {
    let base = cfg.raft_base_tick_interval.0;
    let every = |interval: Duration| (interval.as_millis() / base.as_millis().max(1)).max(1) as u64;
    let gc_every = every(cfg.raft_log_gc_tick_interval.0);
    let pd_every = every(cfg.pd_heartbeat_tick_interval.0);
    let store_every = every(cfg.pd_store_heartbeat_tick_interval.0);
    let split_every = every(cfg.split_region_check_tick_interval.0);
    let stale_every = every(cfg.peer_stale_state_check_interval.0);
    let liveness_every = cfg.raft_heartbeat_ticks as u64;
    let hibernate = cfg.hibernate_regions;
    std::thread::Builder::new()
        .name("raft-ticker".into())
        .spawn(move || {
            let mut count: u64 = 0;
            while !router.is_shutdown() {
                match stop.recv_timeout(base) {
                    Err(crossbeam::channel::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                count += 1;
                // Copied, so that no replica waits on the set while the ticks go out.
                let asleep = hibernation.asleep().clone();
                crate::metrics::HIBERNATED_PEERS
                    .with_label_values(&["hibernated"])
                    .set(asleep.len() as i64);
                router.broadcast_normal_to(
                    |region_id| !asleep.contains(&region_id),
                    || PeerMsg::Tick(PeerTick::Raft),
                );
                if count.is_multiple_of(gc_every) {
                    // Peers compact only what a sync covered (see `log_gc`).
                    // As in TiKV, only the raft tick skips sleeping replicas: the others are
                    // seconds apart and do not wake them.
                    router.broadcast_normal(|| PeerMsg::Tick(PeerTick::RaftLogGc));
                }
                if count.is_multiple_of(pd_every) {
                    router.broadcast_normal(|| PeerMsg::Tick(PeerTick::PdHeartbeat));
                }
                if count.is_multiple_of(split_every) {
                    router.broadcast_normal(|| PeerMsg::Tick(PeerTick::SplitRegionCheck));
                }
                if count.is_multiple_of(stale_every) {
                    router.broadcast_normal(|| PeerMsg::Tick(PeerTick::CheckPeerStaleState));
                }
                if store_heartbeat_due(count, store_every) {
                    let _ = router.force_send_control(StoreMsg::StoreHeartbeatTick);
                }
                if hibernate && count.is_multiple_of(liveness_every) {
                    let _ = router.force_send_control(StoreMsg::LivenessTick);
                }
            }
        })
        .map_err(|e| Error::Start {
            what: "raft ticker",
            reason: e.to_string(),
        })
}

impl<EK: KvEngine, ER: RaftLogEngine> RaftSystem<EK, ER> {
    /// Which of the store's replicas hibernate.
    pub fn hibernation(&self) -> &Arc<Hibernation> {
        &self.hibernation
    }

    /// Stops the ticker and the pollers, waiting for their threads.
    pub fn shutdown(&mut self) {
        self.stop_ticker.take();
        for thread in [
            self.ticker.take(),
            self.purger.take(),
            self.kv_syncer.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = thread.join();
        }
        self.raft_system.shutdown();
        for thread in [self.writer.take(), self.snap_applier.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
        self.apply_system.shutdown();
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> Drop for RaftSystem<EK, ER> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_pending_split_bound_the_oldest_regions_messages_make_room() {
        let (_tx, receiver) = crossbeam::channel::unbounded();
        let mut store: StoreFsm<engine_memory::MemoryEngine, raft_log_engine::RaftEngineLog> =
            StoreFsm {
                receiver,
                pending_split_messages: HashMap::new(),
                _engines: PhantomData,
            };
        let message = |region_id: u64| RaftMessage {
            region_id,
            ..Default::default()
        };
        let start = Instant::now();
        for region_id in 0..MAX_PENDING_REGIONS as u64 {
            let kept_at = start + Duration::from_millis(region_id);
            store.keep_for_pending_split(message(region_id), kept_at);
        }
        let later = start + Duration::from_secs(60);
        store.keep_for_pending_split(message(u64::MAX), later);
        assert_eq!(store.pending_split_messages.len(), MAX_PENDING_REGIONS);
        assert!(store.pending_split_messages.contains_key(&u64::MAX));
        assert!(
            !store.pending_split_messages.contains_key(&0),
            "the oldest went"
        );
        // A region already kept takes more messages, up to its own bound (oldest dropped).
        for _ in 0..MAX_PENDING_MESSAGES_PER_REGION + 1 {
            store.keep_for_pending_split(message(1), later);
        }
        assert_eq!(store.pending_split_messages.len(), MAX_PENDING_REGIONS);
        assert_eq!(
            store.take_pending_split_messages(1).len(),
            MAX_PENDING_MESSAGES_PER_REGION
        );
        assert!(store.take_pending_split_messages(1).is_empty());
    }

    #[test]
    fn the_store_heartbeat_is_due_at_the_first_tick_then_every_interval() {
        // An interval of one tick (e.g. 1 s heartbeats with 1 s ticks) is every tick.
        assert!((1..=5).all(|count| store_heartbeat_due(count, 1)));
        let due: Vec<u64> = (1..=25).filter(|&c| store_heartbeat_due(c, 10)).collect();
        assert_eq!(due, vec![1, 11, 21]);
    }
}
