//! The batch-system glue: FSMs and poll handlers of the raft and apply pollers.

pub mod apply;
pub mod peer;
pub mod store;

use crate::log_gc::KvSyncs;
use std::sync::Arc;

use engine_traits::KvEngine;
use parking_lot::Mutex;
use raft_log_engine::RaftLogEngine;
use types::StoreId;

use crate::config::Config;
use crate::hibernate::Hibernation;
use crate::pd::PdScheduler;
use crate::peer_storage::SnapGenerator;
use crate::snap_apply::SnapApplier;
use crate::split_check::SplitChecker;
use crate::store_meta::StoreMeta;
use crate::transport::Transport;

pub(crate) use apply::check_write;
pub use apply::{ApplyControlFsm, ApplyFsm, ApplyMsg, ApplyRouter, ApplyTask, Proposal};
pub use peer::PeerFsm;
pub use store::{RaftRouter, StoreFsm};

/// What every handler of the raft poller works with.
pub struct PollContext<EK: KvEngine, ER: RaftLogEngine> {
    pub store_id: StoreId,
    pub cfg: Arc<Config>,
    pub kv: EK,
    pub raft: ER,
    pub router: RaftRouter<EK, ER>,
    pub apply_router: ApplyRouter<EK>,
    pub trans: Arc<dyn Transport>,
    pub pd_scheduler: PdScheduler,
    pub store_meta: Arc<Mutex<StoreMeta>>,
    pub snap_generator: SnapGenerator<EK>,
    pub snap_applier: SnapApplier<EK>,
    pub split_checker: SplitChecker<EK>,
    /// The data engine's syncs (see `log_gc`).
    pub kv_syncs: Arc<KvSyncs>,
    pub hibernation: Arc<Hibernation>,
}

impl<EK: KvEngine, ER: RaftLogEngine> Clone for PollContext<EK, ER> {
    fn clone(&self) -> Self {
        PollContext {
            store_id: self.store_id,
            cfg: self.cfg.clone(),
            kv: self.kv.clone(),
            raft: self.raft.clone(),
            router: self.router.clone(),
            apply_router: self.apply_router.clone(),
            trans: self.trans.clone(),
            pd_scheduler: self.pd_scheduler.clone(),
            store_meta: self.store_meta.clone(),
            snap_generator: self.snap_generator.clone(),
            snap_applier: self.snap_applier.clone(),
            split_checker: self.split_checker.clone(),
            kv_syncs: self.kv_syncs.clone(),
            hibernation: self.hibernation.clone(),
        }
    }
}
