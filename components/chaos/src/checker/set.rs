//! The *set* workload: unique inserts, then one final read of everything. Every acknowledged
//! insert must be read; an insert that failed for certain must not be; one of unknown outcome
//! may be either.
//!
//! One exception, for a flaw of the official client (client-rust 0.4): a prewrite or commit
//! drops the keys of a region it cannot look up in PD (`stream::iter(Err(e))` yields nothing),
//! so with PD down a transaction can "commit" without a request reaching any store. The
//! workload reads every acknowledged transactional insert back at a fresh timestamp; one that
//! was not there right after its commit, and is not there at the end, is put down to the
//! client only if PD was down while it ran, since only then can a region lookup fail. Any
//! other acknowledged insert missing at the end is lost.

use std::collections::BTreeSet;

use crate::history::{Op, Outcome};

/// What a read right after an acknowledged insert showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBack {
    /// Not read back (raw puts), or the read failed.
    Unchecked,
    /// A read at a fresh timestamp found the element.
    Seen,
    /// A read at a fresh timestamp did not find it: the insert had not taken effect although
    /// the client acknowledged it.
    NotSeen,
}

/// An insert of one unique element.
pub type AddOp = Op<u64, ReadBack>;

/// What the final read showed against the inserts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetReport {
    pub attempted: usize,
    pub acknowledged: usize,
    /// Acknowledged, but not read.
    pub lost: Vec<u64>,
    /// Acknowledged by the client but never written, while PD was down: the client's
    /// dropped-region flaw (see the module's documentation), not the cluster's doing.
    pub dropped_by_client: Vec<u64>,
    /// Read, but never inserted, or inserted by an operation that failed for certain.
    pub unexpected: Vec<u64>,
    /// Of unknown outcome, and read: they did take effect.
    pub recovered: usize,
}

impl SetReport {
    pub fn is_valid(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty()
    }
}

/// Checks the inserts against the final read. `pd_down(invoked, completed)` tells whether PD
/// was down (killed or paused) at some point between the two.
pub fn check(
    adds: &[AddOp],
    final_read: &BTreeSet<u64>,
    pd_down: impl Fn(u64, u64) -> bool,
) -> SetReport {
    let mut report = SetReport {
        attempted: adds.len(),
        ..SetReport::default()
    };
    let mut may_exist = BTreeSet::new();
    for add in adds {
        match add.outcome {
            Outcome::Ok(read_back) => {
                report.acknowledged += 1;
                may_exist.insert(add.f);
                if final_read.contains(&add.f) {
                    continue;
                }
                if read_back == ReadBack::NotSeen && pd_down(add.invoked, add.completed) {
                    report.dropped_by_client.push(add.f);
                } else {
                    report.lost.push(add.f);
                }
            }
            Outcome::Unknown => {
                may_exist.insert(add.f);
                if final_read.contains(&add.f) {
                    report.recovered += 1;
                }
            }
            Outcome::Failed => {}
        }
    }
    report.unexpected = final_read.difference(&may_exist).copied().collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_inserts_must_be_read_and_failed_ones_must_not() {
        let adds = [
            Op::ok(0, 1, 0, 1, ReadBack::Unchecked),
            Op::ok(1, 2, 0, 1, ReadBack::Seen),
            Op::unknown(0, 3, 2),
            Op::failed(1, 4, 2, 3),
            Op::unknown(0, 5, 4),
        ];
        let ok = check(&adds, &BTreeSet::from([1, 2, 3]), |_, _| false);
        assert!(ok.is_valid());
        assert_eq!((ok.acknowledged, ok.recovered), (2, 1));
        let lost = check(&adds, &BTreeSet::from([1, 3]), |_, _| true);
        assert_eq!(lost.lost, [2]);
        let unexpected = check(&adds, &BTreeSet::from([1, 2, 4, 9]), |_, _| false);
        assert_eq!(unexpected.unexpected, [4, 9]);
        assert!(!unexpected.is_valid());
    }

    /// An insert the client acknowledged but that was not there right after its commit is put
    /// down to the client only if PD was down meanwhile; otherwise it is lost like any other.
    #[test]
    fn an_insert_never_written_is_excused_only_with_pd_down() {
        let adds = [
            Op::ok(0, 1, 10, 20, ReadBack::NotSeen),
            Op::ok(1, 2, 30, 40, ReadBack::NotSeen),
            Op::ok(2, 3, 50, 60, ReadBack::NotSeen),
        ];
        let pd_down_at_15 = |invoked: u64, completed: u64| invoked <= 15 && 15 <= completed;
        let report = check(&adds, &BTreeSet::from([3]), pd_down_at_15);
        assert_eq!(report.dropped_by_client, [1]);
        assert_eq!(report.lost, [2]);
        assert!(!report.is_valid());
        let report = check(&adds, &BTreeSet::from([2, 3]), pd_down_at_15);
        assert!(report.is_valid());
        assert_eq!(report.acknowledged, 3);
    }
}
