//! An in-memory [`Engine`] for tests: [`MockEngine`].
//!
//! Snapshots are [`MemoryEngine`] snapshots and a write applies all its modifications in one
//! write batch, so it is atomic as the trait requires. Two knobs let tests reach the error paths
//! that raftstore produces in a real cluster:
//!
//! * [`MockEngine::set_region`] bounds the engine to one region's key range. Point reads outside
//!   it fail with [`engine_traits::Error::NotInRange`], iterators are clipped to it, and writes
//!   outside it fail with a `KeyNotInRegion` region error.
//! * [`MockEngine::inject_region_error`] makes the next snapshot or write fail with a given
//!   region error (for example `NotLeader`), once.
//!
//! The mock does not check the context's region id or epoch: requests always reach "the" region.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use engine_memory::{MemoryEngine, MemoryIterator, MemorySnapshot};
use engine_traits::{
    CfName, EngineIterator, IterOptions, Iterable, KvEngine, Mutable, Peekable, SeekKey, Snapshot,
    WriteBatch, WriteOptions,
};
use kvproto::{errorpb, kvrpcpb};

use super::{key_not_in_region, BoxFuture, Engine, Error, Modify, Result, WriteData};

/// The key range `[start, end)` of the region a [`MockEngine`] serves. Empty bounds mean
/// unbounded, as in `metapb::Region`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MockRegion {
    pub id: u64,
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

impl MockRegion {
    pub fn new(id: u64, start: &[u8], end: &[u8]) -> Self {
        MockRegion {
            id,
            start: start.to_vec(),
            end: end.to_vec(),
        }
    }

    /// Whether `key` lies in `[start, end)`.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && (self.end.is_empty() || key < self.end.as_slice())
    }

    fn not_in_range(&self, key: &[u8]) -> engine_traits::Error {
        engine_traits::Error::NotInRange {
            key: key.to_vec(),
            region_id: self.id,
            start: self.start.clone(),
            end: self.end.clone(),
        }
    }

    fn key_not_in_region(&self, key: &[u8]) -> Error {
        key_not_in_region(key.to_vec(), self.id, self.start.clone(), self.end.clone()).into()
    }

    /// Checks that every key `modify` touches is in the region. A range delete may end exactly
    /// at the region's end, and have no end only in the region that has none (as raftstore).
    fn check_modify(&self, modify: &Modify) -> Result<()> {
        let (first, end) = match modify {
            Modify::Put { key, .. } | Modify::Delete { key, .. } => (key, None),
            Modify::DeleteRange { start, end, .. } => (start, Some(end)),
        };
        if !self.contains(first) {
            return Err(self.key_not_in_region(first));
        }
        match end {
            Some(end) if !self.end.is_empty() && (end.is_empty() || end > &self.end) => {
                Err(self.key_not_in_region(end))
            }
            _ => Ok(()),
        }
    }

    /// Narrows iterator bounds to the region. A range that misses the region becomes empty.
    fn clip(&self, mut opts: IterOptions) -> IterOptions {
        if !self.start.is_empty() && opts.lower_bound.as_ref().is_none_or(|l| *l < self.start) {
            opts.lower_bound = Some(self.start.clone());
        }
        if !self.end.is_empty() && opts.upper_bound.as_ref().is_none_or(|u| *u > self.end) {
            opts.upper_bound = Some(self.end.clone());
        }
        if let (Some(lower), Some(upper)) = (&opts.lower_bound, &opts.upper_bound) {
            if lower > upper {
                opts.upper_bound = Some(lower.clone());
            }
        }
        opts
    }
}

#[derive(Default)]
struct MockState {
    region: Option<Arc<MockRegion>>,
    injected_errors: VecDeque<errorpb::Error>,
}

/// An [`Engine`] on a [`MemoryEngine`]. Clones share data, region and injected errors.
#[derive(Clone, Default)]
pub struct MockEngine {
    engine: MemoryEngine,
    state: Arc<Mutex<MockState>>,
}

impl MockEngine {
    /// An engine whose single region covers every key.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine that serves only `region`.
    pub fn with_region(region: MockRegion) -> Self {
        let engine = Self::new();
        engine.set_region(Some(region));
        engine
    }

    /// Bounds later requests to `region`, or lifts the bound with `None`.
    pub fn set_region(&self, region: Option<MockRegion>) {
        self.state().region = region.map(Arc::new);
    }

    /// Makes the next request (snapshot or write) fail with `err`. Several injected errors are
    /// returned to successive requests in order.
    pub fn inject_region_error(&self, err: errorpb::Error) {
        self.state().injected_errors.push_back(err);
    }

    /// The underlying engine, to inspect or plant stored bytes directly.
    pub fn kv_engine(&self) -> &MemoryEngine {
        &self.engine
    }

    fn state(&self) -> MutexGuard<'_, MockState> {
        // A test that panicked while holding the lock leaves consistent state behind: every
        // critical section is a single field update.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the injected error for this request, if any, and the current region.
    fn begin_request(&self) -> Result<Option<Arc<MockRegion>>> {
        let mut state = self.state();
        if let Some(err) = state.injected_errors.pop_front() {
            return Err(err.into());
        }
        Ok(state.region.clone())
    }

    fn write(&self, data: &WriteData) -> Result<()> {
        if let Some(region) = self.begin_request()? {
            data.modifies
                .iter()
                .try_for_each(|modify| region.check_modify(modify))?;
        }
        self.apply(data)
    }

    /// Writes `data` in one batch, without region checks.
    fn apply(&self, data: &WriteData) -> Result<()> {
        let mut batch = self.engine.write_batch();
        for modify in &data.modifies {
            match modify {
                Modify::Put { cf, key, value } => batch.put_cf(cf, key, value)?,
                Modify::Delete { cf, key } => batch.delete_cf(cf, key)?,
                Modify::DeleteRange { cf, start, end } if end.is_empty() => {
                    // The engine takes bounded ranges only; delete what is there (not atomic
                    // with concurrent writes, which the mock's tests do not need).
                    let snapshot = self.engine.snapshot();
                    let mut it = snapshot.iterator_opt(cf, IterOptions::range(start, &[]))?;
                    let mut valid = it.seek(SeekKey::Key(start))?;
                    while valid {
                        batch.delete_cf(cf, it.key())?;
                        valid = it.next()?;
                    }
                }
                Modify::DeleteRange { cf, start, end } => batch.delete_range_cf(cf, start, end)?,
            }
        }
        batch.write_opt(WriteOptions::default())?;
        Ok(())
    }
}

impl Engine for MockEngine {
    type Snap = MockSnapshot;

    fn async_snapshot(&self, _ctx: &kvrpcpb::Context) -> BoxFuture<Result<MockSnapshot>> {
        let result = self.begin_request().map(|region| MockSnapshot {
            snapshot: self.engine.snapshot(),
            region,
        });
        Box::pin(async move {
            // Yield once so that concurrent requests interleave as they would on a real engine.
            YieldNow::default().await;
            result
        })
    }

    fn async_write(&self, _ctx: &kvrpcpb::Context, data: WriteData) -> BoxFuture<Result<()>> {
        let engine = self.clone();
        Box::pin(async move {
            YieldNow::default().await;
            engine.write(&data)
        })
    }

    /// Deletes the range in every data CF directly, ignoring the region as the real one does.
    fn unsafe_destroy_range(&self, start: Vec<u8>, end: Vec<u8>) -> BoxFuture<Result<()>> {
        let modifies = engine_traits::DATA_CFS
            .iter()
            .map(|&cf| Modify::DeleteRange {
                cf,
                start: start.clone(),
                end: end.clone(),
            })
            .collect();
        let result = self.apply(&WriteData::new(modifies));
        Box::pin(async move { result })
    }
}

/// A snapshot of a [`MockEngine`], bounded by its region when one is set.
#[derive(Clone)]
pub struct MockSnapshot {
    snapshot: MemorySnapshot,
    region: Option<Arc<MockRegion>>,
}

impl Peekable for MockSnapshot {
    fn get_value_cf(&self, cf: CfName, key: &[u8]) -> engine_traits::Result<Option<Vec<u8>>> {
        match &self.region {
            Some(region) if !region.contains(key) => Err(region.not_in_range(key)),
            _ => self.snapshot.get_value_cf(cf, key),
        }
    }
}

impl Iterable for MockSnapshot {
    type Iterator = MemoryIterator;

    fn iterator_opt(&self, cf: CfName, opts: IterOptions) -> engine_traits::Result<MemoryIterator> {
        let opts = match &self.region {
            Some(region) => region.clip(opts),
            None => opts,
        };
        self.snapshot.iterator_opt(cf, opts)
    }
}

impl Snapshot for MockSnapshot {}

/// A future that is pending once, so the task goes back to the scheduler before continuing.
#[derive(Default)]
struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use engine_traits::{EngineIterator, SeekKey, CF_DEFAULT};

    use super::*;

    fn put(key: &[u8]) -> Modify {
        Modify::Put {
            cf: CF_DEFAULT,
            key: key.to_vec(),
            value: b"v".to_vec(),
        }
    }

    fn keys(snapshot: &MockSnapshot, lower: &[u8], upper: &[u8]) -> Vec<Vec<u8>> {
        let opts = IterOptions::range(lower, upper);
        let mut it = snapshot.iterator_opt(CF_DEFAULT, opts).unwrap();
        let mut out = vec![];
        let mut valid = it.seek(SeekKey::Start).unwrap();
        while valid {
            out.push(it.key().to_vec());
            valid = it.next().unwrap();
        }
        out
    }

    #[tokio::test]
    async fn region_bounds_reads_writes_and_iterators() {
        let engine = MockEngine::new();
        let ctx = kvrpcpb::Context::default();
        let data = WriteData::new(vec![put(b"a"), put(b"b"), put(b"c"), put(b"d")]);
        engine.async_write(&ctx, data).await.unwrap();
        engine.set_region(Some(MockRegion::new(7, b"b", b"d")));

        let snapshot = engine.async_snapshot(&ctx).await.unwrap();
        assert_eq!(
            snapshot.get_value_cf(CF_DEFAULT, b"b").unwrap(),
            Some(b"v".to_vec())
        );
        let err = snapshot.get_value_cf(CF_DEFAULT, b"d").unwrap_err();
        assert!(matches!(
            err,
            engine_traits::Error::NotInRange { region_id: 7, .. }
        ));
        assert_eq!(
            keys(&snapshot, b"", b""),
            vec![b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(keys(&snapshot, b"x", b"z"), Vec::<Vec<u8>>::new());
        assert_eq!(keys(&snapshot, b"", b"a"), Vec::<Vec<u8>>::new());

        let err = engine
            .async_write(&ctx, WriteData::new(vec![put(b"a")]))
            .await
            .unwrap_err();
        let Error::Region(region_error) = err else {
            panic!("expected a region error, got {err:?}");
        };
        assert_eq!(region_error.key_not_in_region.unwrap().key, b"a".to_vec());

        let range = Modify::DeleteRange {
            cf: CF_DEFAULT,
            start: b"b".to_vec(),
            end: b"d".to_vec(),
        };
        engine
            .async_write(&ctx, WriteData::new(vec![range]))
            .await
            .unwrap();
        engine.set_region(None);
        let snapshot = engine.async_snapshot(&ctx).await.unwrap();
        assert_eq!(
            keys(&snapshot, b"", b""),
            vec![b"a".to_vec(), b"d".to_vec()]
        );
    }

    #[tokio::test]
    async fn injected_errors_fail_one_request_each() {
        let engine = MockEngine::new();
        let ctx = kvrpcpb::Context::default();
        engine.inject_region_error(errorpb::Error {
            message: "first".into(),
            ..Default::default()
        });
        engine.inject_region_error(errorpb::Error {
            message: "second".into(),
            ..Default::default()
        });
        let first = engine.async_snapshot(&ctx).await.err().unwrap();
        assert!(matches!(first, Error::Region(e) if e.message == "first"));
        let second = engine.async_write(&ctx, WriteData::default()).await;
        assert!(matches!(second, Err(Error::Region(e)) if e.message == "second"));
        engine.async_snapshot(&ctx).await.unwrap();
    }
}
