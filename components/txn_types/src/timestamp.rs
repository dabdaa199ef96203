//! PD timestamps.

use std::fmt;

/// Bits of a timestamp that hold the logical counter; the rest is physical milliseconds.
const LOGICAL_BITS: u32 = 18;

/// A timestamp from PD's TSO: `physical_ms << 18 | logical`. Transactions start and commit at
/// timestamps; versions of a key are ordered by them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeStamp(u64);

impl TimeStamp {
    pub const fn new(ts: u64) -> Self {
        TimeStamp(ts)
    }

    pub const fn zero() -> Self {
        TimeStamp(0)
    }

    pub const fn max() -> Self {
        TimeStamp(u64::MAX)
    }

    /// The timestamp of `physical_ms` milliseconds and logical counter `logical`.
    pub const fn compose(physical_ms: u64, logical: u64) -> Self {
        TimeStamp((physical_ms << LOGICAL_BITS) + logical)
    }

    /// Milliseconds since the Unix epoch at which PD issued this timestamp.
    pub const fn physical(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    pub const fn into_inner(self) -> u64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub const fn is_max(self) -> bool {
        self.0 == u64::MAX
    }

    /// The next timestamp; saturates at [`TimeStamp::max`].
    #[must_use]
    pub const fn next(self) -> Self {
        TimeStamp(self.0.saturating_add(1))
    }

    /// The previous timestamp; saturates at zero.
    #[must_use]
    pub const fn prev(self) -> Self {
        TimeStamp(self.0.saturating_sub(1))
    }
}

impl From<u64> for TimeStamp {
    fn from(ts: u64) -> Self {
        TimeStamp(ts)
    }
}

impl From<TimeStamp> for u64 {
    fn from(ts: TimeStamp) -> Self {
        ts.0
    }
}

impl fmt::Display for TimeStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_and_logical_parts() {
        let ts = TimeStamp::compose(1_700_000_000_000, 5);
        assert_eq!(ts.physical(), 1_700_000_000_000);
        assert_eq!(ts.into_inner() & ((1 << 18) - 1), 5);
        assert_eq!(ts.next().into_inner(), ts.into_inner() + 1);
        assert_eq!(TimeStamp::max().next(), TimeStamp::max());
        assert_eq!(TimeStamp::zero().prev(), TimeStamp::zero());
        assert!(TimeStamp::zero().is_zero() && TimeStamp::max().is_max());
    }
}
