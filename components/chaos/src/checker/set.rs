//! The *set* workload: unique inserts, then one final read of everything. Every acknowledged
//! insert must be read; an insert that failed for certain must not be; one of unknown outcome
//! may be either.

use std::collections::BTreeSet;

use crate::history::{Op, Outcome};

/// An insert of one unique element.
pub type AddOp = Op<u64, ()>;

/// What the final read showed against the inserts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetReport {
    pub attempted: usize,
    pub acknowledged: usize,
    /// Acknowledged, but not read.
    pub lost: Vec<u64>,
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

pub fn check(adds: &[AddOp], final_read: &BTreeSet<u64>) -> SetReport {
    let mut report = SetReport {
        attempted: adds.len(),
        ..SetReport::default()
    };
    let mut may_exist = BTreeSet::new();
    for add in adds {
        match add.outcome {
            Outcome::Ok(()) => {
                report.acknowledged += 1;
                may_exist.insert(add.f);
                if !final_read.contains(&add.f) {
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
            Op::ok(0, 1, 0, 1, ()),
            Op::ok(1, 2, 0, 1, ()),
            Op::unknown(0, 3, 2),
            Op::failed(1, 4, 2, 3),
            Op::unknown(0, 5, 4),
        ];
        let ok = check(&adds, &BTreeSet::from([1, 2, 3]));
        assert!(ok.is_valid());
        assert_eq!((ok.acknowledged, ok.recovered), (2, 1));
        let lost = check(&adds, &BTreeSet::from([1, 3]));
        assert_eq!(lost.lost, [2]);
        let unexpected = check(&adds, &BTreeSet::from([1, 2, 4, 9]));
        assert_eq!(unexpected.unexpected, [4, 9]);
        assert!(!unexpected.is_valid());
    }
}
