//! What a workload records: for each operation, who invoked it, when, and how it ended.

/// How an operation ended, as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<R> {
    /// It took effect, with this result.
    Ok(R),
    /// It certainly took no effect (the server said so before doing anything).
    Failed,
    /// It may or may not have taken effect, at any time after its invocation (a timeout, an
    /// undetermined write, a lost connection).
    Unknown,
}

/// One operation of a history. Times are nanoseconds on one clock, from the run's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op<F, R> {
    /// The client (logical process) that ran it; a client runs one operation at a time.
    pub process: u64,
    pub f: F,
    pub invoked: u64,
    /// When the outcome was seen; irrelevant for [`Outcome::Unknown`].
    pub completed: u64,
    pub outcome: Outcome<R>,
}

impl<F, R> Op<F, R> {
    pub fn ok(process: u64, f: F, invoked: u64, completed: u64, result: R) -> Self {
        Op {
            process,
            f,
            invoked,
            completed,
            outcome: Outcome::Ok(result),
        }
    }

    pub fn failed(process: u64, f: F, invoked: u64, completed: u64) -> Self {
        Op {
            process,
            f,
            invoked,
            completed,
            outcome: Outcome::Failed,
        }
    }

    pub fn unknown(process: u64, f: F, invoked: u64) -> Self {
        Op {
            process,
            f,
            invoked,
            completed: u64::MAX,
            outcome: Outcome::Unknown,
        }
    }
}
