//! [`MvccTxn`]: the changes one transactional command makes, as engine modifications.

use engine_traits::{CF_DEFAULT, CF_LOCK, CF_WRITE};
use txn_types::{Key, Lock, TimeStamp, Value, Write};

use crate::kv::Modify;

/// Collects the changes of one command to the three data column families; the scheduler
/// writes them as one atomic engine write.
#[derive(Debug)]
pub struct MvccTxn {
    /// The start ts of the transaction the command acts for.
    pub start_ts: TimeStamp,
    modifies: Vec<Modify>,
    /// Keys whose lock the changes remove, so that requests waiting on them wake up.
    released_locks: Vec<Key>,
}

impl MvccTxn {
    pub fn new(start_ts: TimeStamp) -> Self {
        MvccTxn {
            start_ts,
            modifies: vec![],
            released_locks: vec![],
        }
    }

    pub fn put_lock(&mut self, key: Key, lock: &Lock) {
        self.modifies.push(Modify::Put {
            cf: CF_LOCK,
            key: key.into_encoded(),
            value: lock.to_bytes(),
        });
    }

    pub fn unlock_key(&mut self, key: Key) {
        self.released_locks.push(key.clone());
        self.modifies.push(Modify::Delete {
            cf: CF_LOCK,
            key: key.into_encoded(),
        });
    }

    /// Stores a value too long to inline, at `key + start_ts`.
    pub fn put_value(&mut self, key: Key, start_ts: TimeStamp, value: Value) {
        self.modifies.push(Modify::Put {
            cf: CF_DEFAULT,
            key: key.append_ts(start_ts).into_encoded(),
            value,
        });
    }

    pub fn delete_value(&mut self, key: Key, start_ts: TimeStamp) {
        self.modifies.push(Modify::Delete {
            cf: CF_DEFAULT,
            key: key.append_ts(start_ts).into_encoded(),
        });
    }

    /// Writes a commit or rollback record at `key + commit_ts`.
    pub fn put_write(&mut self, key: Key, commit_ts: TimeStamp, write: &Write) {
        self.modifies.push(Modify::Put {
            cf: CF_WRITE,
            key: key.append_ts(commit_ts).into_encoded(),
            value: write.to_bytes(),
        });
    }

    pub fn delete_write(&mut self, key: Key, commit_ts: TimeStamp) {
        self.modifies.push(Modify::Delete {
            cf: CF_WRITE,
            key: key.append_ts(commit_ts).into_encoded(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.modifies.is_empty()
    }

    /// Bytes the changes add to a raft entry.
    pub fn write_size(&self) -> usize {
        self.modifies.iter().map(Modify::size).sum()
    }

    /// The changes, and the keys whose locks they remove.
    pub fn into_parts(self) -> (Vec<Modify>, Vec<Key>) {
        (self.modifies, self.released_locks)
    }
}
