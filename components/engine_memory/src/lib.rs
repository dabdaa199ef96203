//! An in-memory [`KvEngine`] for fast unit tests.
//!
//! Each column family is a `BTreeMap` behind an `Arc`; a snapshot clones the `Arc`s (O(1)) and a
//! write copies a map only while a snapshot still shares it (copy-on-write). Nothing is durable.
//! It passes the same conformance suite as `engine_rocks`. Approximate range statistics are
//! exact here.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use engine_traits::{
    CfName, EngineIterator, Error, IterOptions, Iterable, KvEngine, Mutable, Peekable, RangeStats,
    Result, SeekKey, Snapshot, WriteBatch, WriteOptions, ALL_CFS,
};
use parking_lot::RwLock;

type CfMap = BTreeMap<Vec<u8>, Vec<u8>>;

/// One immutable version of every column family, in [`ALL_CFS`] order.
#[derive(Clone)]
struct Version {
    cfs: Vec<Arc<CfMap>>,
}

impl Version {
    fn cf(&self, cf: CfName) -> Result<&Arc<CfMap>> {
        cf_index(cf).map(|i| &self.cfs[i])
    }
}

fn cf_index(cf: CfName) -> Result<usize> {
    ALL_CFS
        .iter()
        .position(|c| *c == cf)
        .ok_or_else(|| Error::CfNotFound { cf: cf.to_owned() })
}

/// The in-memory engine. Clones share the same data.
#[derive(Clone)]
pub struct MemoryEngine {
    current: Arc<RwLock<Version>>,
}

impl Default for MemoryEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryEngine {
    pub fn new() -> Self {
        let cfs = ALL_CFS.iter().map(|_| Arc::new(CfMap::new())).collect();
        MemoryEngine {
            current: Arc::new(RwLock::new(Version { cfs })),
        }
    }

    fn version(&self) -> Version {
        self.current.read().clone()
    }
}

impl Peekable for MemoryEngine {
    fn get_value_cf(&self, cf: CfName, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.current.read().cf(cf)?.get(key).cloned())
    }
}

impl Iterable for MemoryEngine {
    type Iterator = MemoryIterator;

    fn iterator_opt(&self, cf: CfName, opts: IterOptions) -> Result<MemoryIterator> {
        MemoryIterator::new(self.version().cf(cf)?.clone(), opts)
    }
}

impl KvEngine for MemoryEngine {
    type Snapshot = MemorySnapshot;
    type WriteBatch = MemoryWriteBatch;

    fn snapshot(&self) -> MemorySnapshot {
        MemorySnapshot {
            version: Arc::new(self.version()),
        }
    }

    fn write_batch(&self) -> MemoryWriteBatch {
        MemoryWriteBatch {
            engine: self.clone(),
            ops: vec![],
            data_size: 0,
        }
    }

    fn approximate_range_stats(&self, cf: CfName, start: &[u8], end: &[u8]) -> Result<RangeStats> {
        Error::check_range(start, end)?;
        let version = self.version();
        let mut stats = RangeStats::default();
        for (k, v) in version.cf(cf)?.range::<[u8], _>(range_bounds(start, end)) {
            stats.keys += 1;
            stats.size += (k.len() + v.len()) as u64;
        }
        Ok(stats)
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn compact_range(&self, _: CfName, _: &[u8], _: &[u8], _: bool) -> Result<()> {
        Ok(())
    }
}

fn range_bounds<'a>(start: &'a [u8], end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    let upper = if end.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Excluded(end)
    };
    (Bound::Included(start), upper)
}

/// A point-in-time view of a [`MemoryEngine`].
#[derive(Clone)]
pub struct MemorySnapshot {
    version: Arc<Version>,
}

impl Peekable for MemorySnapshot {
    fn get_value_cf(&self, cf: CfName, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.version.cf(cf)?.get(key).cloned())
    }
}

impl Iterable for MemorySnapshot {
    type Iterator = MemoryIterator;

    fn iterator_opt(&self, cf: CfName, opts: IterOptions) -> Result<MemoryIterator> {
        MemoryIterator::new(self.version.cf(cf)?.clone(), opts)
    }
}

impl Snapshot for MemorySnapshot {}

enum Op {
    Put {
        cf: usize,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: usize,
        key: Vec<u8>,
    },
    DeleteRange {
        cf: usize,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// A batch applied under the engine's write lock, so readers see all of it or none.
pub struct MemoryWriteBatch {
    engine: MemoryEngine,
    ops: Vec<Op>,
    data_size: usize,
}

impl Mutable for MemoryWriteBatch {
    fn put_cf(&mut self, cf: CfName, key: &[u8], value: &[u8]) -> Result<()> {
        self.data_size += key.len() + value.len();
        self.ops.push(Op::Put {
            cf: cf_index(cf)?,
            key: key.to_vec(),
            value: value.to_vec(),
        });
        Ok(())
    }

    fn delete_cf(&mut self, cf: CfName, key: &[u8]) -> Result<()> {
        self.data_size += key.len();
        self.ops.push(Op::Delete {
            cf: cf_index(cf)?,
            key: key.to_vec(),
        });
        Ok(())
    }

    fn delete_range_cf(&mut self, cf: CfName, start: &[u8], end: &[u8]) -> Result<()> {
        Error::check_bounded_range(start, end)?;
        self.data_size += start.len() + end.len();
        let (start, end) = (start.to_vec(), end.to_vec());
        self.ops.push(Op::DeleteRange {
            cf: cf_index(cf)?,
            start,
            end,
        });
        Ok(())
    }
}

impl WriteBatch for MemoryWriteBatch {
    fn write_opt(&mut self, _opts: WriteOptions) -> Result<()> {
        let mut version = self.engine.current.write();
        for op in &self.ops {
            match op {
                Op::Put { cf, key, value } => {
                    Arc::make_mut(&mut version.cfs[*cf]).insert(key.clone(), value.clone());
                }
                Op::Delete { cf, key } => {
                    Arc::make_mut(&mut version.cfs[*cf]).remove(key);
                }
                Op::DeleteRange { cf, start, end } => {
                    let map = Arc::make_mut(&mut version.cfs[*cf]);
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>(range_bounds(start, end))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
        drop(version);
        self.clear();
        Ok(())
    }

    fn count(&self) -> usize {
        self.ops.len()
    }

    fn data_size(&self) -> usize {
        self.data_size
    }

    fn clear(&mut self) {
        self.ops.clear();
        self.data_size = 0;
    }
}

/// An iterator over one immutable column family map. It remembers its current key and looks
/// the neighbour up on each step (O(log n)), which keeps it free of self-references.
pub struct MemoryIterator {
    map: Arc<CfMap>,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    current: Option<(Vec<u8>, Vec<u8>)>,
}

impl MemoryIterator {
    fn new(map: Arc<CfMap>, opts: IterOptions) -> Result<Self> {
        if let (Some(lower), Some(upper)) = (&opts.lower_bound, &opts.upper_bound) {
            Error::check_range(lower, upper)?;
        }
        Ok(MemoryIterator {
            map,
            lower: opts.lower_bound,
            upper: opts.upper_bound,
            current: None,
        })
    }

    fn in_bounds(&self, key: &[u8]) -> bool {
        self.lower.as_deref().is_none_or(|l| key >= l)
            && self.upper.as_deref().is_none_or(|u| key < u)
    }

    /// Positions at the first key in `range`, ascending or descending, if within bounds.
    fn position(&mut self, range: (Bound<&[u8]>, Bound<&[u8]>), forward: bool) -> bool {
        let mut iter = self.map.range::<[u8], _>(range);
        let found = if forward {
            iter.next()
        } else {
            iter.next_back()
        };
        self.current = found
            .filter(|(k, _)| self.in_bounds(k))
            .map(|(k, v)| (k.clone(), v.clone()));
        self.current.is_some()
    }

    fn current_key(&self) -> Vec<u8> {
        self.current
            .as_ref()
            .expect("iterator must be valid to step")
            .0
            .clone()
    }
}

impl EngineIterator for MemoryIterator {
    fn seek(&mut self, key: SeekKey<'_>) -> Result<bool> {
        let owned_lower = self.lower.clone();
        let start = match key {
            SeekKey::Start => owned_lower
                .as_deref()
                .map_or(Bound::Unbounded, Bound::Included),
            SeekKey::End => return self.seek_for_prev(SeekKey::End),
            SeekKey::Key(k) => match owned_lower.as_deref() {
                Some(l) if k < l => Bound::Included(l),
                _ => Bound::Included(k),
            },
        };
        Ok(self.position((start, Bound::Unbounded), true))
    }

    fn seek_for_prev(&mut self, key: SeekKey<'_>) -> Result<bool> {
        let owned_upper = self.upper.clone();
        let end = match key {
            SeekKey::End => owned_upper
                .as_deref()
                .map_or(Bound::Unbounded, Bound::Excluded),
            SeekKey::Start => return self.seek(SeekKey::Start),
            SeekKey::Key(k) => match owned_upper.as_deref() {
                Some(u) if k >= u => Bound::Excluded(u),
                _ => Bound::Included(k),
            },
        };
        Ok(self.position((Bound::Unbounded, end), false))
    }

    fn next(&mut self) -> Result<bool> {
        let key = self.current_key();
        let upper = self.upper.clone();
        let end = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self.position((Bound::Excluded(key.as_slice()), end), true))
    }

    fn prev(&mut self) -> Result<bool> {
        let key = self.current_key();
        let lower = self.lower.clone();
        let start = lower.as_deref().map_or(Bound::Unbounded, Bound::Included);
        Ok(self.position((start, Bound::Excluded(key.as_slice())), false))
    }

    fn valid(&self) -> Result<bool> {
        Ok(self.current.is_some())
    }

    fn key(&self) -> &[u8] {
        &self
            .current
            .as_ref()
            .expect("key() on an invalid iterator")
            .0
    }

    fn value(&self) -> &[u8] {
        &self
            .current
            .as_ref()
            .expect("value() on an invalid iterator")
            .1
    }
}

#[cfg(test)]
mod tests {
    fn new_engine() -> (super::MemoryEngine, ()) {
        (super::MemoryEngine::new(), ())
    }

    engine_traits::conformance_tests!(new_engine);
}
