//! Reads served without the raft thread (seed: `LocalReader`): a leader with a valid lease
//! that has applied everything of its term answers from an engine snapshot directly.

use std::sync::Arc;
use std::time::Instant;

use engine_traits::KvEngine;
use kvproto::raft_cmdpb::RaftRequestHeader;
use parking_lot::Mutex;

use types::{PeerId, RegionId};

use crate::region_snapshot::RegionSnapshot;
use crate::store_meta::StoreMeta;

#[derive(Clone)]
pub struct LocalReader<EK: KvEngine> {
    kv: EK,
    store_meta: Arc<Mutex<StoreMeta>>,
}

impl<EK: KvEngine> LocalReader<EK> {
    pub fn new(kv: EK, store_meta: Arc<Mutex<StoreMeta>>) -> Self {
        LocalReader { kv, store_meta }
    }

    /// Returns a snapshot if the request can be served locally; `None` means "ask the raft
    /// thread" (not leader here, lease expired, epoch changed, or nothing known).
    pub fn try_read(&self, header: &RaftRequestHeader) -> Option<RegionSnapshot<EK::Snapshot>> {
        let region = {
            let meta = self.store_meta.lock();
            // A request meant for another store goes to the raft thread, which answers
            // StoreNotMatch.
            if header
                .peer
                .is_some_and(|p| p.store_id != 0 && p.store_id != meta.store_id.get())
            {
                return None;
            }
            let delegate = meta.readers.get(&RegionId(header.region_id))?;
            let peer_id = header.peer.map_or(0, |p| p.id);
            let version = header.region_epoch.map_or(0, |e| e.version);
            if !delegate.can_read_locally(PeerId(peer_id), version, Instant::now()) {
                return None;
            }
            delegate.region.clone()
        };
        crate::metrics::PROPOSALS
            .with_label_values(&["local_read"])
            .inc();
        Some(RegionSnapshot::new(self.kv.snapshot(), region))
    }
}
