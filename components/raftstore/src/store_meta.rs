//! What every thread of a store may need to know about its regions: their ranges (to refuse a
//! new peer that overlaps an existing one) and, for leaders, what a local read must check.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use kvproto::metapb;
use parking_lot::RwLock;
use types::{PeerId, RegionId, StoreId};

/// What a local read needs to know about a leader peer (seed: `ReadDelegate`).
#[derive(Clone, Debug)]
pub struct ReadDelegate {
    pub region: Arc<metapb::Region>,
    pub store_id: StoreId,
    pub peer_id: PeerId,
    pub term: u64,
    /// Term of the last applied entry; local reads need it equal to `term`, so that the
    /// leader has applied everything committed before it became leader.
    pub applied_term: u64,
    /// Reads may be served locally until this instant.
    pub lease_expire: Option<Instant>,
}

impl ReadDelegate {
    /// Whether a read with this epoch version and peer id may be served locally at `now`.
    pub fn can_read_locally(&self, peer_id: PeerId, version: u64, now: Instant) -> bool {
        let epoch_version = self.region.region_epoch.map_or(0, |e| e.version);
        self.peer_id == peer_id
            && epoch_version == version
            && self.applied_term == self.term
            && self.lease_expire.is_some_and(|expire| now < expire)
    }
}

/// A leader's [`ReadDelegate`], published by its peer for local readers: the peer updates it
/// (its lease moves with every committed proposal) under this region's own lock, so neither
/// the peer nor a reader takes a store-wide lock for it. Empty once the peer is no longer a
/// leader that may serve local reads.
#[derive(Debug, Default)]
pub struct ReadCell(RwLock<Option<ReadDelegate>>);

impl ReadCell {
    /// The delegate, if the peer may serve local reads.
    pub fn get(&self) -> Option<ReadDelegate> {
        self.0.read().clone()
    }

    /// Runs `f` on the delegate, if any, without cloning it.
    pub fn with<T>(&self, f: impl FnOnce(&ReadDelegate) -> T) -> Option<T> {
        self.0.read().as_ref().map(f)
    }

    pub fn set(&self, delegate: Option<ReadDelegate>) {
        *self.0.write() = delegate;
    }

    /// Extends the published delegate's lease, if a delegate is published.
    pub fn renew_lease(&self, expire: Instant) {
        if let Some(delegate) = self.0.write().as_mut() {
            delegate.lease_expire = Some(expire);
        }
    }
}

#[derive(Default)]
pub struct StoreMeta {
    pub store_id: StoreId,
    /// Initialized regions by data end key (`keys::data_end_key`), for overlap checks.
    region_ranges: BTreeMap<Vec<u8>, RegionId>,
    pub regions: HashMap<RegionId, metapb::Region>,
    /// The read cells of the peers that lead their region here (a cell is added when its
    /// peer becomes leader and removed when it stops being one).
    pub readers: HashMap<RegionId, Arc<ReadCell>>,
    /// How many times a peer of this store became leader. A new leader may have missed reads
    /// its predecessor served, so async commit brings `max_ts` past a fresh PD timestamp
    /// whenever this moves (see `storage::concurrency_manager`).
    pub leader_changes: u64,
    /// Regions that a split applied here creates, whose peers the store has not created yet.
    /// The split's apply already wrote their state, and the parent no longer covers their
    /// range: a raft message for one of them is kept until the peer exists.
    pub splitting: HashSet<RegionId>,
    /// Regions whose snapshot the snapshot applier is writing here (`snap_apply`), with the
    /// snapshot's region: its range is taken although the region is not recorded yet (TiKV's
    /// `pending_snapshot_regions`).
    pub applying_snapshots: HashMap<RegionId, metapb::Region>,
}

impl StoreMeta {
    pub fn new(store_id: StoreId) -> Self {
        StoreMeta {
            store_id,
            ..StoreMeta::default()
        }
    }

    /// Records `region` (initialized) and its range, replacing what was known about it.
    pub fn set_region(&mut self, region: &metapb::Region) {
        let region_id = RegionId(region.id);
        if let Some(old) = self.regions.insert(region_id, region.clone()) {
            let old_end = keys::data_end_key(&old.end_key);
            if self.region_ranges.get(&old_end) == Some(&region_id) {
                self.region_ranges.remove(&old_end);
            }
        }
        self.region_ranges
            .insert(keys::data_end_key(&region.end_key), region_id);
    }

    pub fn remove_region(&mut self, region_id: RegionId) {
        self.applying_snapshots.remove(&region_id);
        if let Some(old) = self.regions.remove(&region_id) {
            let old_end = keys::data_end_key(&old.end_key);
            if self.region_ranges.get(&old_end) == Some(&region_id) {
                self.region_ranges.remove(&old_end);
            }
        }
        if let Some(cell) = self.readers.remove(&region_id) {
            cell.set(None);
        }
    }

    /// The regions this store leads, with their read delegates.
    pub fn leaders(&self) -> impl Iterator<Item = ReadDelegate> + '_ {
        self.readers.values().filter_map(|cell| cell.get())
    }

    /// The region as recorded, or as the snapshot being applied for it has it.
    pub fn region(&self, region_id: RegionId) -> Option<&metapb::Region> {
        self.regions
            .get(&region_id)
            .or_else(|| self.applying_snapshots.get(&region_id))
    }

    /// Returns a region other than `region_id`, initialized or with a snapshot being applied,
    /// whose range overlaps `[start, end)` (storage keys, empty end unbounded).
    pub fn overlapping_region(
        &self,
        region_id: RegionId,
        start: &[u8],
        end: &[u8],
    ) -> Option<RegionId> {
        let data_start = keys::data_key(start);
        let data_end = keys::data_end_key(end);
        let applying = self.applying_snapshots.iter().find(|(id, region)| {
            **id != region_id
                && keys::data_end_key(&region.end_key) > data_start
                && keys::data_key(&region.start_key) < data_end
        });
        if let Some((id, _)) = applying {
            return Some(*id);
        }
        for (region_end, id) in self.region_ranges.range(data_start.clone()..) {
            if region_end.as_slice() <= data_start.as_slice() {
                continue;
            }
            let region = &self.regions[id];
            if keys::data_key(&region.start_key) >= data_end {
                break;
            }
            if *id != region_id {
                return Some(*id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, start: &str, end: &str) -> metapb::Region {
        metapb::Region {
            id,
            start_key: start.as_bytes().to_vec(),
            end_key: end.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn overlaps_are_found() {
        let mut meta = StoreMeta::new(StoreId(1));
        meta.set_region(&region(1, "", "b"));
        meta.set_region(&region(2, "d", ""));
        assert_eq!(
            meta.overlapping_region(RegionId(9), "b".as_bytes(), "d".as_bytes()),
            None
        );
        assert_eq!(
            meta.overlapping_region(RegionId(9), "a".as_bytes(), "c".as_bytes()),
            Some(RegionId(1))
        );
        assert_eq!(
            meta.overlapping_region(RegionId(9), "c".as_bytes(), "".as_bytes()),
            Some(RegionId(2))
        );
        assert_eq!(
            meta.overlapping_region(RegionId(2), "d".as_bytes(), "".as_bytes()),
            None
        );
        // A split shrinks region 1 and adds region 3.
        meta.set_region(&region(1, "", "a"));
        meta.set_region(&region(3, "a", "b"));
        assert_eq!(
            meta.overlapping_region(RegionId(9), "aa".as_bytes(), "ab".as_bytes()),
            Some(RegionId(3))
        );
        meta.remove_region(RegionId(3));
        assert_eq!(
            meta.overlapping_region(RegionId(9), "aa".as_bytes(), "ab".as_bytes()),
            None
        );
    }

    #[test]
    fn a_snapshot_being_applied_takes_its_range() {
        let mut meta = StoreMeta::new(StoreId(1));
        meta.set_region(&region(1, "", "b"));
        meta.applying_snapshots
            .insert(RegionId(2), region(2, "c", ""));
        assert_eq!(
            meta.overlapping_region(RegionId(9), "x".as_bytes(), "".as_bytes()),
            Some(RegionId(2))
        );
        assert_eq!(
            meta.overlapping_region(RegionId(2), "x".as_bytes(), "".as_bytes()),
            None
        );
        assert_eq!(
            meta.overlapping_region(RegionId(9), "b".as_bytes(), "c".as_bytes()),
            None
        );
        assert_eq!(meta.region(RegionId(2)).map(|r| r.id), Some(2));
        meta.applying_snapshots.remove(&RegionId(2));
        assert_eq!(
            meta.overlapping_region(RegionId(9), "x".as_bytes(), "".as_bytes()),
            None
        );
    }
}
