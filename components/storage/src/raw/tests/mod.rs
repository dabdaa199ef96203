//! Tests of the raw API on a [`MockEngine`], each run under both API versions where the
//! version matters.

mod read;
mod scan;
mod service;
mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kvproto::{errorpb, kvrpcpb};

use super::{ApiVersion, RawStorage, ScanOptions};
use crate::kv::mock::{MockEngine, MockRegion};
use crate::StorageConfig;

/// The injected clock starts here (Unix seconds).
const START_SECS: u64 = 1_700_000_000;
/// The API V2 raw prefix of keyspace 0.
const V2_PREFIX: &[u8] = b"r\0\0\0";

const BOTH_APIS: [ApiVersion; 2] = [ApiVersion::V1, ApiVersion::V2];

/// A storage on a fresh mock engine with a clock the test moves.
struct Fixture {
    engine: MockEngine,
    storage: RawStorage<MockEngine>,
    clock: Arc<AtomicU64>,
    api: ApiVersion,
}

impl Fixture {
    fn new(api: ApiVersion) -> Self {
        Self::with_engine(api, MockEngine::new())
    }

    fn with_engine(api: ApiVersion, engine: MockEngine) -> Self {
        let clock = Arc::new(AtomicU64::new(START_SECS));
        let source = clock.clone();
        let storage = RawStorage::with_clock(
            engine.clone(),
            StorageConfig::default(),
            Arc::new(move || source.load(Ordering::SeqCst)),
        );
        Fixture {
            engine,
            storage,
            clock,
            api,
        }
    }

    fn advance_secs(&self, secs: u64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    fn ctx(&self) -> kvrpcpb::Context {
        ctx(self.api)
    }

    /// The user key for `suffix` in this API version (V2 adds the keyspace prefix).
    fn key(&self, suffix: &[u8]) -> Vec<u8> {
        key(self.api, suffix)
    }

    /// A region covering storage keys of the user keys `[start, end)` of this API version;
    /// an empty bound is unbounded.
    fn region(&self, id: u64, start: &[u8], end: &[u8]) -> MockRegion {
        let bound = |suffix: &[u8]| {
            if suffix.is_empty() {
                vec![]
            } else {
                self.api.encode_key("test", &self.key(suffix)).unwrap()
            }
        };
        MockRegion::new(id, &bound(start), &bound(end))
    }

    async fn put(&self, suffix: &[u8], value: &[u8]) {
        let ctx = self.ctx();
        self.storage
            .raw_put(&ctx, "", self.key(suffix), value.to_vec(), 0, true)
            .await
            .unwrap();
    }

    async fn get(&self, suffix: &[u8]) -> Option<Vec<u8>> {
        let ctx = self.ctx();
        self.storage
            .raw_get(&ctx, "", self.key(suffix))
            .await
            .unwrap()
    }

    async fn ttl(&self, suffix: &[u8]) -> Option<u64> {
        let ctx = self.ctx();
        self.storage
            .raw_get_key_ttl(&ctx, "", self.key(suffix))
            .await
            .unwrap()
    }

    /// Puts `k1` ... `k5` with values `v1` ... `v5`.
    async fn put_k1_to_k5(&self) {
        for i in 1..=5 {
            self.put(format!("k{i}").as_bytes(), format!("v{i}").as_bytes())
                .await;
        }
    }

    /// Pairs `(key(k<i>), v<i>)` for the given indexes, as scans return them.
    fn pairs(&self, indexes: &[u32]) -> Vec<(Vec<u8>, Vec<u8>)> {
        indexes
            .iter()
            .map(|i| {
                (
                    self.key(format!("k{i}").as_bytes()),
                    format!("v{i}").into_bytes(),
                )
            })
            .collect()
    }
}

fn ctx(api: ApiVersion) -> kvrpcpb::Context {
    let api_version = match api {
        ApiVersion::V1 => kvrpcpb::ApiVersion::V1,
        ApiVersion::V2 => kvrpcpb::ApiVersion::V2,
    };
    kvrpcpb::Context {
        region_id: 1,
        api_version: api_version.into(),
        ..Default::default()
    }
}

fn key(api: ApiVersion, suffix: &[u8]) -> Vec<u8> {
    match api {
        ApiVersion::V1 => suffix.to_vec(),
        ApiVersion::V2 => [V2_PREFIX, suffix].concat(),
    }
}

/// A forward scan with room for every key a test writes.
fn scan_all() -> ScanOptions {
    ScanOptions {
        limit: 100,
        ..Default::default()
    }
}

fn not_leader(region_id: u64) -> errorpb::Error {
    errorpb::Error {
        message: format!("peer is not leader for region {region_id}"),
        not_leader: Some(errorpb::NotLeader {
            region_id,
            leader: None,
        }),
        ..Default::default()
    }
}
