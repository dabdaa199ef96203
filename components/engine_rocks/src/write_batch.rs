use engine_traits::{CfName, Error, KvEngine, Mutable, Result, WriteBatch, WriteOptions};

use crate::{engine_error, RocksEngine};

/// A RocksDB write batch bound to the engine it will be written to.
pub struct RocksWriteBatch {
    engine: RocksEngine,
    batch: rocksdb::WriteBatch,
}

impl RocksWriteBatch {
    pub(crate) fn new(engine: RocksEngine) -> Self {
        RocksWriteBatch {
            engine,
            batch: rocksdb::WriteBatch::default(),
        }
    }
}

impl Mutable for RocksWriteBatch {
    fn put_cf(&mut self, cf: CfName, key: &[u8], value: &[u8]) -> Result<()> {
        self.batch.put_cf(self.engine.cf(cf)?, key, value);
        Ok(())
    }

    fn delete_cf(&mut self, cf: CfName, key: &[u8]) -> Result<()> {
        self.batch.delete_cf(self.engine.cf(cf)?, key);
        Ok(())
    }

    fn delete_range_cf(&mut self, cf: CfName, start: &[u8], end: &[u8]) -> Result<()> {
        Error::check_bounded_range(start, end)?;
        self.batch.delete_range_cf(self.engine.cf(cf)?, start, end);
        Ok(())
    }
}

impl WriteBatch for RocksWriteBatch {
    fn write_opt(&mut self, opts: WriteOptions) -> Result<()> {
        let mut write_opts = rocksdb::WriteOptions::default();
        let wal_disabled = self.engine.wal_disabled();
        write_opts.disable_wal(wal_disabled);
        write_opts.set_sync(opts.sync && !wal_disabled);
        let batch = std::mem::take(&mut self.batch);
        self.engine
            .db()
            .write_opt(batch, &write_opts)
            .map_err(engine_error)?;
        if opts.sync && wal_disabled {
            // No log to sync: the write is durable once a flush has covered it.
            self.engine.sync()?;
        }
        Ok(())
    }

    fn count(&self) -> usize {
        self.batch.len()
    }

    fn data_size(&self) -> usize {
        self.batch.size_in_bytes()
    }

    fn clear(&mut self) {
        self.batch.clear();
    }
}
