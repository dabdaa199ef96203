//! The GC worker (TiKV's `gc_manager`): follows PD's GC safe point and, whenever it moves,
//! collects every region this store leads at it.
//!
//! Collection goes through raft like any write (the storage's GC command, latched per key), in
//! writes of `gc.batch-keys` keys paced to `gc.max-write-bytes-per-sec`, so followers lose the
//! same versions and foreground writes keep their turn. TiKV does this in RocksDB compaction
//! filters by default; see ARCHITECTURE.md for why this store does not (yet).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kvproto::{kvrpcpb, metapb};
use parking_lot::Mutex;
use pd_client::PdClient;
use raftstore::StoreMeta;
use storage::kv::Engine;
use storage::txn::GcOptions;
use storage::TxnStorage;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};
use txn_types::TimeStamp;
use types::RegionId;

use crate::metrics::{GC_KEYS, GC_SAFE_POINT};

/// How often PD's GC safe point is read, as in TiKV.
pub const POLL_SAFE_POINT_INTERVAL: Duration = Duration::from_secs(10);

/// What the worker needs.
pub struct GcWorker<E: Engine> {
    pub storage: TxnStorage<E>,
    pub store_meta: Arc<Mutex<StoreMeta>>,
    pub pd: Arc<PdClient>,
    pub options: GcOptions,
    pub poll_interval: Duration,
}

impl<E: Engine> GcWorker<E> {
    /// Polls the safe point every `poll_interval` and collects the led regions not yet
    /// collected at it. Runs until the task is dropped.
    pub async fn run(self) {
        // The safe point each led region was last collected at.
        let mut done: HashMap<RegionId, TimeStamp> = HashMap::new();
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let safe_point = match self.pd.get_gc_safe_point().await {
                Ok(ts) => TimeStamp::new(ts),
                Err(e) => {
                    debug!(error = %e, "cannot read the GC safe point from PD; retrying");
                    continue;
                }
            };
            if safe_point.is_zero() {
                continue;
            }
            let led = led_regions(&self.store_meta.lock());
            // Regions no longer led here are forgotten; new ones (splits, leadership moved
            // here) are collected.
            done.retain(|id, _| led.iter().any(|(region, _)| region.id == id.get()));
            let todo: Vec<_> = led
                .into_iter()
                .filter(|(region, _)| {
                    done.get(&RegionId(region.id))
                        .is_none_or(|&at| at < safe_point)
                })
                .collect();
            if todo.is_empty() {
                continue;
            }
            for region_id in self.gc_regions(safe_point, todo).await {
                done.insert(region_id, safe_point);
            }
            GC_SAFE_POINT.set(safe_point.into_inner() as i64);
        }
    }

    /// Collects `regions` at `safe_point`; returns those done. A region that fails is tried
    /// again at the next poll.
    async fn gc_regions(
        &self,
        safe_point: TimeStamp,
        regions: Vec<(metapb::Region, metapb::Peer)>,
    ) -> Vec<RegionId> {
        info!(%safe_point, regions = regions.len(), "GC round starting");
        let mut collected = vec![];
        let (mut scanned, mut deleted) = (0, 0);
        for (region, peer) in regions {
            let ctx = kvrpcpb::Context {
                region_id: region.id,
                region_epoch: region.region_epoch,
                peer: Some(peer),
                ..Default::default()
            };
            match self.storage.gc(&ctx, safe_point, self.options).await {
                Ok(result) => {
                    GC_KEYS
                        .with_label_values(&["write", "scanned"])
                        .inc_by(result.found_versions as u64);
                    GC_KEYS
                        .with_label_values(&["write", "deleted"])
                        .inc_by(result.deleted_versions as u64);
                    scanned += result.found_versions;
                    deleted += result.deleted_versions;
                    collected.push(RegionId(region.id));
                }
                Err(e) => {
                    // Usually a leader change or a split meanwhile: the region's new shape
                    // is collected at the next poll, by whoever leads it.
                    warn!(region_id = region.id, error = %e, "GC of a region failed; it is retried at the next poll");
                }
            }
        }
        info!(%safe_point, scanned, deleted, collected = collected.len(), "GC round done");
        collected
    }
}

/// The regions this store leads, with its peer of each.
fn led_regions(meta: &StoreMeta) -> Vec<(metapb::Region, metapb::Peer)> {
    let mut regions: Vec<_> = meta
        .leaders()
        .filter_map(|reader| {
            let peer = reader
                .region
                .peers
                .iter()
                .find(|p| p.id == reader.peer_id.get())?;
            Some(((*reader.region).clone(), *peer))
        })
        .collect();
    regions.sort_by(|a, b| a.0.start_key.cmp(&b.0.start_key));
    regions
}
