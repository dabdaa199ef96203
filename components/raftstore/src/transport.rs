//! How raft messages leave the store. The server implements it over gRPC; tests can capture
//! messages in memory.

use kvproto::raft_serverpb::RaftMessage;

/// Sends raft messages to other stores without blocking. Delivery failures are reported back
/// to the sending peer (`PeerMsg::Unreachable`, `PeerMsg::SnapshotStatus`) by the
/// implementation.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, msg: RaftMessage);
    /// Sends a message carrying a snapshot (`MsgSnapshot`), which travels on its own stream.
    fn send_snapshot(&self, msg: RaftMessage);
}
