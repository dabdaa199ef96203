//! Reads served without the raft thread (seed: `LocalReader`): a leader with a valid lease
//! that has applied everything of its term answers from an engine snapshot directly.
//!
//! Each reading thread keeps its own map from region to the leader's [`ReadCell`], filled from
//! the store's map (under the store-wide lock) only when a region is not in it or its cell
//! has emptied, so a read of a led region takes that region's lock alone.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use engine_traits::KvEngine;
use kvproto::raft_cmdpb::RaftRequestHeader;
use parking_lot::Mutex;
use thread_local::ThreadLocal;

use types::{PeerId, RegionId};

use crate::region_snapshot::RegionSnapshot;
use crate::store_meta::{ReadCell, ReadDelegate, StoreMeta};

type CellCache = RefCell<HashMap<RegionId, Arc<ReadCell>>>;

#[derive(Clone)]
pub struct LocalReader<EK: KvEngine> {
    kv: EK,
    store_meta: Arc<Mutex<StoreMeta>>,
    cells: Arc<ThreadLocal<CellCache>>,
}

impl<EK: KvEngine> LocalReader<EK> {
    pub fn new(kv: EK, store_meta: Arc<Mutex<StoreMeta>>) -> Self {
        LocalReader {
            kv,
            store_meta,
            cells: Arc::default(),
        }
    }

    /// Returns a snapshot if the request can be served locally; `None` means "ask the raft
    /// thread" (not leader here, lease expired, epoch changed, or nothing known).
    pub fn try_read(&self, header: &RaftRequestHeader) -> Option<RegionSnapshot<EK::Snapshot>> {
        let region_id = RegionId(header.region_id);
        let check = |delegate: &ReadDelegate| {
            // A request meant for another store goes to the raft thread, which answers
            // StoreNotMatch.
            let store_id = header.peer.map_or(0, |p| p.store_id);
            if store_id != 0 && store_id != delegate.store_id.get() {
                return None;
            }
            let peer_id = header.peer.map_or(0, |p| p.id);
            let version = header.region_epoch.map_or(0, |e| e.version);
            delegate
                .can_read_locally(PeerId(peer_id), version, Instant::now())
                .then(|| delegate.region.clone())
        };
        let cache = self.cells.get_or_default();
        let cached = cache.borrow().get(&region_id).cloned();
        let region = match cached.as_ref().and_then(|cell| cell.with(check)) {
            Some(answer) => answer?,
            None => {
                // Not cached, or the cached peer stopped leading: look the region up again.
                let cell = self.store_meta.lock().readers.get(&region_id).cloned();
                let mut cache = cache.borrow_mut();
                match cell {
                    Some(cell) => {
                        let answer = cell.with(check);
                        cache.insert(region_id, cell);
                        answer??
                    }
                    None => {
                        cache.remove(&region_id);
                        return None;
                    }
                }
            }
        };
        crate::metrics::PROPOSALS
            .with_label_values(&["local_read"])
            .inc();
        Some(RegionSnapshot::new(self.kv.snapshot(), region))
    }

    /// The read delegates of the regions this store leads now.
    pub fn leaders(&self) -> Vec<ReadDelegate> {
        self.store_meta.lock().leaders().collect()
    }
}
