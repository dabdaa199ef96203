//! The cluster-wide ID allocator for stores, regions and peers.
//!
//! IDs are handed out from a window of `step` IDs whose end is saved durably before the first ID
//! of the window is used. A restart continues from the saved end, so an ID is never issued
//! twice; at most one window of IDs is skipped. The first ID is 1: 0 means "none" everywhere.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::{
    error::{PdError, Result},
    storage::{encode_u64, keys, load_u64, MetaStore},
};

/// IDs reserved per durable write, as in PD.
pub const DEFAULT_STEP: u64 = 1000;

pub struct IdAllocator {
    store: Arc<dyn MetaStore>,
    step: u64,
    /// `(last issued, window end)`.
    window: Mutex<(u64, u64)>,
}

impl IdAllocator {
    /// # Errors
    ///
    /// A storage error if the saved window cannot be read.
    pub fn open(store: Arc<dyn MetaStore>, step: u64) -> Result<Self> {
        let end = load_u64(store.as_ref(), keys::ALLOC_ID)?.unwrap_or(0);
        Ok(IdAllocator {
            store,
            step: step.max(1),
            window: Mutex::new((end, end)),
        })
    }

    /// Returns a new ID.
    ///
    /// # Errors
    ///
    /// A storage error if a new window is needed and cannot be saved.
    pub fn alloc(&self) -> Result<u64> {
        self.alloc_many(1).map(|ids| ids[0])
    }

    /// Returns `count` new IDs, ascending.
    ///
    /// # Errors
    ///
    /// [`PdError::InvalidValue`] if `count` is 0; a storage error as [`IdAllocator::alloc`].
    pub fn alloc_many(&self, count: u64) -> Result<Vec<u64>> {
        if count == 0 {
            return Err(PdError::invalid("cannot allocate zero ids"));
        }
        let mut window = self.window.lock();
        let (last, end) = *window;
        if last + count > end {
            let new_end = last + count.max(self.step);
            self.store
                .put(keys::ALLOC_ID.to_string(), encode_u64(new_end))?;
            window.1 = new_end;
        }
        window.0 = last + count;
        Ok((last + 1..=last + count).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage;

    #[test]
    fn ids_start_at_one_and_increase() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let ids = IdAllocator::open(store, 3).unwrap();
        let got: Vec<u64> = (0..7).map(|_| ids.alloc().unwrap()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(ids.alloc_many(5).unwrap(), [8, 9, 10, 11, 12]);
        assert!(ids.alloc_many(0).is_err());
    }

    #[test]
    fn restart_never_reissues_an_id() {
        let store: Arc<dyn MetaStore> = Arc::new(storage::memory());
        let first = IdAllocator::open(store.clone(), 10).unwrap();
        let issued: Vec<u64> = (0..15).map(|_| first.alloc().unwrap()).collect();
        drop(first);
        let second = IdAllocator::open(store, 10).unwrap();
        let next = second.alloc().unwrap();
        assert!(next > *issued.last().unwrap());
        assert_eq!(next, 21, "skips the rest of the saved window only");
    }
}
