//! Garbage-collect the old versions of one key.

use engine_traits::Snapshot;
use txn_types::{Key, TimeStamp, WriteType};

use crate::mvcc::{MvccReader, MvccTxn, Result};

/// Most bytes of deletions one GC write carries; a key with more old versions is collected
/// over several writes.
pub const MAX_GC_WRITE_SIZE: usize = 32 * 1024;

/// What GC did to one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcInfo {
    pub found_versions: usize,
    pub deleted_versions: usize,
    /// False when the write grew past [`MAX_GC_WRITE_SIZE`] first: run again for the rest.
    pub is_completed: bool,
}

/// Removes the versions of `key` that no read at or after `safe_point` can see: every record
/// older than the newest Put or Delete at or before the safe point (and their values), Lock
/// and Rollback records at or before it, and that newest record itself when it is a Delete.
///
/// # Errors
/// Engine errors and malformed records.
pub fn gc<S: Snapshot>(
    txn: &mut MvccTxn,
    reader: &mut MvccReader<S>,
    key: Key,
    safe_point: TimeStamp,
) -> Result<GcInfo> {
    let mut info = GcInfo {
        is_completed: true,
        ..GcInfo::default()
    };
    let mut remove_older = false;
    let mut latest_delete = None;
    let mut ts = TimeStamp::max();
    while let Some((commit_ts, write)) = reader.seek_write(&key, ts)? {
        if txn.write_size() >= MAX_GC_WRITE_SIZE {
            info.is_completed = false;
            break;
        }
        info.found_versions += 1;
        if commit_ts.is_zero() {
            ts = commit_ts;
        } else {
            ts = commit_ts.prev();
        }
        if remove_older {
            txn.delete_write(key.clone(), commit_ts);
            if write.write_type == WriteType::Put && write.short_value.is_none() {
                txn.delete_value(key.clone(), write.start_ts);
            }
            info.deleted_versions += 1;
        } else if commit_ts <= safe_point {
            match write.write_type {
                WriteType::Put => remove_older = true,
                WriteType::Delete => {
                    remove_older = true;
                    latest_delete = Some(commit_ts);
                }
                WriteType::Lock | WriteType::Rollback => {
                    txn.delete_write(key.clone(), commit_ts);
                    info.deleted_versions += 1;
                }
            }
        }
        if commit_ts.is_zero() {
            break;
        }
    }
    // The Delete goes last, and only once everything under it is gone: removing it first would
    // make an older Put visible again.
    if let (Some(commit_ts), true) = (latest_delete, info.is_completed) {
        txn.delete_write(key, commit_ts);
        info.deleted_versions += 1;
    }
    Ok(info)
}
