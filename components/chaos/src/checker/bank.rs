//! The *bank* workload: transfers between accounts in transactions, and snapshot reads of all
//! balances. Every read must show the constant total and no negative balance (a transfer never
//! overdraws).

use crate::history::{Op, Outcome};

/// A snapshot read of every account's balance, with the snapshot's ts once it had one.
pub type ReadOp = Op<Option<u64>, Vec<i64>>;

/// A read that breaks the bank's invariants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankViolation {
    /// Index of the read in the history.
    pub read: usize,
    pub total: i64,
    pub negative: bool,
}

pub fn check(reads: &[ReadOp], total: i64) -> Vec<BankViolation> {
    reads
        .iter()
        .enumerate()
        .filter_map(|(i, read)| {
            let Outcome::Ok(balances) = &read.outcome else {
                return None;
            };
            let sum = balances.iter().sum();
            let negative = balances.iter().any(|&b| b < 0);
            (sum != total || negative).then_some(BankViolation {
                read: i,
                total: sum,
                negative,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_must_show_the_total_and_no_overdraft() {
        let reads = [
            Op::ok(0, None, 0, 1, vec![50, 50]),
            Op::ok(0, None, 2, 3, vec![70, 30]),
            Op::failed(1, None, 2, 3),
            Op::ok(1, None, 4, 5, vec![70, 50]),
            Op::ok(1, None, 6, 7, vec![110, -10]),
        ];
        let violations = check(&reads, 100);
        assert_eq!(violations.len(), 2);
        assert_eq!((violations[0].read, violations[0].total), (3, 120));
        assert!(violations[1].negative);
    }
}
