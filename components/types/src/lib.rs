//! Typed identifiers shared by every layer: a region id can never be passed where a store id
//! is expected, nor a raft term where a log index is. Each is a transparent `u64` newtype with `Display`, so logs read `region 12`.
//! This crate depends on nothing.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, " {}"), self.0)
            }
        }

        impl From<u64> for $name {
            fn from(id: u64) -> Self {
                $name(id)
            }
        }
    };
}

id_type!(
    /// A region: a contiguous key range replicated by one raft group.
    RegionId,
    "region"
);
id_type!(
    /// One replica of a region; unique in the cluster.
    PeerId,
    "peer"
);
id_type!(
    /// A tikv-server process with its own data directory.
    StoreId,
    "store"
);

id_type!(
    /// A raft term: a leadership epoch of one region's raft group.
    Term,
    "term"
);
id_type!(
    /// The index of an entry in one region's raft log.
    LogIndex,
    "index"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_display_with_their_kind() {
        assert_eq!(RegionId(7).to_string(), "region 7");
        assert_eq!(PeerId::from(3).to_string(), "peer 3");
        assert_eq!(StoreId(1).get(), 1);
        assert_eq!(Term(5).to_string(), "term 5");
        assert_eq!(LogIndex(6).to_string(), "index 6");
    }
}
