//! Linearizability of single registers (the *register* workload: raw get, put and CAS on a few
//! keys), checked per key with a Wing–Gong search as Porcupine does it: memoised on the set of
//! operations already linearized and the register's value.
//!
//! An operation whose outcome is unknown may have taken effect at any time after its
//! invocation, or never: its completion is placed after every other event, so the search may
//! linearize it anywhere from its invocation on, including last, where its effect is seen by
//! nobody. A failed operation took no effect and is left out, as is a read of unknown outcome.

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Return,
}

struct Entry {
    kind: Kind,
    /// Index into the key's operations.
    op: usize,
}

/// The entries still to place, as a doubly linked list over a vector (index 0 is the head).
struct EntryList {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For a call entry, its return entry.
    matching: Vec<usize>,
}

const NONE: usize = usize::MAX;

impl EntryList {
    /// Takes a call entry and its return out of the list.
    fn lift(&mut self, call: usize) {
        let ret = self.matching[call];
        for e in [call, ret] {
            let (p, n) = (self.prev[e], self.next[e]);
            self.next[p] = n;
            if n != NONE {
                self.prev[n] = p;
            }
        }
    }

    /// Puts them back (in the reverse order of `lift`).
    fn unlift(&mut self, call: usize) {
        let ret = self.matching[call];
        for e in [ret, call] {
            let (p, n) = (self.prev[e], self.next[e]);
            self.next[p] = e;
            if n != NONE {
                self.prev[n] = e;
            }
        }
    }
}

fn check_key(history: &[RegisterOp], key: u64, ids: &[usize]) -> Result<(), Violation> {
    // Failed operations and reads of unknown outcome say nothing about the register.
    let ops: Vec<usize> = ids
        .iter()
        .copied()
        .filter(|&i| match &history[i].outcome {
            Outcome::Failed => false,
            Outcome::Unknown => history[i].f.1 != RegisterF::Read,
            Outcome::Ok(_) => true,
        })
        .collect();
    // Entries by time (1-based; 0 is the list head); a call sorts before a return at the same
    // instant, so touching operations count as concurrent.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
    for (n, &i) in ops.iter().enumerate() {
        let op = &history[i];
        let completed = match op.outcome {
            Outcome::Unknown => u64::MAX,
            _ => op.completed,
        };
        events.push((op.invoked, 0, n));
        events.push((completed, 1, n));
    }
    events.sort_unstable();
    let mut entries = vec![Entry {
        kind: Kind::Call,
        op: NONE,
    }];
    let mut call_of = vec![0; ops.len()];
    let mut list = EntryList {
        next: vec![],
        prev: vec![],
        matching: vec![NONE; events.len() + 1],
    };
    for (_, kind, n) in events {
        let index = entries.len();
        match kind {
            0 => call_of[n] = index,
            _ => list.matching[call_of[n]] = index,
        }
        entries.push(Entry {
            kind: if kind == 0 { Kind::Call } else { Kind::Return },
            op: n,
        });
    }
    list.next = (1..=entries.len())
        .map(|i| if i == entries.len() { NONE } else { i })
        .collect();
    list.prev = (0..entries.len()).map(|i| i.wrapping_sub(1)).collect();
    search(history, key, &ops, &entries, &mut list)
}

/// The depth-first search over the entry list.
fn search(
    history: &[RegisterOp],
    key: u64,
    ops: &[usize],
    entries: &[Entry],
    list: &mut EntryList,
) -> Result<(), Violation> {
    let mut value: Value = None;
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, Value)> = HashSet::new();
    // Each placed call entry, with the value before it.
    let mut stack: Vec<(usize, Value)> = vec![];
    let mut deepest: Option<(usize, Vec<usize>)> = None;
    let mut entry = list.next[0];
    while list.next[0] != NONE {
        let e = &entries[entry];
        if e.kind == Kind::Call {
            let op = &history[ops[e.op]];
            if let Some(after) = step(value, op.f.1, &op.outcome) {
                linearized[e.op / 64] |= 1 << (e.op % 64);
                if seen.insert((linearized.clone(), after)) {
                    stack.push((entry, value));
                    value = after;
                    list.lift(entry);
                    entry = list.next[0];
                    continue;
                }
                linearized[e.op / 64] &= !(1 << (e.op % 64));
            }
            entry = list.next[entry];
            continue;
        }
        // A completion before its operation could be placed: undo the last placement.
        if deepest
            .as_ref()
            .is_none_or(|(_, placed)| placed.len() < stack.len())
        {
            let placed = stack.iter().map(|&(c, _)| ops[entries[c].op]).collect();
            deepest = Some((ops[e.op], placed));
        }
        let Some((call, before)) = stack.pop() else {
            let (stuck_on, linearized) = deepest.unwrap_or((ops[e.op], vec![]));
            return Err(Violation {
                key,
                stuck_on,
                linearized,
            });
        };
        let op = entries[call].op;
        linearized[op / 64] &= !(1 << (op % 64));
        value = before;
        list.unlift(call);
        entry = list.next[call];
    }
    Ok(())
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
    fn a_long_concurrent_history_is_checked_quickly() {
        // Five clients each write their own values and read, overlapping heavily.
        let mut history = vec![];
        let mut last = None;
        for round in 0..200u64 {
            for p in 0..5u64 {
                let t = round * 100 + p * 10;
                if p == 4 {
                    history.push(read(p, t, t + 60, last));
                } else {
                    let v = round * 10 + p;
                    history.push(write(p, t, t + 5, v));
                    last = Some(v);
                }
            }
        }
        assert_eq!(check(&history), vec![]);
    }
}
