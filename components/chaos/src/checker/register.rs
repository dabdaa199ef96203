//! Linearizability of single registers (the *register* workload: raw get, put and CAS on a few
//! keys), checked per key (P-compositionality) with a Wing–Gong search, memoised as Porcupine
//! does, run segment by segment: the history is cut at quiescent points (no operation in
//! flight), each segment is searched exhaustively from every configuration the previous one
//! can end in, and configurations are pruned to those that applied the fewest unknowns.
//!
//! An operation whose outcome is unknown may have taken effect at any time after its
//! invocation, or never: it is no part of any segment, but may be slotted into any segment
//! from its invocation on, once. (Left pending forever, as Knossos and Porcupine treat it, a
//! few such operations make the search explode: every later operation overlaps them.) A failed
//! operation took no effect and is left out, as is a read of unknown outcome.

use std::collections::{BTreeMap, HashSet};

use crate::history::{Op, Outcome};

/// A register's value: `None` when the key has no value.
pub type Value = Option<u64>;

/// What a register operation asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterF {
    Read,
    Write(u64),
    /// Set to `new` if the value is `expected`.
    Cas {
        expected: Value,
        new: u64,
    },
}

/// What a register operation answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterResult {
    Read(Value),
    Written,
    /// Whether the swap happened, and the value found.
    Cas {
        swapped: bool,
        previous: Value,
    },
}

/// An operation on the register at `key`.
pub type RegisterOp = Op<(u64, RegisterF), RegisterResult>;

/// A key whose operations admit no linearization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub key: u64,
    /// The operations (indexes into the history) of the deepest point the search reached
    /// that it could not get past: the operation whose completion came before it could be
    /// placed, and those already placed.
    pub stuck_on: usize,
    pub linearized: Vec<usize>,
}

/// Checks every key's operations for linearizability; an empty result means all are.
pub fn check(history: &[RegisterOp]) -> Vec<Violation> {
    let mut by_key: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(op.f.0).or_default().push(i);
    }
    by_key
        .into_iter()
        .filter_map(|(key, ops)| check_key(history, key, &ops).err())
        .collect()
}

/// The register's value after `f` with result `outcome`, if they are consistent with `value`.
fn step(value: Value, f: RegisterF, outcome: &Outcome<RegisterResult>) -> Option<Value> {
    match (f, outcome) {
        (RegisterF::Read, Outcome::Ok(RegisterResult::Read(seen))) => {
            (*seen == value).then_some(value)
        }
        (RegisterF::Write(v), _) => Some(Some(v)),
        (
            RegisterF::Cas { expected, new },
            Outcome::Ok(RegisterResult::Cas { swapped, previous }),
        ) => match (*swapped, value == expected) {
            (true, true) => Some(Some(new)),
            (false, false) if *previous == value => Some(value),
            _ => None,
        },
        // A CAS of unknown outcome did whatever the value at its linearization point implies.
        (RegisterF::Cas { expected, new }, _) => {
            Some(if value == expected { Some(new) } else { value })
        }
        _ => None,
    }
}

/// Unknown operations already applied, as a bit set over the key's unknown operations.
type Applied = Vec<u64>;

/// Where the search may stand between two segments: the value, and which unknown operations
/// it has applied (the others may still apply later).
type Config = (Value, Applied);

fn has(set: &[u64], i: usize) -> bool {
    set[i / 64] & (1 << (i % 64)) != 0
}

fn with(set: &[u64], i: usize) -> Vec<u64> {
    let mut set = set.to_vec();
    set[i / 64] |= 1 << (i % 64);
    set
}

/// Keeps, per value, only the configurations whose applied set is minimal: one that applied
/// less can still do everything one that applied more can (applying is optional).
fn prune(configs: HashSet<Config>) -> Vec<Config> {
    let configs: Vec<Config> = configs.into_iter().collect();
    let covers = |a: &Applied, b: &Applied| a.iter().zip(b).all(|(x, y)| x & y == *x);
    configs
        .iter()
        .filter(|(value, applied)| {
            !configs
                .iter()
                .any(|(v, other)| v == value && other != applied && covers(other, applied))
        })
        .cloned()
        .collect()
}

fn check_key(history: &[RegisterOp], key: u64, ids: &[usize]) -> Result<(), Violation> {
    // Failed operations and reads of unknown outcome say nothing about the register.
    let mut finite: Vec<usize> = vec![];
    let mut unknown: Vec<usize> = vec![];
    for &i in ids {
        match &history[i].outcome {
            Outcome::Ok(_) => finite.push(i),
            Outcome::Unknown if history[i].f.1 != RegisterF::Read => unknown.push(i),
            _ => {}
        }
    }
    // An unknown operation whose value nobody saw is as good as never applied: applying it
    // only helps if a later operation observes its value, and without it the search would try
    // every subset of such operations in every segment.
    let observed = observed_values(history, &finite);
    unknown.retain(|&i| match history[i].f.1 {
        RegisterF::Write(v) | RegisterF::Cas { new: v, .. } => observed.contains(&v),
        RegisterF::Read => false,
    });
    finite.sort_by_key(|&i| history[i].invoked);
    unknown.sort_by_key(|&i| history[i].invoked);
    let mut configs: Vec<Config> = vec![(None, vec![0; unknown.len().div_ceil(64).max(1)])];
    let mut done: Vec<usize> = vec![];
    for segment in segments(history, &finite) {
        let mut search = Segment {
            history,
            ops: &segment,
            unknown: &unknown,
            seen: HashSet::new(),
            ends: HashSet::new(),
        };
        let none = vec![0; segment.len().div_ceil(64)];
        for (value, applied) in &configs {
            search.explore(&none, 0, *value, applied.clone());
        }
        if search.ends.is_empty() {
            return Err(Violation {
                key,
                stuck_on: segment[0],
                linearized: done,
            });
        }
        configs = prune(search.ends);
        done.extend(segment);
    }
    Ok(())
}

/// Every value some operation saw: read, found by a CAS, or replaced by a successful CAS.
fn observed_values(history: &[RegisterOp], finite: &[usize]) -> HashSet<u64> {
    let mut observed = HashSet::new();
    for &i in finite {
        let op = &history[i];
        let seen = match (&op.f.1, &op.outcome) {
            (_, Outcome::Ok(RegisterResult::Read(v))) => *v,
            (_, Outcome::Ok(RegisterResult::Cas { previous, .. })) => *previous,
            _ => None,
        };
        observed.extend(seen);
        if let (
            RegisterF::Cas { expected, .. },
            Outcome::Ok(RegisterResult::Cas { swapped: true, .. }),
        ) = (&op.f.1, &op.outcome)
        {
            observed.extend(*expected);
        }
    }
    observed
}

/// The finite operations in groups separated by quiescent points: an operation invoked after
/// every earlier one completed starts a new group. Operations of different groups are ordered
/// by real time, so each group is searched on its own, from the configurations the previous
/// one can end in.
fn segments(history: &[RegisterOp], finite: &[usize]) -> Vec<Vec<usize>> {
    let mut segments: Vec<Vec<usize>> = vec![];
    let mut end = 0;
    for &i in finite {
        let op = &history[i];
        match segments.last_mut() {
            Some(segment) if op.invoked <= end => segment.push(i),
            _ => segments.push(vec![i]),
        }
        end = end.max(op.completed);
    }
    segments
}

/// The exhaustive search of one segment: every order of its operations that respects real
/// time, with any of the unknown operations invoked by then slotted in anywhere after their
/// invocation.
struct Segment<'a> {
    history: &'a [RegisterOp],
    ops: &'a [usize],
    unknown: &'a [usize],
    /// (placed operations of the segment, value, unknowns applied) already explored.
    seen: HashSet<(Vec<u64>, Value, Applied)>,
    /// The configurations the segment can end in.
    ends: HashSet<Config>,
}

impl Segment<'_> {
    /// Explores from `placed` (a bit set over the segment's operations, `count` of them set).
    fn explore(&mut self, placed: &[u64], count: usize, value: Value, applied: Applied) {
        if count == self.ops.len() {
            self.ends.insert((value, applied));
            return;
        }
        if !self.seen.insert((placed.to_vec(), value, applied.clone())) {
            return;
        }
        // An operation may go next if it was invoked before every unplaced one completed.
        let unplaced = || (0..self.ops.len()).filter(|&n| !has(placed, n));
        let horizon = unplaced()
            .map(|n| self.history[self.ops[n]].completed)
            .min()
            .unwrap_or(u64::MAX);
        let candidates: Vec<usize> = unplaced()
            .filter(|&n| self.history[self.ops[n]].invoked <= horizon)
            .collect();
        for n in candidates {
            let op = &self.history[self.ops[n]];
            if let Some(after) = step(value, op.f.1, &op.outcome) {
                self.explore(&with(placed, n), count + 1, after, applied.clone());
            }
        }
        for (u, &i) in self.unknown.iter().enumerate() {
            let op = &self.history[i];
            if has(&applied, u) || op.invoked > horizon {
                continue;
            }
            if let Some(after) = step(value, op.f.1, &op.outcome) {
                self.explore(placed, count, after, with(&applied, u));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1;

    fn read(p: u64, t0: u64, t1: u64, v: Value) -> RegisterOp {
        Op::ok(p, (K, RegisterF::Read), t0, t1, RegisterResult::Read(v))
    }

    fn write(p: u64, t0: u64, t1: u64, v: u64) -> RegisterOp {
        Op::ok(p, (K, RegisterF::Write(v)), t0, t1, RegisterResult::Written)
    }

    fn cas(
        p: u64,
        t0: u64,
        t1: u64,
        expected: Value,
        new: u64,
        swapped: bool,
        previous: Value,
    ) -> RegisterOp {
        Op::ok(
            p,
            (K, RegisterF::Cas { expected, new }),
            t0,
            t1,
            RegisterResult::Cas { swapped, previous },
        )
    }

    /// Appends `rounds` rounds from time `start` in which four clients write their own values
    /// and a fifth reads across them, overlapping heavily; linearizable.
    fn overlapping_rounds(history: &mut Vec<RegisterOp>, start: u64, rounds: u64) {
        let mut last = None;
        for round in 0..rounds {
            for p in 0..5u64 {
                let t = start + round * 100 + p * 10;
                if p == 4 {
                    history.push(read(p, t, t + 60, last));
                } else {
                    let v = round * 10 + p;
                    history.push(write(p, t, t + 5, v));
                    last = Some(v);
                }
            }
        }
    }

    #[test]
    fn sequential_and_concurrent_histories_that_are_linearizable_pass() {
        let history = [
            read(0, 0, 1, None),
            write(0, 2, 3, 1),
            read(1, 4, 5, Some(1)),
            cas(1, 6, 7, Some(1), 2, true, Some(1)),
            cas(0, 8, 9, Some(1), 3, false, Some(2)),
            // Concurrent with the write of 4, a read may see either value.
            write(0, 10, 20, 4),
            read(1, 11, 12, Some(2)),
            read(2, 13, 14, Some(4)),
            read(1, 21, 22, Some(4)),
        ];
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn a_stale_read_is_a_violation() {
        let history = [write(0, 0, 1, 1), write(0, 2, 3, 2), read(1, 4, 5, Some(1))];
        let violations = check(&history);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].stuck_on, 2);
    }

    #[test]
    fn a_lost_update_is_a_violation() {
        // Two CAS from 0 both claim to have swapped.
        let history = [
            write(0, 0, 1, 0),
            cas(1, 2, 5, Some(0), 1, true, Some(0)),
            cas(2, 3, 6, Some(0), 2, true, Some(0)),
        ];
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn a_write_applied_twice_is_a_violation() {
        // 1 is written once, overwritten by 2, and then read again.
        let history = [
            write(0, 0, 1, 1),
            write(1, 2, 3, 2),
            read(2, 4, 5, Some(2)),
            read(2, 6, 7, Some(1)),
        ];
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn a_write_of_unknown_outcome_may_apply_late_or_never() {
        // The write of 1 timed out; it shows up later, after the write of 2.
        let late = [
            Op::unknown(0, (K, RegisterF::Write(1)), 0),
            write(1, 5, 6, 2),
            read(2, 7, 8, Some(2)),
            read(2, 9, 10, Some(1)),
        ];
        assert_eq!(check(&late), vec![]);
        // Or never.
        let never = [
            Op::unknown(0, (K, RegisterF::Write(1)), 0),
            read(2, 7, 8, None),
        ];
        assert_eq!(check(&never), vec![]);
        // But not before it was invoked.
        let before = [
            read(2, 0, 1, Some(1)),
            Op::unknown(0, (K, RegisterF::Write(1)), 5),
        ];
        assert_eq!(check(&before).len(), 1);
    }

    #[test]
    fn failed_operations_took_no_effect_and_keys_are_checked_apart() {
        let history = [
            Op::failed(0, (K, RegisterF::Write(1)), 0, 1),
            read(1, 2, 3, None),
            Op::ok(2, (7, RegisterF::Write(1)), 0, 1, RegisterResult::Written),
            Op::ok(2, (7, RegisterF::Read), 2, 3, RegisterResult::Read(None)),
        ];
        let violations = check(&history);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].key, 7);
    }

    #[test]
    fn many_writes_of_unknown_outcome_do_not_make_the_search_explode() {
        // Thirty writes time out at the start and are never seen; a long concurrent history
        // follows, and then one of them shows up after all.
        let mut history: Vec<RegisterOp> = (0..30)
            .map(|p| Op::unknown(100 + p, (K, RegisterF::Write(1000 + p)), p))
            .collect();
        overlapping_rounds(&mut history, 1000, 400);
        history.push(read(9, 100_000, 100_001, Some(1007)));
        history.push(read(9, 100_002, 100_003, Some(1007)));
        assert_eq!(check(&history), vec![]);
        // Seen twice with another value between: applied twice, which no order explains.
        history.push(read(9, 100_004, 100_005, Some(1008)));
        history.push(read(9, 100_006, 100_007, Some(1007)));
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn a_long_concurrent_history_is_checked_quickly() {
        let mut history = vec![];
        overlapping_rounds(&mut history, 0, 200);
        assert_eq!(check(&history), vec![]);
    }
}
