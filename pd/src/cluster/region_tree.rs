//! The region map: every region by id and by start key.
//!
//! Regions never overlap in the tree. A heartbeat or split report with a newer epoch replaces
//! the regions it overlaps; one with an older epoch than a region it overlaps is stale and
//! ignored, as in PD: a region's `version` grows with every split or merge and `conf_ver` with
//! every membership change, so an older epoch describes a layout that no longer exists.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use kvproto::{metapb, pdpb};

/// A region and what its leader last reported about it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionInfo {
    pub region: metapb::Region,
    pub leader: Option<metapb::Peer>,
    pub down_peers: Vec<pdpb::PeerStats>,
    pub pending_peers: Vec<metapb::Peer>,
    pub approximate_size: u64,
    pub approximate_keys: u64,
    pub term: u64,
}

impl RegionInfo {
    pub fn new(region: metapb::Region) -> Self {
        RegionInfo {
            region,
            ..RegionInfo::default()
        }
    }

    /// What a leader's heartbeat reports; `None` for a heartbeat without a region.
    pub fn from_heartbeat(req: pdpb::RegionHeartbeatRequest) -> Option<Self> {
        Some(RegionInfo {
            region: req.region?,
            leader: req.leader,
            down_peers: req.down_peers,
            pending_peers: req.pending_peers,
            approximate_size: req.approximate_size,
            approximate_keys: req.approximate_keys,
            term: req.term,
        })
    }

    pub fn id(&self) -> u64 {
        self.region.id
    }

    pub fn epoch(&self) -> metapb::RegionEpoch {
        self.region.region_epoch.unwrap_or_default()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.region.start_key.as_slice() <= key
            && (self.region.end_key.is_empty() || key < self.region.end_key.as_slice())
    }
}

/// What [`RegionTree::update`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The report is older than what the tree holds; nothing changed.
    Stale { reason: String },
    /// Only leader or statistics changed.
    StatsOnly,
    /// Keys, epoch or peers changed; `removed` lists regions replaced by it. The caller
    /// persists the region and deletes the removed ones.
    MetaChanged { removed: Vec<u64> },
}

#[derive(Default)]
pub struct RegionTree {
    by_start: BTreeMap<Vec<u8>, u64>,
    regions: HashMap<u64, RegionInfo>,
    /// How many regions each store leads, as their leaders last reported.
    leaders: HashMap<u64, u64>,
}

impl RegionTree {
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    pub fn get(&self, id: u64) -> Option<&RegionInfo> {
        self.regions.get(&id)
    }

    /// Returns the region that contains `key`.
    pub fn get_by_key(&self, key: &[u8]) -> Option<&RegionInfo> {
        let (_, id) = self
            .by_start
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        let info = &self.regions[id];
        info.contains(key).then_some(info)
    }

    /// Returns the region just before the one that contains `key`.
    pub fn get_prev_by_key(&self, key: &[u8]) -> Option<&RegionInfo> {
        let current = self.get_by_key(key)?;
        let (_, id) = self
            .by_start
            .range::<[u8], _>((
                Bound::Unbounded,
                Bound::Excluded(current.region.start_key.as_slice()),
            ))
            .next_back()?;
        Some(&self.regions[id])
    }

    /// Returns up to `limit` regions (0: no limit) in key order, starting with the one that
    /// contains `start` and stopping before `end` (empty: unbounded).
    pub fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<&RegionInfo> {
        let first = self
            .get_by_key(start)
            .map(|info| info.region.start_key.clone())
            .unwrap_or_else(|| start.to_vec());
        let limit = if limit == 0 { usize::MAX } else { limit };
        self.by_start
            .range(first..)
            .map(|(_, id)| &self.regions[id])
            .take_while(|info| end.is_empty() || info.region.start_key.as_slice() < end)
            .take(limit)
            .collect()
    }

    /// How many regions each store leads; stores leading none may be missing.
    pub fn leader_counts(&self) -> &HashMap<u64, u64> {
        &self.leaders
    }

    /// Returns all regions in key order.
    pub fn iter(&self) -> impl Iterator<Item = &RegionInfo> {
        self.by_start.values().map(|id| &self.regions[id])
    }

    /// Inserts or replaces a region according to its epoch.
    pub fn update(&mut self, info: RegionInfo) -> UpdateOutcome {
        let epoch = info.epoch();
        if let Some(origin) = self.regions.get(&info.id()) {
            let old = origin.epoch();
            if epoch.version < old.version || epoch.conf_ver < old.conf_ver {
                return UpdateOutcome::Stale {
                    reason: format!(
                        "epoch (conf_ver {}, version {}) is older than the known (conf_ver {}, version {})",
                        epoch.conf_ver, epoch.version, old.conf_ver, old.version
                    ),
                };
            }
            // A leader deposed by a newer one may still heartbeat the same epoch; its view of
            // the leader must not replace the newer leader's.
            if info.term != 0 && info.term < origin.term {
                return UpdateOutcome::Stale {
                    reason: format!(
                        "heartbeat of term {} is older than the known leader's term {}",
                        info.term, origin.term
                    ),
                };
            }
        }
        let overlaps = self.overlapping(&info.region);
        for id in &overlaps {
            let other = &self.regions[id];
            if *id != info.id() && other.epoch().version > epoch.version {
                return UpdateOutcome::Stale {
                    reason: format!(
                        "overlaps region {} with newer version {} > {}",
                        id,
                        other.epoch().version,
                        epoch.version
                    ),
                };
            }
        }
        let meta_changed = self
            .regions
            .get(&info.id())
            .is_none_or(|origin| origin.region != info.region);
        let mut removed = Vec::new();
        for id in overlaps {
            let old = self.remove(id).expect("overlapping region is in the tree");
            if id != info.id() {
                removed.push(old.id());
            }
        }
        if let Some(old) = self.remove(info.id()) {
            // Same id but no longer overlapping itself: the range moved (not expected from a
            // real store, but the tree stays consistent).
            debug_assert_eq!(old.id(), info.id());
        }
        self.by_start
            .insert(info.region.start_key.clone(), info.id());
        if let Some(leader) = &info.leader {
            *self.leaders.entry(leader.store_id).or_default() += 1;
        }
        self.regions.insert(info.id(), info);
        if meta_changed || !removed.is_empty() {
            UpdateOutcome::MetaChanged { removed }
        } else {
            UpdateOutcome::StatsOnly
        }
    }

    fn remove(&mut self, id: u64) -> Option<RegionInfo> {
        let info = self.regions.remove(&id)?;
        if self.by_start.get(&info.region.start_key) == Some(&id) {
            self.by_start.remove(&info.region.start_key);
        }
        if let Some(leader) = &info.leader {
            if let Some(count) = self.leaders.get_mut(&leader.store_id) {
                *count -= 1;
                if *count == 0 {
                    self.leaders.remove(&leader.store_id);
                }
            }
        }
        Some(info)
    }

    /// Returns the ids of regions whose range intersects `region`'s.
    fn overlapping(&self, region: &metapb::Region) -> Vec<u64> {
        let mut ids = Vec::new();
        if let Some(info) = self.get_by_key(&region.start_key) {
            ids.push(info.id());
        }
        let after_start = (
            Bound::Excluded(region.start_key.as_slice()),
            Bound::Unbounded,
        );
        for (start, id) in self.by_start.range::<[u8], _>(after_start) {
            if !region.end_key.is_empty() && start.as_slice() >= region.end_key.as_slice() {
                break;
            }
            ids.push(*id);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(id: u64, start: &str, end: &str, conf_ver: u64, version: u64) -> RegionInfo {
        RegionInfo::new(metapb::Region {
            id,
            start_key: start.as_bytes().to_vec(),
            end_key: end.as_bytes().to_vec(),
            region_epoch: Some(metapb::RegionEpoch { conf_ver, version }),
            peers: vec![metapb::Peer {
                id: id * 10,
                store_id: 1,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn layout(tree: &RegionTree) -> Vec<(u64, String, String)> {
        tree.iter()
            .map(|r| {
                (
                    r.id(),
                    String::from_utf8(r.region.start_key.clone()).unwrap(),
                    String::from_utf8(r.region.end_key.clone()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn lookup_by_key_and_prev() {
        let mut tree = RegionTree::default();
        tree.update(region(1, "", "b", 1, 2));
        tree.update(region(2, "b", "d", 1, 2));
        tree.update(region(3, "d", "", 1, 2));
        assert_eq!(tree.get_by_key(b"").unwrap().id(), 1);
        assert_eq!(tree.get_by_key(b"a").unwrap().id(), 1);
        assert_eq!(tree.get_by_key(b"b").unwrap().id(), 2);
        assert_eq!(tree.get_by_key(b"zzz").unwrap().id(), 3);
        assert_eq!(tree.get_prev_by_key(b"c").unwrap().id(), 1);
        assert!(tree.get_prev_by_key(b"a").is_none());
        let scanned: Vec<u64> = tree.scan(b"c", b"", 0).iter().map(|r| r.id()).collect();
        assert_eq!(scanned, [2, 3]);
        let scanned: Vec<u64> = tree.scan(b"", b"d", 0).iter().map(|r| r.id()).collect();
        assert_eq!(scanned, [1, 2]);
        assert_eq!(tree.scan(b"", b"", 1).len(), 1);
    }

    /// Issue 9, bug 11: the region tree ignored the leader's term.
    #[test]
    fn a_deposed_leaders_heartbeat_does_not_replace_the_new_leader() {
        let mut tree = RegionTree::default();
        let leader = |store_id| metapb::Peer {
            id: store_id * 100,
            store_id,
            ..Default::default()
        };
        let mut new = region(1, "", "", 1, 1);
        new.leader = Some(leader(2));
        new.term = 8;
        tree.update(new);
        let mut old = region(1, "", "", 1, 1);
        old.leader = Some(leader(1));
        old.term = 7;
        assert!(matches!(tree.update(old), UpdateOutcome::Stale { .. }));
        assert_eq!(tree.get(1).unwrap().leader, Some(leader(2)));
        let mut newer = region(1, "", "", 1, 1);
        newer.leader = Some(leader(3));
        newer.term = 9;
        tree.update(newer);
        assert_eq!(tree.get(1).unwrap().leader, Some(leader(3)));
    }

    #[test]
    fn gaps_are_not_found() {
        let mut tree = RegionTree::default();
        tree.update(region(1, "a", "b", 1, 1));
        assert!(tree.get_by_key(b"").is_none());
        assert!(tree.get_by_key(b"b").is_none());
    }

    #[test]
    fn split_replaces_the_parent() {
        let mut tree = RegionTree::default();
        tree.update(region(1, "", "", 1, 1));
        // The right half (new id) reports first, then the shrunken parent.
        let outcome = tree.update(region(2, "m", "", 1, 2));
        assert_eq!(outcome, UpdateOutcome::MetaChanged { removed: vec![1] });
        assert_eq!(layout(&tree), [(2, "m".into(), "".into())]);
        let outcome = tree.update(region(1, "", "m", 1, 2));
        assert_eq!(outcome, UpdateOutcome::MetaChanged { removed: vec![] });
        assert_eq!(
            layout(&tree),
            [(1, "".into(), "m".into()), (2, "m".into(), "".into())]
        );
    }

    #[test]
    fn stale_heartbeats_are_ignored() {
        let mut tree = RegionTree::default();
        tree.update(region(1, "", "m", 1, 2));
        tree.update(region(2, "m", "", 1, 2));
        // The parent's old epoch, before the split, overlaps both.
        assert!(matches!(
            tree.update(region(1, "", "", 1, 1)),
            UpdateOutcome::Stale { .. }
        ));
        // Older conf_ver of the same region.
        tree.update(region(2, "m", "", 3, 2));
        assert!(matches!(
            tree.update(region(2, "m", "", 2, 2)),
            UpdateOutcome::Stale { .. }
        ));
        assert_eq!(
            layout(&tree),
            [(1, "".into(), "m".into()), (2, "m".into(), "".into())]
        );
    }

    #[test]
    fn unchanged_meta_is_stats_only() {
        let mut tree = RegionTree::default();
        tree.update(region(1, "", "", 1, 1));
        let mut info = region(1, "", "", 1, 1);
        info.approximate_size = 100;
        assert_eq!(tree.update(info), UpdateOutcome::StatsOnly);
        assert_eq!(tree.get(1).unwrap().approximate_size, 100);
        let mut moved = region(1, "", "", 2, 1);
        moved.region.peers.push(metapb::Peer {
            id: 11,
            store_id: 2,
            ..Default::default()
        });
        assert_eq!(
            tree.update(moved),
            UpdateOutcome::MetaChanged { removed: vec![] }
        );
    }

    #[test]
    fn merge_removes_both_sources() {
        let mut tree = RegionTree::default();
        tree.update(region(1, "", "c", 1, 2));
        tree.update(region(2, "c", "f", 1, 2));
        tree.update(region(3, "f", "", 1, 2));
        let outcome = tree.update(region(2, "", "f", 1, 3));
        assert_eq!(outcome, UpdateOutcome::MetaChanged { removed: vec![1] });
        assert_eq!(
            layout(&tree),
            [(2, "".into(), "f".into()), (3, "f".into(), "".into())]
        );
        assert_eq!(tree.len(), 2);
    }

    fn led_from(mut info: RegionInfo, store_id: u64) -> RegionInfo {
        info.leader = Some(metapb::Peer {
            id: info.id() * 10 + store_id,
            store_id,
            ..Default::default()
        });
        info
    }

    #[test]
    fn leader_counts_follow_heartbeats_and_splits() {
        let mut tree = RegionTree::default();
        tree.update(led_from(region(2, "", "", 1, 1), 1));
        assert_eq!(tree.leader_counts(), &HashMap::from([(1, 1)]));
        // The leadership moved.
        tree.update(led_from(region(2, "", "", 1, 1), 2));
        assert_eq!(tree.leader_counts(), &HashMap::from([(2, 1)]));
        // A split: the new regions replace the old one; a stale report changes nothing.
        tree.update(led_from(region(2, "", "m", 1, 2), 2));
        tree.update(led_from(region(3, "m", "", 1, 2), 3));
        assert!(matches!(
            tree.update(led_from(region(2, "", "", 1, 1), 1)),
            UpdateOutcome::Stale { .. }
        ));
        assert_eq!(tree.leader_counts(), &HashMap::from([(2, 1), (3, 1)]));
    }
}
