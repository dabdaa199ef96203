//! The *tso* workload: timestamps from PD, across PD restarts. A timestamp must be greater than
//! every timestamp handed out before its request was sent (real-time order), and no two
//! requests may get the same one.

use std::collections::HashMap;

use crate::history::{Op, Outcome};

/// A request for one timestamp.
pub type TsoOp = Op<(), u64>;

/// A timestamp that breaks the order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsoViolation {
    /// `later` was requested after `earlier` was answered, yet is not greater.
    NotIncreasing { earlier: usize, later: usize },
    /// Two requests got the same timestamp.
    Duplicate { first: usize, second: usize },
}

pub fn check(history: &[TsoOp]) -> Vec<TsoViolation> {
    let answered: Vec<(usize, u64)> = history
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op.outcome {
            Outcome::Ok(ts) => Some((i, ts)),
            _ => None,
        })
        .collect();
    let mut violations = vec![];
    let mut owner: HashMap<u64, usize> = HashMap::new();
    for &(i, ts) in &answered {
        if let Some(&first) = owner.get(&ts) {
            violations.push(TsoViolation::Duplicate { first, second: i });
        } else {
            owner.insert(ts, i);
        }
    }
    // Sweep by time: before each invocation, the largest timestamp answered so far.
    let mut by_completion = answered.clone();
    by_completion.sort_by_key(|&(i, _)| history[i].completed);
    let mut by_invocation = answered;
    by_invocation.sort_by_key(|&(i, _)| history[i].invoked);
    let mut done = by_completion.iter().peekable();
    let mut max: Option<(usize, u64)> = None;
    for &(i, ts) in &by_invocation {
        while let Some(&&(j, done_ts)) = done.peek() {
            if history[j].completed >= history[i].invoked {
                break;
            }
            if max.is_none_or(|(_, m)| done_ts > m) {
                max = Some((j, done_ts));
            }
            done.next();
        }
        if let Some((earlier, m)) = max {
            if ts <= m {
                violations.push(TsoViolation::NotIncreasing { earlier, later: i });
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_must_grow_in_real_time_and_be_unique() {
        let good = [
            Op::ok(0, (), 0, 2, 10),
            Op::ok(1, (), 1, 3, 5),
            Op::ok(0, (), 4, 5, 11),
            Op::failed(1, (), 4, 5),
        ];
        assert_eq!(check(&good), vec![]);
        // Across a PD restart, a timestamp goes back.
        let back = [Op::ok(0, (), 0, 1, 10), Op::ok(0, (), 2, 3, 9)];
        assert_eq!(
            check(&back),
            vec![TsoViolation::NotIncreasing {
                earlier: 0,
                later: 1
            }]
        );
        let duplicate = [Op::ok(0, (), 0, 1, 10), Op::ok(1, (), 0, 1, 10)];
        assert_eq!(
            check(&duplicate),
            vec![TsoViolation::Duplicate {
                first: 0,
                second: 1
            }]
        );
    }
}
