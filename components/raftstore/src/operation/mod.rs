//! What a region replica does, one file per capability (TiKV raftstore-v2's `operation/`).
//! Each file adds methods to the peer state ([`crate::peer::Peer`]) or to the peer FSM's
//! delegate ([`crate::fsm::peer::PeerFsmDelegate`]); `fsm/` only dispatches messages to them.

mod command;
mod conf_change;
mod hibernate;
mod life;
mod pd;
mod query;
mod ready;
mod snapshot;
mod split;
mod stale;
mod transfer_leader;

pub(crate) use command::PendingWrites;
pub(crate) use conf_change::exec_change_peer;
pub(crate) use hibernate::HibernateState;
pub(crate) use life::send_tombstone;
pub(crate) use ready::UnpersistedReady;
pub(crate) use snapshot::recover_log_behind_apply;
pub(crate) use split::exec_batch_split;
pub use split::init_split_region;
pub(crate) use stale::LeaderMissing;
