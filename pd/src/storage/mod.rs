//! Where PD keeps its metadata.
//!
//! [`MetaStore`] is the interface: string keys shaped like etcd paths, atomic and durable batches.
//! A replicated PD will put etcd-like consensus behind it; today [`EngineMetaStore`] runs it on
//! any [`KvEngine`], RocksDB for the server and the memory engine for unit tests.
//!
//! [`keys`] lists every key PD writes; the typed loaders and savers above it live with the
//! components that own the data.

pub mod keys;

use std::path::{Path, PathBuf};

use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, CF_DEFAULT};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "cannot open PD metadata at {}: {reason}; if the directory is corrupt, move it away and \
         start with a fresh --data-dir",
        path.display()
    )]
    Open { path: PathBuf, reason: String },
    #[error("metadata engine error: {0}")]
    Engine(#[from] engine_traits::Error),
    #[error("stored value of {key:?} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type StorageResult<T> = std::result::Result<T, StorageError>;

/// One change in an atomic metadata batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaOp {
    Put(String, Vec<u8>),
    Delete(String),
}

/// Durable key-value storage for PD metadata.
///
/// Every successful [`MetaStore::write`] is atomic and durable (synced) before it returns, so
/// PD may acknowledge the change to its caller.
pub trait MetaStore: Send + Sync + 'static {
    /// Returns the value of `key`.
    ///
    /// # Errors
    ///
    /// [`StorageError::Engine`] if the read fails.
    fn get(&self, key: &str) -> StorageResult<Option<Vec<u8>>>;

    /// Returns every pair whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    ///
    /// [`StorageError::Engine`] if the read fails, [`StorageError::Corrupt`] for a key that is
    /// not UTF-8.
    fn scan_prefix(&self, prefix: &str) -> StorageResult<Vec<(String, Vec<u8>)>>;

    /// Applies `ops` atomically and durably.
    ///
    /// # Errors
    ///
    /// [`StorageError::Engine`] if the write fails; nothing is applied then.
    fn write(&self, ops: Vec<MetaOp>) -> StorageResult<()>;

    /// Puts one value durably.
    ///
    /// # Errors
    ///
    /// As [`MetaStore::write`].
    fn put(&self, key: String, value: Vec<u8>) -> StorageResult<()> {
        self.write(vec![MetaOp::Put(key, value)])
    }
}

/// A [`MetaStore`] on a KV engine, in its `default` column family.
pub struct EngineMetaStore<E: KvEngine> {
    engine: E,
}

impl<E: KvEngine> EngineMetaStore<E> {
    pub fn new(engine: E) -> Self {
        EngineMetaStore { engine }
    }
}

/// Opens the RocksDB metadata store under `dir`.
///
/// # Errors
///
/// [`StorageError::Open`] if RocksDB refuses the directory (corrupt, locked by another process,
/// not writable).
pub fn open_rocks(dir: &Path) -> StorageResult<EngineMetaStore<engine_rocks::RocksEngine>> {
    let config = engine_rocks::RocksConfig {
        write_buffer_size: 16 << 20,
        max_background_jobs: 2,
        block_cache_size: 32 << 20,
        ..Default::default()
    };
    let engine = engine_rocks::RocksEngine::open(dir, &config).map_err(|e| StorageError::Open {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(EngineMetaStore::new(engine))
}

/// Returns an in-memory metadata store, for tests.
pub fn memory() -> EngineMetaStore<engine_memory::MemoryEngine> {
    EngineMetaStore::new(engine_memory::MemoryEngine::new())
}

impl<E: KvEngine> MetaStore for EngineMetaStore<E> {
    fn get(&self, key: &str) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.engine.get_value_cf(CF_DEFAULT, key.as_bytes())?)
    }

    fn scan_prefix(&self, prefix: &str) -> StorageResult<Vec<(String, Vec<u8>)>> {
        let end = prefix_end(prefix.as_bytes());
        let mut pairs = Vec::new();
        let mut bad_key = None;
        self.engine
            .scan(CF_DEFAULT, prefix.as_bytes(), &end, |key, value| {
                match String::from_utf8(key.to_vec()) {
                    Ok(key) => pairs.push((key, value.to_vec())),
                    Err(_) => bad_key = Some(key.to_vec()),
                }
                Ok(bad_key.is_none())
            })?;
        if let Some(key) = bad_key {
            return Err(StorageError::Corrupt {
                key: String::from_utf8_lossy(&key).into_owned(),
                reason: "key is not UTF-8".into(),
            });
        }
        Ok(pairs)
    }

    fn write(&self, ops: Vec<MetaOp>) -> StorageResult<()> {
        let mut batch = self.engine.write_batch();
        for op in ops {
            match op {
                MetaOp::Put(key, value) => batch.put_cf(CF_DEFAULT, key.as_bytes(), &value)?,
                MetaOp::Delete(key) => batch.delete_cf(CF_DEFAULT, key.as_bytes())?,
            }
        }
        batch.write_opt(WriteOptions { sync: true })?;
        Ok(())
    }
}

/// Returns the smallest key greater than every key starting with `prefix` (empty: unbounded).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    end
}

/// Encodes a `u64` value as 8 big-endian bytes.
pub fn encode_u64(value: u64) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// Decodes a value written by [`encode_u64`].
///
/// # Errors
///
/// [`StorageError::Corrupt`] if `bytes` is not 8 bytes long.
pub fn decode_u64(key: &str, bytes: &[u8]) -> StorageResult<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        key: key.to_string(),
        reason: format!("expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

/// Loads a `u64` written by [`encode_u64`].
///
/// # Errors
///
/// As [`MetaStore::get`] and [`decode_u64`].
pub fn load_u64(store: &dyn MetaStore, key: &str) -> StorageResult<Option<u64>> {
    store
        .get(key)?
        .map(|bytes| decode_u64(key, &bytes))
        .transpose()
}

/// Decodes a protobuf message stored under `key`.
///
/// # Errors
///
/// [`StorageError::Corrupt`] if the bytes do not decode.
pub fn decode_message<M: prost::Message + Default>(key: &str, bytes: &[u8]) -> StorageResult<M> {
    M::decode(bytes).map_err(|e| StorageError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn MetaStore) {
        store
            .write(vec![
                MetaOp::Put("raft/s/1".into(), b"one".to_vec()),
                MetaOp::Put("raft/s/2".into(), b"two".to_vec()),
                MetaOp::Put("raft/t".into(), b"other".to_vec()),
            ])
            .unwrap();
        assert_eq!(store.get("raft/s/1").unwrap(), Some(b"one".to_vec()));
        assert_eq!(store.get("raft/s/3").unwrap(), None);
        let keys: Vec<_> = store
            .scan_prefix("raft/s/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["raft/s/1", "raft/s/2"]);
        store
            .write(vec![
                MetaOp::Delete("raft/s/1".into()),
                MetaOp::Put("raft/s/2".into(), b"2".to_vec()),
            ])
            .unwrap();
        assert_eq!(
            store.scan_prefix("raft/s/").unwrap(),
            [("raft/s/2".to_string(), b"2".to_vec())]
        );
        store.put("n".into(), encode_u64(42)).unwrap();
        assert_eq!(load_u64(store, "n").unwrap(), Some(42));
        store.put("bad".into(), vec![1, 2]).unwrap();
        assert!(matches!(
            load_u64(store, "bad"),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn memory_store_reads_its_writes() {
        exercise(&memory());
    }

    #[test]
    fn rocks_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&open_rocks(dir.path()).unwrap());
        let reopened = open_rocks(dir.path()).unwrap();
        assert_eq!(load_u64(&reopened, "n").unwrap(), Some(42));
        assert_eq!(reopened.get("raft/t").unwrap(), Some(b"other".to_vec()));
    }

    #[test]
    fn prefix_end_skips_max_bytes() {
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(&[b'a', 0xFF]), b"b");
        assert_eq!(prefix_end(&[0xFF]), b"");
    }
}
