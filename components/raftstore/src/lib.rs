//! Multi-raft replication of regions (seed: raftstore).
//!
//! Every region replica on a store is a [`fsm::PeerFsm`] driven by the raft poller of the batch
//! system, next to one [`fsm::StoreFsm`] that creates peers for new regions and reports the
//! store to PD. Committed entries go to the region's [`fsm::ApplyFsm`] on the apply poller,
//! which writes them to the data engine. Consensus is raft-rs; raft logs live in the raft log
//! engine, data and per-region metadata in the data engine (keys as in the `keys` crate).
//!
//! Layout, in the shape of TiKV's raftstore-v2:
//! * [`peer`]: one replica's state in one place (its raft-rs `RawNode`, proposals, reads,
//!   lease);
//! * [`operation`]: what a replica does, one file per capability: proposing commands, reads and
//!   the lease, ready handling, snapshots, conf changes, splits, leadership transfer, PD
//!   reports and operators, and a peer's life (creation, stopped apply, destruction);
//! * [`fsm`]: the batch-system glue (peer, store and apply FSMs and their pollers);
//! * [`router`]: the handle other threads send through, and the message enums ([`msg`]);
//! * [`peer_storage`]: the raft-rs storage and snapshots; [`log_gc`]: how far logs may be
//!   compacted; [`local_reader`]: lease reads off the raft thread; [`pd`]: PD, through
//!   capability traits; [`hibernate`]: which replicas sleep and which stores are alive.
//!
//! Depends on the engines, the batch system and raft-rs; never on storage, the server or the
//! gRPC PD client.

pub mod config;
pub mod errors;
pub mod fsm;
pub mod hibernate;
pub mod local_reader;
pub mod log_gc;
mod logger;
pub mod metrics;
pub mod operation;
pub mod pd;
pub mod peer;
pub mod peer_storage;
pub mod region_snapshot;
pub mod router;
pub mod snap_apply;
pub mod split_check;
pub mod store_meta;
mod store_writer;
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
pub use router::message as msg;
pub use router::{RouterHandle, SharedRouter};
pub use split_check::SplitCheckConfig;
pub use store_meta::StoreMeta;
pub use transport::Transport;
