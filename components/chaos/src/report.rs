//! What a run leaves behind: histories written one operation per line, the nemesis's
//! schedule, and for an anomaly the shortest window of the history that shows it.

use std::fmt::{Debug, Write as _};
use std::path::Path;

use crate::history::{Op, Outcome};

/// Something the nemesis did, at a time on the run's clock (nanoseconds).
#[derive(Clone, Debug)]
pub struct Event {
    pub at: u64,
    pub what: String,
}

fn millis(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// One operation as a line: index, client, times in milliseconds, what it did and how it
/// ended.
pub fn format_op<F: Debug, R: Debug>(index: usize, op: &Op<F, R>) -> String {
    let end = match &op.outcome {
        Outcome::Ok(result) => format!("{} ok {result:?}", millis(op.completed)),
        Outcome::Failed => format!("{} failed", millis(op.completed)),
        Outcome::Unknown => "? unknown".to_string(),
    };
    format!(
        "#{index} p{} {}..{end} {:?}",
        op.process,
        millis(op.invoked),
        op.f
    )
}

/// Writes `history` to `path`, one operation per line, in invocation order.
///
/// # Errors
///
/// The write's error.
pub fn write_history<F: Debug, R: Debug>(path: &Path, history: &[Op<F, R>]) -> std::io::Result<()> {
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|&i| history[i].invoked);
    let mut text = String::new();
    for i in order {
        text.push_str(&format_op(i, &history[i]));
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// Writes the nemesis's events to `path`, one per line.
///
/// # Errors
///
/// The write's error.
pub fn write_events(path: &Path, events: &[Event]) -> std::io::Result<()> {
    let text: String = events
        .iter()
        .map(|e| format!("{} {}\n", millis(e.at), e.what))
        .collect();
    std::fs::write(path, text)
}

/// The shortest stretch of `history` that shows an anomaly among the operations `involved`:
/// from the first of them to be invoked to the last to complete, every operation in that time
/// that `related` accepts (say, those on the same key), and the nemesis's events in it and
/// just before it (the fault in force). At most `limit` operations are shown, nearest the
/// involved ones first.
pub fn window<F: Debug, R: Debug>(
    history: &[Op<F, R>],
    involved: &[usize],
    related: impl Fn(&Op<F, R>) -> bool,
    events: &[Event],
    limit: usize,
) -> String {
    let end_of = |op: &Op<F, R>| match op.outcome {
        Outcome::Unknown => op.invoked,
        _ => op.completed,
    };
    let Some(start) = involved.iter().map(|&i| history[i].invoked).min() else {
        return String::new();
    };
    let end = involved
        .iter()
        .map(|&i| end_of(&history[i]))
        .max()
        .unwrap_or(start);
    let mut shown: Vec<usize> = involved.to_vec();
    // An operation of unknown outcome may have taken effect any time after its invocation.
    let may_act_until = |op: &Op<F, R>| match op.outcome {
        Outcome::Unknown => u64::MAX,
        _ => op.completed,
    };
    let mut others: Vec<usize> = (0..history.len())
        .filter(|i| !involved.contains(i))
        .filter(|&i| related(&history[i]))
        .filter(|&i| history[i].invoked <= end && may_act_until(&history[i]) >= start)
        .collect();
    others.sort_by_key(|&i| history[i].invoked.abs_diff(start));
    let room = limit.saturating_sub(shown.len());
    let left_out = others.len().saturating_sub(room);
    shown.extend(others.into_iter().take(room));
    shown.sort_by_key(|&i| history[i].invoked);
    shown.dedup();

    let mut text = format!(
        "window {} ms .. {} ms ({} involved operations marked *):\n",
        millis(start),
        millis(end),
        involved.len()
    );
    if let Some(event) = events.iter().rev().find(|e| e.at < start) {
        let _ = writeln!(
            text,
            "  nemesis before: {} {}",
            millis(event.at),
            event.what
        );
    }
    for event in events.iter().filter(|e| e.at >= start && e.at <= end) {
        let _ = writeln!(text, "  nemesis: {} {}", millis(event.at), event.what);
    }
    for i in shown {
        let mark = if involved.contains(&i) { '*' } else { ' ' };
        let _ = writeln!(text, "{mark} {}", format_op(i, &history[i]));
    }
    if left_out > 0 {
        let _ = writeln!(text, "  ... and {left_out} more overlapping operations");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_spans_the_involved_operations_and_what_overlaps_them() {
        let history: Vec<Op<u64, u64>> = vec![
            Op::ok(0, 1, 0, 10, 0),
            Op::ok(1, 1, 20, 30, 0),
            Op::ok(2, 2, 25, 26, 0),
            Op::unknown(0, 1, 28),
            Op::ok(1, 1, 40, 50, 0),
            // Invoked before the window, of unknown outcome: it may have acted inside it.
            Op::unknown(3, 1, 5),
        ];
        let events = [
            Event {
                at: 5,
                what: "kill store 1".into(),
            },
            Event {
                at: 27,
                what: "partition".into(),
            },
        ];
        let text = window(&history, &[1], |op| op.f == 1, &events, 10);
        assert!(text.contains("* #1 "), "{text}");
        assert!(text.contains("  #3 ") && text.contains("  #5 "), "{text}");
        assert!(!text.contains("#2 ") && !text.contains("#0 ") && !text.contains("#4 "));
        assert!(
            text.contains("nemesis before: 0.000 kill store 1"),
            "{text}"
        );
        assert!(text.contains("nemesis: 0.000 partition"), "{text}");
    }
}
