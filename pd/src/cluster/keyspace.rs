//! Keyspaces (API V2): named, numbered key spaces, each with its own key prefix.
//!
//! `DEFAULT` (id 0) is created when PD first initialises its data directory, so it exists before
//! any store or client arrives. Other keyspaces get ids from 1 upward. Each keyspace's raw and
//! transactional key ranges become their own regions: the scheduler splits at
//! [`KeyspaceId::region_boundaries`] (see `schedule`).

use std::collections::BTreeMap;
use std::sync::Arc;

use codec::KeyspaceId;
use kvproto::keyspacepb::{KeyspaceMeta, KeyspaceState};
use parking_lot::RwLock;

use crate::{
    error::{PdError, Result},
    storage::{decode_message, encode_u64, keys, load_u64, MetaOp, MetaStore},
};

pub const DEFAULT_KEYSPACE_NAME: &str = "DEFAULT";

pub struct KeyspaceManager {
    store: Arc<dyn MetaStore>,
    /// By id.
    keyspaces: RwLock<BTreeMap<u32, KeyspaceMeta>>,
}

impl KeyspaceManager {
    /// Loads every keyspace, creating `DEFAULT` if it does not exist yet.
    ///
    /// # Errors
    ///
    /// A storage error, or [`crate::storage::StorageError::Corrupt`] for an undecodable record.
    pub fn open(store: Arc<dyn MetaStore>, now_secs: i64) -> Result<Self> {
        let mut keyspaces = BTreeMap::new();
        for (key, value) in store.scan_prefix(keys::KEYSPACE_META_PREFIX)? {
            let meta: KeyspaceMeta = decode_message(&key, &value)?;
            keyspaces.insert(meta.id, meta);
        }
        let manager = KeyspaceManager {
            store,
            keyspaces: RwLock::new(keyspaces),
        };
        if !manager
            .keyspaces
            .read()
            .contains_key(&KeyspaceId::DEFAULT.get())
        {
            manager.insert(
                KeyspaceId::DEFAULT.get(),
                DEFAULT_KEYSPACE_NAME,
                now_secs,
                vec![],
            )?;
        }
        Ok(manager)
    }

    /// Returns the keyspace called `name`.
    ///
    /// # Errors
    ///
    /// [`PdError::KeyspaceNotFound`] if there is none.
    pub fn load(&self, name: &str) -> Result<KeyspaceMeta> {
        self.keyspaces
            .read()
            .values()
            .find(|meta| meta.name == name)
            .cloned()
            .ok_or_else(|| PdError::KeyspaceNotFound {
                name: name.to_string(),
            })
    }

    /// Returns all keyspaces with id at least `start_id`, up to `limit` (0: all).
    pub fn list(&self, start_id: u32, limit: usize) -> Vec<KeyspaceMeta> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        self.keyspaces
            .read()
            .range(start_id..)
            .map(|(_, meta)| meta.clone())
            .take(limit)
            .collect()
    }

    /// Creates a keyspace with the next free id.
    ///
    /// # Errors
    ///
    /// [`PdError::InvalidValue`] for an empty or malformed name, [`PdError::Duplicated`] if the
    /// name is taken, [`PdError::InvalidValue`] once all 2^24 ids are used, or a storage error.
    pub fn create(
        &self,
        name: &str,
        config: Vec<(String, String)>,
        now_secs: i64,
    ) -> Result<KeyspaceMeta> {
        validate_name(name)?;
        if self.load(name).is_ok() {
            return Err(PdError::Duplicated {
                what: format!("keyspace {name:?}"),
            });
        }
        let next = load_u64(self.store.as_ref(), keys::KEYSPACE_NEXT_ID)?.unwrap_or(1);
        let id = u32::try_from(next)
            .ok()
            .and_then(|id| KeyspaceId::new(id).ok())
            .ok_or_else(|| PdError::invalid("all 2^24 keyspace ids are in use"))?;
        self.insert(id.get(), name, now_secs, config)
    }

    /// Returns the split keys of every keyspace, ascending and deduplicated.
    pub fn region_boundaries(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .keyspaces
            .read()
            .keys()
            .filter_map(|id| KeyspaceId::new(*id).ok())
            .flat_map(KeyspaceId::region_boundaries)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn insert(
        &self,
        id: u32,
        name: &str,
        now_secs: i64,
        config: Vec<(String, String)>,
    ) -> Result<KeyspaceMeta> {
        let meta = KeyspaceMeta {
            id,
            name: name.to_string(),
            state: KeyspaceState::Enabled as i32,
            created_at: now_secs,
            state_changed_at: now_secs,
            config: config.into_iter().collect(),
        };
        let mut keyspaces = self.keyspaces.write();
        self.store.write(vec![
            MetaOp::Put(
                keys::keyspace_meta(id),
                prost::Message::encode_to_vec(&meta),
            ),
            MetaOp::Put(keys::keyspace_name(name), encode_u64(u64::from(id))),
            MetaOp::Put(
                keys::KEYSPACE_NEXT_ID.to_string(),
                encode_u64(u64::from(id) + 1),
            ),
        ])?;
        keyspaces.insert(id, meta.clone());
        Ok(meta)
    }
}

fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(PdError::invalid(format!(
            "keyspace name {name:?} must be 1-64 characters of letters, digits, '_' or '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage;

    #[test]
    fn default_keyspace_exists_and_survives_reopen() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let manager = KeyspaceManager::open(store.clone(), 100).unwrap();
        assert_eq!(manager.load("DEFAULT").unwrap().id, 0);
        let created = manager.create("tenant-a", vec![], 200).unwrap();
        assert_eq!(created.id, 1);
        drop(manager);
        let manager = KeyspaceManager::open(store, 300).unwrap();
        assert_eq!(manager.load("DEFAULT").unwrap().created_at, 100);
        assert_eq!(manager.load("tenant-a").unwrap().id, 1);
        assert_eq!(manager.create("tenant-b", vec![], 400).unwrap().id, 2);
        assert_eq!(manager.list(1, 0).len(), 2);
    }

    #[test]
    fn bad_requests_are_refused() {
        let manager = KeyspaceManager::open(Arc::new(storage::memory()), 0).unwrap();
        assert!(matches!(
            manager.load("missing"),
            Err(PdError::KeyspaceNotFound { .. })
        ));
        assert!(matches!(
            manager.create("DEFAULT", vec![], 0),
            Err(PdError::Duplicated { .. })
        ));
        assert!(matches!(
            manager.create("no spaces", vec![], 0),
            Err(PdError::InvalidValue { .. })
        ));
    }

    #[test]
    fn boundaries_cover_every_keyspace_in_order() {
        let manager = KeyspaceManager::open(Arc::new(storage::memory()), 0).unwrap();
        manager.create("one", vec![], 0).unwrap();
        let boundaries = manager.region_boundaries();
        // Keyspace 0's raw end is keyspace 1's raw start, and likewise for txn.
        assert_eq!(boundaries.len(), 6);
        assert!(boundaries.windows(2).all(|w| w[0] < w[1]));
    }
}
