//! The key layout of a store's data engine, as in TiKV.
//!
//! | key | column family | value |
//! |---|---|---|
//! | `0x01 0x01` | raft | `StoreIdent` (cluster id, store id) |
//! | `0x01 0x02` | raft | the region prepared for bootstrap (`RegionLocalState`), until PD accepts it |
//! | `0x01 0x03 {region_id:be64} 0x01` | raft | `RegionLocalState` of the local peer |
//! | `0x01 0x02 {region_id:be64} 0x03` | raft | `RaftApplyState` of the local peer |
//! | `z{key}` | default / lock / write | user data: every storage key gets the `z` prefix |
//!
//! Local keys sort before `z`, so a data range never includes metadata, and a region with an
//! empty end key becomes the concrete data end `{` (the byte after `z`).

/// Prefix of every local (non-data) key.
pub const LOCAL_PREFIX: u8 = 0x01;
/// Prefix of every data key.
pub const DATA_PREFIX: u8 = b'z';
/// The smallest data key.
pub const DATA_MIN_KEY: &[u8] = &[DATA_PREFIX];
/// Greater than every data key.
pub const DATA_MAX_KEY: &[u8] = &[DATA_PREFIX + 1];

pub const STORE_IDENT_KEY: &[u8] = &[LOCAL_PREFIX, 0x01];
pub const PREPARE_BOOTSTRAP_KEY: &[u8] = &[LOCAL_PREFIX, 0x02];

const REGION_RAFT_PREFIX: u8 = 0x02;
const REGION_META_PREFIX: u8 = 0x03;
const APPLY_STATE_SUFFIX: u8 = 0x03;
const REGION_STATE_SUFFIX: u8 = 0x01;

/// Returns the data key of a storage key.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(DATA_PREFIX);
    out.extend_from_slice(key);
    out
}

/// Returns the data key of a region's end key; an empty end (unbounded) becomes
/// [`DATA_MAX_KEY`].
pub fn data_end_key(end: &[u8]) -> Vec<u8> {
    if end.is_empty() {
        DATA_MAX_KEY.to_vec()
    } else {
        data_key(end)
    }
}

/// Strips the data prefix.
///
/// # Panics
///
/// If `key` is not a data key: callers only pass keys read from data ranges.
pub fn origin_key(key: &[u8]) -> &[u8] {
    assert!(
        key.first() == Some(&DATA_PREFIX),
        "{key:?} is not a data key"
    );
    &key[1..]
}

fn region_key(prefix: u8, region_id: u64, suffix: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(11);
    key.push(LOCAL_PREFIX);
    key.push(prefix);
    key.extend_from_slice(&region_id.to_be_bytes());
    key.push(suffix);
    key
}

pub fn region_state_key(region_id: u64) -> Vec<u8> {
    region_key(REGION_META_PREFIX, region_id, REGION_STATE_SUFFIX)
}

pub fn apply_state_key(region_id: u64) -> Vec<u8> {
    region_key(REGION_RAFT_PREFIX, region_id, APPLY_STATE_SUFFIX)
}

/// The range holding every `RegionLocalState`, for scanning at start-up.
pub fn region_state_range() -> (Vec<u8>, Vec<u8>) {
    (
        vec![LOCAL_PREFIX, REGION_META_PREFIX],
        vec![LOCAL_PREFIX, REGION_META_PREFIX + 1],
    )
}

/// Returns the region id of a `region_state_key`, or `None` for another key.
pub fn decode_region_state_key(key: &[u8]) -> Option<u64> {
    if key.len() != 11
        || key[0] != LOCAL_PREFIX
        || key[1] != REGION_META_PREFIX
        || key[10] != REGION_STATE_SUFFIX
    {
        return None;
    }
    Some(u64::from_be_bytes(key[2..10].try_into().ok()?))
}

/// Whether `key` lies in `[start, end)`, where an empty `end` is unbounded.
pub fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    key >= start && (end.is_empty() || key < end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys_sort_after_local_keys() {
        assert!(region_state_key(u64::MAX).as_slice() < DATA_MIN_KEY);
        assert!(apply_state_key(1) < region_state_key(1));
        assert_eq!(data_key(b"a"), b"za");
        assert_eq!(origin_key(b"za"), b"a");
        assert_eq!(data_end_key(b""), DATA_MAX_KEY);
        assert!(data_key(&[0xFF; 16]).as_slice() < DATA_MAX_KEY);
    }

    #[test]
    fn region_state_keys_round_trip() {
        let key = region_state_key(42);
        assert_eq!(decode_region_state_key(&key), Some(42));
        assert_eq!(decode_region_state_key(&apply_state_key(42)), None);
        let (start, end) = region_state_range();
        assert!(key >= start && key < end);
    }

    #[test]
    fn ranges() {
        assert!(in_range(b"b", b"a", b""));
        assert!(!in_range(b"c", b"a", b"c"));
        assert!(in_range(b"a", b"a", b"c"));
    }
}
