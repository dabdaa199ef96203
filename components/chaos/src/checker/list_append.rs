//! The *list-append* workload, checked in the manner of Elle: transactions append unique values
//! to lists and read whole lists; from the reads the checker recovers each list's order of
//! appends, and from that the dependencies between transactions:
//!
//! * ww: `T1` appended the value before the one `T2` appended to the same list;
//! * wr: `T2` read the list up to the value `T1` appended;
//! * rw: `T1` read the list up to a value, and `T2` appended the next one.
//!
//! Snapshot isolation forbids G0 (a cycle of ww edges), G1a (reading an aborted append), G1b
//! (reading a list in the middle of another transaction's appends to it), G1c (a cycle of ww
//! and wr edges) and G-single (a cycle with exactly one rw edge). It allows write skew (cycles
//! with two or more rw edges), so those are not reported. Reads that are no prefix of the
//! list's order, and values read twice, are reported as well.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::history::{Op, Outcome};

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Micro {
    Append {
        key: u64,
        value: u64,
    },
    /// What the list was (the result; `None` in the invocation).
    Read {
        key: u64,
        list: Option<Vec<u64>>,
    },
}

/// A transaction: its steps as invoked, and as completed (with the reads' results).
pub type TxnOp = Op<Vec<Micro>, Vec<Micro>>;

/// An anomaly snapshot isolation forbids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A read of a value appended by a transaction that failed for certain.
    G1a {
        reader: usize,
        writer: usize,
        key: u64,
    },
    /// A read ending at a value its writer appended before another of its appends to the key.
    G1b {
        reader: usize,
        writer: usize,
        key: u64,
    },
    /// Reads of a list that are not prefixes of one another.
    IncompatibleOrder { key: u64 },
    /// A value appearing twice in one read (an append applied twice).
    Duplicate { reader: usize, key: u64, value: u64 },
    /// A read of a value nobody appended.
    Phantom { reader: usize, key: u64, value: u64 },
    /// A dependency cycle, as the transactions on it, of the given kind.
    Cycle { kind: CycleKind, txns: Vec<usize> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleKind {
    G0,
    G1c,
    GSingle,
}

const WW: u8 = 1;
const WR: u8 = 2;
const RW: u8 = 4;

/// Checks a history of list-append transactions; an empty result means no anomaly.
pub fn check(history: &[TxnOp]) -> Vec<Anomaly> {
    let mut anomalies = vec![];
    // Who appended each (key, value), and whether it may have committed.
    let mut writer: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, txn) in history.iter().enumerate() {
        for micro in &txn.f {
            if let Micro::Append { key, value } = micro {
                writer.insert((*key, *value), i);
            }
        }
    }
    let reads = committed_reads(history);
    let orders = version_orders(&reads, &mut anomalies);
    check_reads(history, &reads, &writer, &orders, &mut anomalies);
    let graph = dependencies(history, &reads, &writer, &orders);
    anomalies.extend(cycles(&graph));
    anomalies
}

/// Every read of a committed transaction: (transaction, key, list).
fn committed_reads(history: &[TxnOp]) -> Vec<(usize, u64, Vec<u64>)> {
    let mut reads = vec![];
    for (i, txn) in history.iter().enumerate() {
        let Outcome::Ok(steps) = &txn.outcome else {
            continue;
        };
        for micro in steps {
            if let Micro::Read {
                key,
                list: Some(list),
            } = micro
            {
                reads.push((i, *key, list.clone()));
            }
        }
    }
    reads
}

/// Each key's order of appends: its longest read, if every other read is a prefix of it.
fn version_orders(
    reads: &[(usize, u64, Vec<u64>)],
    anomalies: &mut Vec<Anomaly>,
) -> BTreeMap<u64, Vec<u64>> {
    let mut orders: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (_, key, list) in reads {
        let order = orders.entry(*key).or_default();
        if list.len() > order.len() {
            *order = list.clone();
        }
    }
    for (key, order) in &orders {
        let compatible = reads
            .iter()
            .filter(|(_, k, _)| k == key)
            .all(|(_, _, list)| order.starts_with(list));
        if !compatible {
            anomalies.push(Anomaly::IncompatibleOrder { key: *key });
        }
    }
    orders
}

/// G1a, G1b, duplicates and phantoms, read by read.
fn check_reads(
    history: &[TxnOp],
    reads: &[(usize, u64, Vec<u64>)],
    writer: &HashMap<(u64, u64), usize>,
    orders: &BTreeMap<u64, Vec<u64>>,
    anomalies: &mut Vec<Anomaly>,
) {
    for (reader, key, list) in reads {
        let mut seen = HashSet::new();
        for value in list {
            if !seen.insert(value) {
                anomalies.push(Anomaly::Duplicate {
                    reader: *reader,
                    key: *key,
                    value: *value,
                });
            }
            match writer.get(&(*key, *value)) {
                None => anomalies.push(Anomaly::Phantom {
                    reader: *reader,
                    key: *key,
                    value: *value,
                }),
                Some(&w) if history[w].outcome == Outcome::Failed => anomalies.push(Anomaly::G1a {
                    reader: *reader,
                    writer: w,
                    key: *key,
                }),
                Some(_) => {}
            }
        }
        // The read must not stop between two appends of one other transaction.
        let (Some(last), Some(order)) = (list.last(), orders.get(key)) else {
            continue;
        };
        let Some(&w) = writer.get(&(*key, *last)) else {
            continue;
        };
        let next = order.get(list.len());
        if w != *reader && next.is_some_and(|n| writer.get(&(*key, *n)) == Some(&w)) {
            anomalies.push(Anomaly::G1b {
                reader: *reader,
                writer: w,
                key: *key,
            });
        }
    }
}

/// The dependency graph over transactions that took effect: edges with their kinds.
fn dependencies(
    history: &[TxnOp],
    reads: &[(usize, u64, Vec<u64>)],
    writer: &HashMap<(u64, u64), usize>,
    orders: &BTreeMap<u64, Vec<u64>>,
) -> HashMap<usize, HashMap<usize, u8>> {
    let mut graph: HashMap<usize, HashMap<usize, u8>> = HashMap::new();
    let mut edge = |from: usize, to: usize, kind: u8| {
        if from != to {
            *graph.entry(from).or_default().entry(to).or_default() |= kind;
        }
    };
    let took_effect = |w: usize| history[w].outcome != Outcome::Failed;
    for (key, order) in orders {
        let writers: Vec<usize> = order
            .iter()
            .filter_map(|v| writer.get(&(*key, *v)).copied())
            .filter(|&w| took_effect(w))
            .collect();
        for pair in writers.windows(2) {
            edge(pair[0], pair[1], WW);
        }
    }
    for (reader, key, list) in reads {
        let order = &orders[key];
        if let Some(&w) = list.last().and_then(|v| writer.get(&(*key, *v))) {
            edge(w, *reader, WR);
        }
        if let Some(&w) = order.get(list.len()).and_then(|v| writer.get(&(*key, *v))) {
            if took_effect(w) {
                edge(*reader, w, RW);
            }
        }
    }
    graph
}

/// G0, G1c and G-single cycles, one report per kind and transaction set found.
fn cycles(graph: &HashMap<usize, HashMap<usize, u8>>) -> Vec<Anomaly> {
    let mut found = vec![];
    let mut reported: HashSet<(u8, Vec<usize>)> = HashSet::new();
    let mut report = |kind: CycleKind, mut txns: Vec<usize>, found: &mut Vec<Anomaly>| {
        let mut key = txns.clone();
        key.sort_unstable();
        if reported.insert((kind as u8, key)) {
            txns.dedup();
            found.push(Anomaly::Cycle { kind, txns });
        }
    };
    // A cycle through `from -> to` (of `kind`) closes when `to` reaches `from` over `allowed`.
    for (&from, targets) in graph {
        for (&to, &kinds) in targets {
            for (kind, edge_kinds, allowed) in [
                (CycleKind::G0, WW, WW),
                (CycleKind::G1c, WW | WR, WW | WR),
                (CycleKind::GSingle, RW, WW | WR),
            ] {
                if kinds & edge_kinds == 0 {
                    continue;
                }
                if let Some(mut path) = path(graph, to, from, allowed) {
                    path.insert(0, from);
                    report(kind, path, &mut found);
                }
            }
        }
    }
    found
}

/// A path `from -> ... -> to` over edges having a kind in `allowed`, as its transactions.
fn path(
    graph: &HashMap<usize, HashMap<usize, u8>>,
    from: usize,
    to: usize,
    allowed: u8,
) -> Option<Vec<usize>> {
    let mut came_from: HashMap<usize, usize> = HashMap::from([(from, from)]);
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(txn) = queue.pop_front() {
        if txn == to {
            let mut path = vec![to];
            let mut at = to;
            while at != from {
                at = came_from[&at];
                path.push(at);
            }
            path.reverse();
            return Some(path);
        }
        for (&next, &kinds) in graph.get(&txn).into_iter().flatten() {
            if kinds & allowed != 0 && !came_from.contains_key(&next) {
                came_from.insert(next, txn);
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(key: u64, value: u64) -> Micro {
        Micro::Append { key, value }
    }

    fn read(key: u64, list: &[u64]) -> Micro {
        Micro::Read {
            key,
            list: Some(list.to_vec()),
        }
    }

    fn txn(p: u64, t: u64, steps: Vec<Micro>) -> TxnOp {
        Op::ok(p, steps.clone(), t, t + 1, steps)
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<CycleKind> {
        anomalies
            .iter()
            .filter_map(|a| match a {
                Anomaly::Cycle { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn serial_appends_and_reads_pass() {
        let history = [
            txn(0, 0, vec![append(1, 1), append(2, 1)]),
            txn(1, 2, vec![read(1, &[1]), append(1, 2)]),
            txn(0, 4, vec![read(1, &[1, 2]), read(2, &[1])]),
        ];
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn write_skew_is_allowed() {
        // Each reads the other's key empty and appends to its own: two rw edges.
        let history = [
            txn(0, 0, vec![read(1, &[]), append(2, 1)]),
            txn(1, 0, vec![read(2, &[]), append(1, 1)]),
            txn(2, 5, vec![read(1, &[1]), read(2, &[1])]),
        ];
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn a_lost_update_is_g_single() {
        // Both read the list empty and append; one append is ordered after the other, so the
        // reader of [] for the second must precede the first... a cycle with one rw edge.
        let history = [
            txn(0, 0, vec![read(1, &[]), append(1, 1)]),
            txn(1, 0, vec![read(1, &[]), append(1, 2)]),
            txn(2, 5, vec![read(1, &[1, 2])]),
        ];
        assert!(kinds(&check(&history)).contains(&CycleKind::GSingle));
    }

    #[test]
    fn an_aborted_read_is_g1a_and_an_intermediate_read_is_g1b() {
        let aborted = [
            Op::failed(0, vec![append(1, 1)], 0, 1),
            txn(1, 2, vec![read(1, &[1])]),
        ];
        assert!(matches!(
            check(&aborted)[..],
            [Anomaly::G1a {
                reader: 1,
                writer: 0,
                key: 1
            }]
        ));
        let intermediate = [
            txn(0, 0, vec![append(1, 1), append(1, 2)]),
            txn(1, 0, vec![read(1, &[1])]),
            txn(2, 3, vec![read(1, &[1, 2])]),
        ];
        assert!(check(&intermediate).iter().any(|a| matches!(
            a,
            Anomaly::G1b {
                reader: 1,
                writer: 0,
                key: 1
            }
        )));
    }

    #[test]
    fn write_cycles_are_g0_and_read_cycles_g1c() {
        // T0 appends before T1 on key 1, after it on key 2.
        let g0 = [
            txn(0, 0, vec![append(1, 1), append(2, 2)]),
            txn(1, 0, vec![append(1, 2), append(2, 1)]),
            txn(2, 5, vec![read(1, &[1, 2]), read(2, &[1, 2])]),
        ];
        assert!(kinds(&check(&g0)).contains(&CycleKind::G0));
        // Each reads the other's append.
        let g1c = [
            txn(0, 0, vec![append(1, 1), read(2, &[1])]),
            txn(1, 0, vec![append(2, 1), read(1, &[1])]),
        ];
        assert!(kinds(&check(&g1c)).contains(&CycleKind::G1c));
    }

    #[test]
    fn diverging_reads_duplicates_and_phantoms_are_reported() {
        let history = [
            txn(0, 0, vec![append(1, 1)]),
            txn(1, 0, vec![append(1, 2)]),
            txn(2, 3, vec![read(1, &[1])]),
            txn(3, 3, vec![read(1, &[2])]),
            txn(4, 3, vec![read(1, &[2, 2, 9])]),
        ];
        let anomalies = check(&history);
        assert!(anomalies.contains(&Anomaly::IncompatibleOrder { key: 1 }));
        assert!(anomalies.contains(&Anomaly::Duplicate {
            reader: 4,
            key: 1,
            value: 2
        }));
        assert!(anomalies.contains(&Anomaly::Phantom {
            reader: 4,
            key: 1,
            value: 9
        }));
    }
}
