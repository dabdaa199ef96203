//! Point reads and iteration.

use crate::{CfName, Result};

/// Point reads.
pub trait Peekable {
    /// Returns the value of `key` in `cf`, or `None` when the key is absent.
    ///
    /// # Errors
    /// [`crate::Error::CfNotFound`] for an unknown column family; engine errors.
    fn get_value_cf(&self, cf: CfName, key: &[u8]) -> Result<Option<Vec<u8>>>;
}

/// Bounds and options of an iterator. Bounds are `[lower_bound, upper_bound)`; `None` means
/// unbounded. An iterator never yields a key outside its bounds, in either direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IterOptions {
    pub lower_bound: Option<Vec<u8>>,
    pub upper_bound: Option<Vec<u8>>,
    /// Whether blocks read by this iterator should be kept in the block cache.
    pub fill_cache: bool,
}

impl IterOptions {
    /// Options for the range `[lower, upper)`; an empty `upper` means unbounded above.
    pub fn range(lower: &[u8], upper: &[u8]) -> Self {
        IterOptions {
            lower_bound: (!lower.is_empty()).then(|| lower.to_vec()),
            upper_bound: (!upper.is_empty()).then(|| upper.to_vec()),
            fill_cache: true,
        }
    }
}

/// Where to position an iterator.
#[derive(Clone, Copy, Debug)]
pub enum SeekKey<'a> {
    /// The first key within bounds.
    Start,
    /// The last key within bounds.
    End,
    /// The first key `>= key` (`seek`) or the last key `<= key` (`seek_for_prev`).
    Key(&'a [u8]),
}

/// A cursor over one column family. It owns whatever it reads from, so it may outlive the
/// engine or snapshot handle that created it.
///
/// `key` and `value` may only be called while `valid()` is true; they panic otherwise.
pub trait EngineIterator: Send {
    /// Positions at the first key `>= key` within bounds. Returns `valid()`.
    fn seek(&mut self, key: SeekKey<'_>) -> Result<bool>;
    /// Positions at the last key `<= key` within bounds. Returns `valid()`.
    fn seek_for_prev(&mut self, key: SeekKey<'_>) -> Result<bool>;
    /// Moves to the next key. Returns `valid()`.
    fn next(&mut self) -> Result<bool>;
    /// Moves to the previous key. Returns `valid()`.
    fn prev(&mut self) -> Result<bool>;
    /// Whether the iterator stands on a key.
    fn valid(&self) -> Result<bool>;
    fn key(&self) -> &[u8];
    fn value(&self) -> &[u8];
}

/// Creates iterators over a consistent view.
pub trait Iterable {
    type Iterator: EngineIterator;

    /// Returns an unpositioned iterator over `cf`; call `seek` or `seek_for_prev` first.
    ///
    /// # Errors
    /// [`crate::Error::CfNotFound`] for an unknown column family.
    fn iterator_opt(&self, cf: CfName, opts: IterOptions) -> Result<Self::Iterator>;

    /// Calls `f` for each pair in `[start, end)` in ascending order until it returns `false`.
    /// An empty `end` means unbounded.
    fn scan(
        &self,
        cf: CfName,
        start: &[u8],
        end: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        crate::Error::check_range(start, end)?;
        let mut it = self.iterator_opt(cf, IterOptions::range(start, end))?;
        let mut valid = it.seek(SeekKey::Start)?;
        while valid {
            if !f(it.key(), it.value())? {
                break;
            }
            valid = it.next()?;
        }
        Ok(())
    }
}
