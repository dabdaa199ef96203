//! The `raft-engine` backend: an append-only log shared by all regions, with an in-memory index
//! per region. Appends are sequential writes; compaction is a marker plus file rewrites, so it
//! does not create the tombstones that a RocksDB log accumulates.

use std::path::PathBuf;
use std::sync::Arc;

use protobuf::Message;
use raft::eraftpb::Entry;
use raft_engine::{Command, Config, Engine, LogBatch, MessageExt, ReadableSize};
use types::RegionId;

use crate::engine::{MetaKey, RaftLogBatch, RaftLogEngine};
use crate::{Error, Result};

/// Options of the raft-engine backend.
#[derive(Clone, Debug)]
pub struct RaftEngineConfig {
    pub dir: PathBuf,
    /// Size of each log file before a new one is started. Default 128 MiB, as TiKV.
    pub target_file_size: u64,
    /// Total log size above which stale files are purged (their live entries rewritten).
    /// Default 10 GiB, as TiKV.
    pub purge_threshold: u64,
    /// Writes of at least this many bytes are LZ4-compressed; 0 never compresses. Default
    /// 8 KiB, as TiKV.
    pub batch_compression_threshold: u64,
}

impl RaftEngineConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RaftEngineConfig {
            dir: dir.into(),
            target_file_size: 128 << 20,
            purge_threshold: 10 << 30,
            batch_compression_threshold: 8 << 10,
        }
    }
}

/// Tells raft-engine how to find the index of an `eraftpb::Entry`.
#[derive(Clone, Copy)]
struct EntryExt;

impl MessageExt for EntryExt {
    type Entry = Entry;

    fn index(entry: &Entry) -> u64 {
        entry.index
    }
}

/// A [`RaftLogEngine`] on `raft-engine`. Clones share the engine.
#[derive(Clone)]
pub struct RaftEngineLog {
    engine: Arc<Engine>,
}

impl RaftEngineLog {
    /// Opens (creating if needed) the log in `cfg.dir`, replaying it to rebuild the index.
    ///
    /// # Errors
    /// [`Error::Backend`] when the directory cannot be used or the log is corrupt.
    pub fn open(cfg: &RaftEngineConfig) -> Result<Self> {
        let engine_cfg = Config {
            dir: cfg.dir.to_string_lossy().into_owned(),
            target_file_size: ReadableSize(cfg.target_file_size),
            purge_threshold: ReadableSize(cfg.purge_threshold),
            batch_compression_threshold: ReadableSize(cfg.batch_compression_threshold),
            ..Config::default()
        };
        Ok(RaftEngineLog {
            engine: Arc::new(Engine::open(engine_cfg)?),
        })
    }
}

impl RaftLogEngine for RaftEngineLog {
    type Batch = RaftEngineBatch;

    fn new_batch(&self) -> RaftEngineBatch {
        RaftEngineBatch {
            batch: LogBatch::default(),
        }
    }

    fn write(&self, batch: &mut RaftEngineBatch, sync: bool) -> Result<()> {
        if !batch.batch.is_empty() {
            self.engine.write(&mut batch.batch, sync)?;
        }
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
        let start = out.len();
        let limit = max_size.map(|m| usize::try_from(m).unwrap_or(usize::MAX));
        let fetched = self
            .engine
            .fetch_entries_to::<EntryExt>(region.0, low, high, limit, out);
        if fetched.is_err() || out.len() == start {
            out.truncate(start);
            return Err(Error::MissingEntry { region, index: low });
        }
        // raft-engine measures encoded sizes on disk; apply raft-rs's own measure on top.
        let mut total = 0;
        let mut kept = 0;
        while start + kept < out.len()
            && crate::engine::within_size(total, &out[start + kept], max_size, kept)
        {
            total += u64::from(out[start + kept].compute_size());
            kept += 1;
        }
        out.truncate(start + kept);
        Ok(())
    }

    fn entry(&self, region: RegionId, index: u64) -> Result<Option<Entry>> {
        Ok(self.engine.get_entry::<EntryExt>(region.0, index)?)
    }

    fn entry_span(&self, region: RegionId) -> Result<Option<(u64, u64)>> {
        let first = self.engine.first_index(region.0);
        let last = self.engine.last_index(region.0);
        Ok(first.zip(last))
    }

    fn meta<M: Message>(&self, region: RegionId, key: MetaKey) -> Result<Option<M>> {
        Ok(self.engine.get_message::<M>(region.0, key.as_bytes())?)
    }

    fn compact_to(&self, region: RegionId, index: u64) -> Result<()> {
        self.engine.compact_to(region.0, index);
        Ok(())
    }

    fn regions(&self) -> Result<Vec<RegionId>> {
        let mut ids: Vec<RegionId> = self
            .engine
            .raft_groups()
            .into_iter()
            .map(RegionId)
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn purge_expired_files(&self) -> Result<Vec<RegionId>> {
        Ok(self
            .engine
            .purge_expired_files()?
            .into_iter()
            .map(RegionId)
            .collect())
    }
}

/// A batch of [`RaftEngineLog`] mutations.
pub struct RaftEngineBatch {
    batch: LogBatch,
}

impl RaftLogBatch for RaftEngineBatch {
    fn append(&mut self, region: RegionId, entries: &[Entry]) -> Result<()> {
        // raft-engine itself drops stored entries at or after the first appended index.
        self.batch.add_entries::<EntryExt>(region.0, entries)?;
        Ok(())
    }

    fn put_meta<M: Message>(&mut self, region: RegionId, key: MetaKey, msg: &M) -> Result<()> {
        self.batch
            .put_message(region.0, key.as_bytes().to_vec(), msg)?;
        Ok(())
    }

    fn clear_entries(&mut self, region: RegionId) -> Result<()> {
        self.batch
            .add_command(region.0, Command::Compact { index: u64::MAX });
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}
