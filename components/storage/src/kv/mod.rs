//! The engine abstraction that storage runs on.
//!
//! Keys here are *storage keys*: what the storage layer decided to store (for API V2 raw keys,
//! the memcomparable encoding of the user key; for API V1, the user key itself). The engine
//! adds its own data prefix and keeps each request inside the region named by the request's
//! `kvrpcpb::Context` (region id, epoch, peer): a wrong region, epoch or leader comes back as
//! [`Error::Region`], and a read of a key outside the region's range as an
//! [`engine_traits::Error::NotInRange`] from the snapshot.

use std::future::Future;
use std::pin::Pin;

use engine_traits::{CfName, Snapshot};
use kvproto::{errorpb, kvrpcpb, metapb};

#[cfg(any(test, feature = "testexport"))]
pub mod mock;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One change in a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modify {
    Put {
        cf: CfName,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: CfName,
        key: Vec<u8>,
    },
    /// Deletes `[start, end)`; an empty `end` means to the end of the key space, which the
    /// region must then reach too.
    DeleteRange {
        cf: CfName,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

impl Modify {
    /// Approximate bytes this change adds to a raft entry.
    pub fn size(&self) -> usize {
        match self {
            Modify::Put { key, value, .. } => key.len() + value.len(),
            Modify::Delete { key, .. } => key.len(),
            Modify::DeleteRange { start, end, .. } => start.len() + end.len(),
        }
    }
}

/// A batch of changes applied atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteData {
    pub modifies: Vec<Modify>,
}

impl WriteData {
    pub fn new(modifies: Vec<Modify>) -> Self {
        WriteData { modifies }
    }

    pub fn size(&self) -> usize {
        self.modifies.iter().map(Modify::size).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request reached the wrong region, epoch, peer or store, or the region cannot serve it
    /// now (not leader, stale command, entry too large). Sent to the client as `region_error`.
    #[error("region error: {}", .0.message)]
    Region(Box<errorpb::Error>),
    /// The engine failed, or a snapshot read fell outside the region.
    #[error(transparent)]
    Engine(#[from] engine_traits::Error),
    /// The request did not finish in time (for example the region lost its leader mid-way).
    #[error("request timed out: {0}")]
    Timeout(String),
    /// A write that may or may not have been applied: the replica that took it lost track of
    /// it (lost leadership, was destroyed, or the store stopped). Never a region error, so
    /// clients report it instead of retrying the write blindly.
    #[error("{0}")]
    Undetermined(String),
    #[error("{0}")]
    Other(String),
}

impl From<errorpb::Error> for Error {
    fn from(e: errorpb::Error) -> Self {
        Error::Region(Box::new(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Builds the region error for a key outside region `region_id`'s range `[start, end)`.
/// The client treats it like any unknown region error: it drops the region from its cache and
/// asks PD again.
pub fn key_not_in_region(
    key: Vec<u8>,
    region_id: u64,
    start: Vec<u8>,
    end: Vec<u8>,
) -> errorpb::Error {
    errorpb::Error {
        message: format!("key is not in region {region_id}"),
        key_not_in_region: Some(errorpb::KeyNotInRegion {
            key,
            region_id,
            start_key: start,
            end_key: end,
        }),
        ..Default::default()
    }
}

/// What storage needs from the layer below: consistent snapshots and durable, replicated
/// writes, both addressed to the region in `ctx`.
pub trait Engine: Clone + Send + Sync + 'static {
    /// A consistent view of the region's data at the time of the call. Iterators are limited
    /// to the region's range; point reads outside it fail with `NotInRange`.
    type Snap: Snapshot;

    /// Returns a snapshot that reflects every write acknowledged before this call.
    fn async_snapshot(&self, ctx: &kvrpcpb::Context) -> BoxFuture<Result<Self::Snap>>;

    /// Applies `data` atomically; resolves once the write is durable (and, for raftstore,
    /// committed by a quorum and applied).
    fn async_write(&self, ctx: &kvrpcpb::Context, data: WriteData) -> BoxFuture<Result<()>>;

    /// Deletes every key of the data column families in `[start, end)` (storage keys; an
    /// empty `end` is unbounded) from this store's own engine, bypassing raft and regions:
    /// TiKV's `UnsafeDestroyRange`, which clients send to every store to drop a range for good.
    fn unsafe_destroy_range(&self, start: Vec<u8>, end: Vec<u8>) -> BoxFuture<Result<()>>;
}

/// Splitting a region at given keys (the `SplitRegion` RPC), which only raftstore can do.
pub trait RegionSplitter: Send + Sync + 'static {
    /// Splits the region named by `ctx` at `split_keys` (storage keys strictly inside it) and
    /// returns every region the split made, in key order.
    fn split_region(
        &self,
        ctx: &kvrpcpb::Context,
        split_keys: Vec<Vec<u8>>,
    ) -> BoxFuture<Result<Vec<metapb::Region>>>;
}
