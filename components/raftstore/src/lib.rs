//! Multi-raft replication of regions (seed: raftstore).
//!
//! Every region replica on a store is a [`fsm::PeerFsm`] driven by the raft poller of the batch
//! system, next to one [`fsm::StoreFsm`] that creates peers for new regions and reports the
//! store to PD. Committed entries go to the region's [`fsm::ApplyFsm`] on the apply poller,
//! which writes them to the data engine. Consensus is raft-rs; raft logs live in the raft log
//! engine, data and per-region metadata in the data engine (keys as in the `keys` crate).
//!
//! Layout: [`peer`] is one replica's raft state and its proposal, read and ready handling;
//! [`fsm`] holds the batch-system glue; [`peer_storage`] the raft-rs storage and snapshots;
//! [`local_reader`] serves lease reads off the raft thread; [`pd`] talks to PD through capability traits.
//!
//! Depends on the engines, the batch system, raft-rs and the PD client; never on storage or
//! the server.

pub mod config;
pub mod errors;
pub mod fsm;
pub mod local_reader;
pub mod log_gc;
mod logger;
pub mod metrics;
pub mod msg;
pub mod pd;
pub mod peer;
pub mod peer_storage;
pub mod region_snapshot;
pub mod router;
pub mod split_check;
pub mod store_meta;
pub mod transport;
pub mod util;

pub use config::Config;
pub use errors::{Error, Result};
pub use fsm::store::{create_raft_system, RaftSystem, RaftSystemBuilder, StoreDeps};
pub use local_reader::LocalReader;
pub use msg::{
    Callback, PeerMsg, RaftCommand, ReadResponse, StoreMsg, Undetermined, WriteCallback,
    WriteResult,
};
pub use pd::{run_pd_worker, PdApi, PdScheduler, PdTask};
pub use region_snapshot::RegionSnapshot;
pub use router::{RouterHandle, SharedRouter};
pub use split_check::SplitCheckConfig;
pub use store_meta::StoreMeta;
pub use transport::Transport;
