//! Owned snapshots.
//!
//! `rocksdb::SnapshotWithThreadMode<'a, DB>` borrows the database, but the engine traits need
//! snapshots that can be cloned and sent to other threads independently of any engine handle.
//! [`RocksSnapshot`] therefore keeps the database alive with an `Arc` next to the snapshot and
//! erases the borrow's lifetime. That is sound because the database outlives the snapshot: the
//! snapshot field is declared, and so dropped, before the `Arc` that owns the database.

use std::sync::Arc;

use engine_traits::{CfName, IterOptions, Iterable, Peekable, Result, Snapshot};
use rocksdb::SnapshotWithThreadMode;

use crate::engine::cf_handle;
use crate::{engine_error, Db, RocksIterator};

pub(crate) struct SnapshotInner {
    // Field order matters: `snapshot` must drop before `db`.
    snapshot: SnapshotWithThreadMode<'static, Db>,
    db: Arc<Db>,
}

impl SnapshotInner {
    pub(crate) fn snapshot(&self) -> &SnapshotWithThreadMode<'static, Db> {
        &self.snapshot
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

/// A consistent read view of a [`crate::RocksEngine`]. Clones share one RocksDB snapshot, which
/// is released when the last clone (and the last iterator made from it) is dropped.
#[derive(Clone)]
pub struct RocksSnapshot {
    inner: Arc<SnapshotInner>,
}

impl RocksSnapshot {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        let snapshot = db.snapshot();
        // SAFETY: the snapshot borrows `*db`, which lives in the same `SnapshotInner` and is
        // dropped after the snapshot (field order); the `Arc` keeps its address stable.
        let snapshot = unsafe {
            std::mem::transmute::<SnapshotWithThreadMode<'_, Db>, SnapshotWithThreadMode<'static, Db>>(
                snapshot,
            )
        };
        RocksSnapshot {
            inner: Arc::new(SnapshotInner { snapshot, db }),
        }
    }
}

impl Peekable for RocksSnapshot {
    fn get_value_cf(&self, cf: CfName, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let handle = cf_handle(&self.inner.db, cf)?;
        self.inner
            .snapshot
            .get_cf(handle, key)
            .map_err(engine_error)
    }
}

impl Iterable for RocksSnapshot {
    type Iterator = RocksIterator;

    fn iterator_opt(&self, cf: CfName, opts: IterOptions) -> Result<RocksIterator> {
        RocksIterator::from_snapshot(self.inner.clone(), cf, opts)
    }
}

impl Snapshot for RocksSnapshot {}
