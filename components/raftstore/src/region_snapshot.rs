//! A snapshot of one region, in storage keys: the data prefix is added and stripped here,
//! iteration never leaves the region, and a point read outside it is an error.

use std::sync::Arc;

use engine_traits::{
    CfName, EngineIterator, Error, IterOptions, Iterable, Peekable, Result, SeekKey, Snapshot,
};
use kvproto::metapb;

#[derive(Clone)]
pub struct RegionSnapshot<S: Snapshot> {
    snapshot: S,
    region: Arc<metapb::Region>,
}

impl<S: Snapshot> RegionSnapshot<S> {
    pub fn new(snapshot: S, region: Arc<metapb::Region>) -> Self {
        RegionSnapshot { snapshot, region }
    }

    pub fn region(&self) -> &metapb::Region {
        &self.region
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if keys::in_range(key, &self.region.start_key, &self.region.end_key) {
            Ok(())
        } else {
            Err(Error::NotInRange {
                key: key.to_vec(),
                region_id: self.region.id,
                start: self.region.start_key.clone(),
                end: self.region.end_key.clone(),
            })
        }
    }
}

impl<S: Snapshot> Peekable for RegionSnapshot<S> {
    fn get_value_cf(&self, cf: CfName, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        self.snapshot.get_value_cf(cf, &keys::data_key(key))
    }
}

impl<S: Snapshot> Iterable for RegionSnapshot<S> {
    type Iterator = RegionIterator<S::Iterator>;

    fn iterator_opt(&self, cf: CfName, opts: IterOptions) -> Result<Self::Iterator> {
        let region_lower = keys::data_key(&self.region.start_key);
        let region_upper = keys::data_end_key(&self.region.end_key);
        let lower = match &opts.lower_bound {
            Some(lower) => keys::data_key(lower).max(region_lower),
            None => region_lower,
        };
        let upper = match &opts.upper_bound {
            Some(upper) => keys::data_key(upper).min(region_upper),
            None => region_upper,
        };
        let upper = upper.max(lower.clone());
        let inner = self.snapshot.iterator_opt(
            cf,
            IterOptions {
                lower_bound: Some(lower),
                upper_bound: Some(upper),
                fill_cache: opts.fill_cache,
            },
        )?;
        Ok(RegionIterator { inner })
    }
}

impl<S: Snapshot> Snapshot for RegionSnapshot<S> {}

/// Iterates one region of a snapshot in storage keys.
pub struct RegionIterator<I: EngineIterator> {
    inner: I,
}

fn data_seek_key(key: SeekKey<'_>) -> Option<Vec<u8>> {
    match key {
        SeekKey::Key(k) => Some(keys::data_key(k)),
        SeekKey::Start | SeekKey::End => None,
    }
}

impl<I: EngineIterator> EngineIterator for RegionIterator<I> {
    fn seek(&mut self, key: SeekKey<'_>) -> Result<bool> {
        match data_seek_key(key) {
            Some(k) => self.inner.seek(SeekKey::Key(&k)),
            None => self.inner.seek(key),
        }
    }

    fn seek_for_prev(&mut self, key: SeekKey<'_>) -> Result<bool> {
        match data_seek_key(key) {
            Some(k) => self.inner.seek_for_prev(SeekKey::Key(&k)),
            None => self.inner.seek_for_prev(key),
        }
    }

    fn next(&mut self) -> Result<bool> {
        self.inner.next()
    }

    fn prev(&mut self) -> Result<bool> {
        self.inner.prev()
    }

    fn valid(&self) -> Result<bool> {
        self.inner.valid()
    }

    fn key(&self) -> &[u8] {
        keys::origin_key(self.inner.key())
    }

    fn value(&self) -> &[u8] {
        self.inner.value()
    }
}

#[cfg(test)]
mod tests {
    use engine_memory::MemoryEngine;
    use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, CF_DEFAULT};

    use super::*;

    fn engine_with(keys_in: &[&str]) -> MemoryEngine {
        let engine = MemoryEngine::new();
        let mut batch = engine.write_batch();
        for key in keys_in {
            batch
                .put_cf(CF_DEFAULT, &keys::data_key(key.as_bytes()), key.as_bytes())
                .unwrap();
        }
        // Metadata must never show up in a region's data.
        batch
            .put_cf(CF_DEFAULT, &keys::region_state_key(1), b"meta")
            .unwrap();
        batch.write_opt(WriteOptions::default()).unwrap();
        engine
    }

    fn region(start: &str, end: &str) -> Arc<metapb::Region> {
        Arc::new(metapb::Region {
            id: 7,
            start_key: start.as_bytes().to_vec(),
            end_key: end.as_bytes().to_vec(),
            ..Default::default()
        })
    }

    fn scan(snap: &impl Iterable, lower: &str, upper: &str) -> Vec<String> {
        let mut out = Vec::new();
        snap.scan(CF_DEFAULT, lower.as_bytes(), upper.as_bytes(), |k, _| {
            out.push(String::from_utf8(k.to_vec()).unwrap());
            Ok(true)
        })
        .unwrap();
        out
    }

    #[test]
    fn reads_are_confined_to_the_region() {
        let engine = engine_with(&["a", "b", "c", "d"]);
        let snap = RegionSnapshot::new(engine.snapshot(), region("b", "d"));
        assert_eq!(
            snap.get_value_cf(CF_DEFAULT, b"b").unwrap(),
            Some(b"b".to_vec())
        );
        assert!(matches!(
            snap.get_value_cf(CF_DEFAULT, b"d"),
            Err(Error::NotInRange { region_id: 7, .. })
        ));
        assert_eq!(scan(&snap, "", ""), ["b", "c"]);
        assert_eq!(scan(&snap, "a", "c"), ["b"]);
        assert_eq!(scan(&snap, "x", "z"), Vec::<String>::new());

        let whole = RegionSnapshot::new(engine.snapshot(), region("", ""));
        assert_eq!(scan(&whole, "", ""), ["a", "b", "c", "d"]);
        let mut it = whole
            .iterator_opt(CF_DEFAULT, IterOptions::range(b"", b""))
            .unwrap();
        assert!(it.seek_for_prev(SeekKey::End).unwrap());
        assert_eq!(it.key(), b"d");
        assert!(it.seek_for_prev(SeekKey::Key(b"bb")).unwrap());
        assert_eq!(it.key(), b"b");
    }
}
