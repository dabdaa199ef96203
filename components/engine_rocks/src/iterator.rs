//! Owned iterators.
//!
//! Like snapshots (see `snapshot.rs`), RocksDB's raw iterator borrows the database; the
//! [`RocksIterator`] keeps what it reads from alive behind an `Arc` and drops the iterator
//! first. Bounds are given to RocksDB (so it can skip files) and also enforced when seeking,
//! because RocksDB does not clamp a seek target that lies outside them.

use std::sync::Arc;

use engine_traits::{CfName, EngineIterator, Error, IterOptions, Result, SeekKey};
use rocksdb::{DBRawIteratorWithThreadMode, ReadOptions};

use crate::engine::cf_handle;
use crate::snapshot::SnapshotInner;
use crate::{engine_error, Db};

/// What an iterator reads from; kept alive for as long as the iterator.
enum Source {
    Db(#[allow(dead_code)] Arc<Db>),
    Snapshot(#[allow(dead_code)] Arc<SnapshotInner>),
}

/// A bounded iterator over one column family of a database or snapshot.
pub struct RocksIterator {
    // Field order matters: `iter` must drop before `_source`.
    iter: DBRawIteratorWithThreadMode<'static, Db>,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    _source: Source,
}

// SAFETY: the raw iterator is only used through `&mut self`, and RocksDB iterators may move
// between threads (they are not shared). The sources it borrows are `Send + Sync`.
unsafe impl Send for RocksIterator {}

fn read_options(opts: &IterOptions) -> Result<ReadOptions> {
    if let (Some(lower), Some(upper)) = (&opts.lower_bound, &opts.upper_bound) {
        Error::check_range(lower, upper)?;
    }
    let mut read_opts = ReadOptions::default();
    read_opts.fill_cache(opts.fill_cache);
    if let Some(lower) = &opts.lower_bound {
        read_opts.set_iterate_lower_bound(lower.clone());
    }
    if let Some(upper) = &opts.upper_bound {
        read_opts.set_iterate_upper_bound(upper.clone());
    }
    Ok(read_opts)
}

impl RocksIterator {
    pub(crate) fn from_db(db: Arc<Db>, cf: CfName, opts: IterOptions) -> Result<Self> {
        let read_opts = read_options(&opts)?;
        let iter = db.raw_iterator_cf_opt(cf_handle(&db, cf)?, read_opts);
        // SAFETY: `iter` borrows `*db`, which `_source` keeps alive at a stable address and
        // drops after `iter` (field order).
        let iter = unsafe { erase_lifetime(iter) };
        Ok(Self::with_source(iter, opts, Source::Db(db)))
    }

    pub(crate) fn from_snapshot(
        snap: Arc<SnapshotInner>,
        cf: CfName,
        opts: IterOptions,
    ) -> Result<Self> {
        let read_opts = read_options(&opts)?;
        let handle = cf_handle(snap.db(), cf)?;
        let iter = snap.snapshot().raw_iterator_cf_opt(handle, read_opts);
        // SAFETY: `iter` borrows the snapshot and its database, both owned by `snap`, which
        // `_source` keeps alive and drops after `iter` (field order).
        let iter = unsafe { erase_lifetime(iter) };
        Ok(Self::with_source(iter, opts, Source::Snapshot(snap)))
    }

    fn with_source(
        iter: DBRawIteratorWithThreadMode<'static, Db>,
        opts: IterOptions,
        source: Source,
    ) -> Self {
        RocksIterator {
            iter,
            lower: opts.lower_bound,
            upper: opts.upper_bound,
            _source: source,
        }
    }

    fn status(&self) -> Result<bool> {
        self.iter.status().map_err(engine_error)?;
        Ok(self.iter.valid())
    }
}

/// # Safety
/// The caller keeps whatever the iterator borrows alive, at a stable address, until it drops.
unsafe fn erase_lifetime(
    iter: DBRawIteratorWithThreadMode<'_, Db>,
) -> DBRawIteratorWithThreadMode<'static, Db> {
    std::mem::transmute(iter)
}

impl EngineIterator for RocksIterator {
    fn seek(&mut self, key: SeekKey<'_>) -> Result<bool> {
        match key {
            SeekKey::Start => self.iter.seek_to_first(),
            SeekKey::End => self.iter.seek_to_last(),
            SeekKey::Key(k) => match self.lower.as_deref() {
                Some(lower) if k < lower => self.iter.seek(lower),
                _ => self.iter.seek(k),
            },
        }
        self.status()
    }

    fn seek_for_prev(&mut self, key: SeekKey<'_>) -> Result<bool> {
        match key {
            SeekKey::Start => self.iter.seek_to_first(),
            SeekKey::End => self.iter.seek_to_last(),
            SeekKey::Key(k) => match self.upper.as_deref() {
                Some(upper) if k >= upper => self.iter.seek_to_last(),
                _ => self.iter.seek_for_prev(k),
            },
        }
        self.status()
    }

    fn next(&mut self) -> Result<bool> {
        self.iter.next();
        self.status()
    }

    fn prev(&mut self) -> Result<bool> {
        self.iter.prev();
        self.status()
    }

    fn valid(&self) -> Result<bool> {
        self.status()
    }

    fn key(&self) -> &[u8] {
        self.iter.key().expect("key() on an invalid iterator")
    }

    fn value(&self) -> &[u8] {
        self.iter.value().expect("value() on an invalid iterator")
    }
}
