use thiserror::Error;

/// Errors from a storage engine.
#[derive(Debug, Error)]
pub enum Error {
    /// The caller named a column family the engine does not have.
    #[error("column family {cf:?} not found")]
    CfNotFound { cf: String },
    /// A range whose start is after its end.
    #[error("invalid range: start {start:?} > end {end:?}")]
    InvalidRange { start: Vec<u8>, end: Vec<u8> },
    /// A read of a key outside the region a snapshot belongs to. Raftstore's region snapshots
    /// return it; the storage layer reports it to clients as `KeyNotInRegion`.
    #[error("key {key:?} is not in region {region_id} [{start:?}, {end:?})")]
    NotInRange {
        key: Vec<u8>,
        region_id: u64,
        start: Vec<u8>,
        end: Vec<u8>,
    },
    /// The underlying engine failed (I/O error, corruption, ...); the text is the engine's.
    #[error("engine: {0}")]
    Engine(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Checks that `[start, end)` is a valid range; an empty `end` means "to the end".
    ///
    /// # Errors
    /// [`Error::InvalidRange`] when `end` is non-empty and before `start`.
    pub fn check_range(start: &[u8], end: &[u8]) -> Result<()> {
        if end.is_empty() {
            return Ok(());
        }
        Self::check_bounded_range(start, end)
    }

    /// Checks that `[start, end)` is a valid range with a non-empty `end`.
    ///
    /// # Errors
    /// [`Error::InvalidRange`] when `end` is empty or before `start`.
    pub fn check_bounded_range(start: &[u8], end: &[u8]) -> Result<()> {
        if end.is_empty() || start > end {
            return Err(Error::InvalidRange {
                start: start.to_vec(),
                end: end.to_vec(),
            });
        }
        Ok(())
    }
}
