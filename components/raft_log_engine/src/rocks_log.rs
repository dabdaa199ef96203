//! The RocksDB backend: a database of its own (never the data engine) holding one key per entry.
//!
//! Key layout, in the `default` column family:
//!
//! | key                                  | value                      |
//! |--------------------------------------|----------------------------|
//! | `'e'` region_id (u64 BE) index (u64 BE) | `eraftpb::Entry`          |
//! | `'m'` region_id (u64 BE) name        | metadata record ([`MetaKey`]) |

use std::collections::HashMap;
use std::path::Path;

use engine_rocks::{RocksConfig, RocksEngine, RocksWriteBatch};
use engine_traits::{
    EngineIterator, IterOptions, Iterable, KvEngine, Mutable, Peekable, SeekKey, WriteBatch,
    WriteOptions, CF_DEFAULT,
};
use protobuf::Message;
use raft::eraftpb::Entry;
use types::RegionId;

use crate::engine::{within_size, MetaKey, RaftLogBatch, RaftLogEngine};
use crate::{Error, Result};

const ENTRY_PREFIX: u8 = b'e';
const META_PREFIX: u8 = b'm';

fn entry_key(region: RegionId, index: u64) -> [u8; 17] {
    let mut key = [0; 17];
    key[0] = ENTRY_PREFIX;
    key[1..9].copy_from_slice(&region.0.to_be_bytes());
    key[9..].copy_from_slice(&index.to_be_bytes());
    key
}

fn meta_key(region: RegionId, key: MetaKey) -> Vec<u8> {
    let mut out = vec![META_PREFIX];
    out.extend_from_slice(&region.0.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out
}

fn index_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[9..17].try_into().expect("entry keys are 17 bytes"))
}

fn region_of(key: &[u8]) -> RegionId {
    RegionId(u64::from_be_bytes(
        key[1..9].try_into().expect("keys carry a region id"),
    ))
}

fn decode<M: Message>(region: RegionId, bytes: &[u8]) -> Result<M> {
    M::parse_from_bytes(bytes).map_err(|e| Error::Corrupt {
        region,
        reason: e.to_string(),
    })
}

/// A [`RaftLogEngine`] on a dedicated RocksDB instance. Clones share the database.
#[derive(Clone)]
pub struct RocksLog {
    db: RocksEngine,
}

impl RocksLog {
    /// Opens (creating if needed) the log database at `path`.
    ///
    /// # Errors
    /// [`Error::Backend`] when RocksDB cannot open the directory.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(RocksLog {
            db: RocksEngine::open(path, &RocksConfig::default())?,
        })
    }

    fn entry_iter(
        &self,
        region: RegionId,
        low: u64,
        high: u64,
    ) -> Result<engine_rocks::RocksIterator> {
        let opts = IterOptions::range(&entry_key(region, low), &entry_key(region, high));
        Ok(self.db.iterator_opt(CF_DEFAULT, opts)?)
    }
}

impl RaftLogEngine for RocksLog {
    type Batch = RocksLogBatch;

    fn new_batch(&self) -> RocksLogBatch {
        RocksLogBatch {
            log: self.clone(),
            batch: self.db.write_batch(),
            last_index: HashMap::new(),
        }
    }

    fn write(&self, batch: &mut RocksLogBatch, sync: bool) -> Result<()> {
        batch.batch.write_opt(WriteOptions { sync })?;
        batch.last_index.clear();
        Ok(())
    }

    fn fetch_entries(
        &self,
        region: RegionId,
        low: u64,
        high: u64,
        max_size: Option<u64>,
        out: &mut Vec<Entry>,
    ) -> Result<()> {
        if low >= high {
            return Ok(());
        }
        let mut it = self.entry_iter(region, low, high)?;
        let (mut expected, mut total, mut kept) = (low, 0, 0);
        let mut valid = it.seek(SeekKey::Start)?;
        while valid && expected < high {
            if index_of(it.key()) != expected {
                break;
            }
            let entry: Entry = decode(region, it.value())?;
            if !within_size(total, &entry, max_size, kept) {
                return Ok(());
            }
            total += u64::from(entry.compute_size());
            kept += 1;
            out.push(entry);
            expected += 1;
            valid = it.next()?;
        }
        if expected < high {
            return Err(Error::MissingEntry {
                region,
                index: expected,
            });
        }
        Ok(())
    }

    fn entry(&self, region: RegionId, index: u64) -> Result<Option<Entry>> {
        let value = self
            .db
            .get_value_cf(CF_DEFAULT, &entry_key(region, index))?;
        value.map(|v| decode(region, &v)).transpose()
    }

    fn entry_span(&self, region: RegionId) -> Result<Option<(u64, u64)>> {
        let mut it = self.entry_iter(region, 0, u64::MAX)?;
        if !it.seek(SeekKey::Start)? {
            return Ok(None);
        }
        let first = index_of(it.key());
        it.seek_for_prev(SeekKey::End)?;
        Ok(Some((first, index_of(it.key()))))
    }

    fn meta<M: Message>(&self, region: RegionId, key: MetaKey) -> Result<Option<M>> {
        let value = self.db.get_value_cf(CF_DEFAULT, &meta_key(region, key))?;
        value.map(|v| decode(region, &v)).transpose()
    }

    fn compact_to(&self, region: RegionId, index: u64) -> Result<()> {
        let mut batch = self.db.write_batch();
        batch.delete_range_cf(CF_DEFAULT, &entry_key(region, 0), &entry_key(region, index))?;
        batch.write_opt(WriteOptions { sync: false })?;
        Ok(())
    }

    fn regions(&self) -> Result<Vec<RegionId>> {
        let mut ids = vec![];
        for prefix in [ENTRY_PREFIX, META_PREFIX] {
            let mut it = self
                .db
                .iterator_opt(CF_DEFAULT, IterOptions::range(&[prefix], &[prefix + 1]))?;
            let mut valid = it.seek(SeekKey::Start)?;
            while valid {
                let region = region_of(it.key());
                ids.push(region);
                // Skip the rest of this region's keys.
                let mut next = vec![prefix];
                next.extend_from_slice(&(region.0 + 1).to_be_bytes());
                valid = region.0 != u64::MAX && it.seek(SeekKey::Key(&next))?;
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// RocksDB reclaims deleted entries by compaction on its own.
    fn purge_expired_files(&self) -> Result<Vec<RegionId>> {
        Ok(Vec::new())
    }
}

/// A batch of [`RocksLog`] mutations. It remembers the last index each region will have after
/// the batch, to delete a stale tail when an append overwrites it.
pub struct RocksLogBatch {
    log: RocksLog,
    batch: RocksWriteBatch,
    last_index: HashMap<RegionId, u64>,
}

impl RaftLogBatch for RocksLogBatch {
    fn append(&mut self, region: RegionId, entries: &[Entry]) -> Result<()> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let old_last = match self.last_index.get(&region) {
            Some(last) => *last,
            None => self.log.entry_span(region)?.map_or(0, |(_, last)| last),
        };
        if old_last > last.index {
            let (start, end) = (
                entry_key(region, last.index + 1),
                entry_key(region, old_last + 1),
            );
            self.batch.delete_range_cf(CF_DEFAULT, &start, &end)?;
        }
        let mut buf = Vec::new();
        for (offset, entry) in entries.iter().enumerate() {
            debug_assert_eq!(
                entry.index,
                first.index + offset as u64,
                "entries are consecutive"
            );
            buf.clear();
            entry
                .write_to_vec(&mut buf)
                .map_err(|e| Error::Backend(e.to_string()))?;
            self.batch
                .put_cf(CF_DEFAULT, &entry_key(region, entry.index), &buf)?;
        }
        self.last_index.insert(region, last.index);
        Ok(())
    }

    fn put_meta<M: Message>(&mut self, region: RegionId, key: MetaKey, msg: &M) -> Result<()> {
        let bytes = msg
            .write_to_bytes()
            .map_err(|e| Error::Backend(e.to_string()))?;
        self.batch
            .put_cf(CF_DEFAULT, &meta_key(region, key), &bytes)?;
        Ok(())
    }

    fn clear_entries(&mut self, region: RegionId) -> Result<()> {
        let (start, end) = (entry_key(region, 0), entry_key(region, u64::MAX));
        self.batch.delete_range_cf(CF_DEFAULT, &start, &end)?;
        self.last_index.insert(region, 0);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}
