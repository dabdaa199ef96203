//! Multi-version concurrency control over the three data column families (Percolator's
//! layout, see `txn_types`):
//!
//! * [`MvccReader`]: locks, commit records and values of single keys at a timestamp;
//! * [`PointGetter`] and [`Scanner`]: snapshot-isolated reads for `KvGet`, `KvBatchGet` and
//!   `KvScan` (forward and reverse, optionally keys only);
//! * [`MvccTxn`]: the writer a transactional command fills, turned into one engine write.
//!
//! Everything here is synchronous and works on an engine snapshot; the scheduler
//! (`crate::txn::scheduler`) does the waiting.

mod error;
mod point_getter;
mod reader;
mod scanner;
mod txn;

pub use error::{Error, Result, WriteConflictReason};
pub use point_getter::PointGetter;
pub use reader::{MvccReader, TxnCommitRecord};
pub use scanner::{ScanMode, Scanner};
pub use txn::MvccTxn;
