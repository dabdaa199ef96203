//! The *register* workload: raw get, put and compare-and-swap on a few keys (CAS in atomic
//! mode, as the official client requires), by several clients at once.
//!
//! Every written value is unique (the client's number in the high bits), so a read names the
//! write it saw. A read that fails says nothing; a write or CAS that fails may or may not have
//! taken effect (the client cannot tell a lost answer from a refused request), so it is
//! recorded as of unknown outcome.
//!
//! Writes go out once. The official client resends a request after any gRPC error, its own
//! timeout included, and raw writes carry no request id: a CAS whose first attempt was applied
//! just before its leader was killed or frozen is applied again by the resend, which then
//! answers "not swapped" (TiKV behaves the same). That is the client's retry, not the
//! store's, so the writes here use no client backoff: each attempt is one operation in the
//! history, and after a failed one a read (which may be retried: it changes nothing) brings
//! the shared region cache up to date.

use std::time::Instant;

use rand::Rng;
use tikv_client::{Backoff, RawClient};

use super::{bounded, pause_after_failure, raw_client, run_clients, Clock, Options};
use crate::checker::register::{RegisterF, RegisterOp, RegisterResult, Value};
use crate::history::{Op, Outcome};

/// The key of register `k`.
pub fn key(k: u64) -> Vec<u8> {
    format!("chaos-register-{k}").into_bytes()
}

fn encode(v: u64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// A stored value that is not one of ours reads as a value no one wrote (`u64::MAX`), which
/// the checker then reports.
fn decode(bytes: Option<Vec<u8>>) -> Value {
    bytes.map(|b| {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX)
    })
}

/// Runs the workload against the cluster whose PD is at `pd`, timed on `clock`; returns every
/// operation.
///
/// # Errors
/// A client that cannot connect to PD at the start.
pub async fn run(
    pd: Vec<String>,
    options: Options,
    clock: Clock,
) -> Result<Vec<RegisterOp>, String> {
    let deadline = Instant::now() + options.duration;
    run_clients("register", &options, |process| {
        let (pd, options) = (pd.clone(), options.clone());
        async move {
            let reader = raw_client(&pd, &options).await?.with_atomic_for_cas();
            let writer = reader.with_backoff(Backoff::no_backoff());
            let mut rng = options.rng(process, 0);
            let mut history = vec![];
            let mut written = 0u64;
            while Instant::now() < deadline {
                let k = rng.gen_range(0..options.keys);
                let f = match rng.gen_range(0..10) {
                    0..=3 => RegisterF::Read,
                    4..=6 => {
                        written += 1;
                        RegisterF::Write((process << 32) | written)
                    }
                    _ => {
                        written += 1;
                        RegisterF::Cas {
                            expected: last_read(&history, k),
                            new: (process << 32) | written,
                        }
                    }
                };
                let op = call(&reader, &writer, &clock, &options, process, k, f).await;
                if op.outcome == Outcome::Unknown {
                    // Not recorded: a read has no effect; it refreshes the region cache.
                    let _ = bounded(options.op_limit(), reader.get(key(k))).await;
                }
                pause_after_failure(&op).await;
                history.push(op);
                // Unpaced, five clients take most of two cores from the cluster and the other
                // workloads; a hundred operations a second each is plenty.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Ok(history)
        }
    })
    .await
}

/// What this client last read from register `k` (nothing read counts as absent): what its
/// next CAS on `k` expects.
fn last_read(history: &[RegisterOp], k: u64) -> Value {
    history
        .iter()
        .rev()
        .find_map(|op| match (&op.f, &op.outcome) {
            ((key, RegisterF::Read), Outcome::Ok(RegisterResult::Read(v))) if *key == k => Some(*v),
            _ => None,
        })
        .unwrap_or(None)
}

/// Runs one operation and records it.
async fn call(
    reader: &RawClient,
    writer: &RawClient,
    clock: &Clock,
    options: &Options,
    process: u64,
    k: u64,
    f: RegisterF,
) -> RegisterOp {
    let invoked = clock.now();
    let result = bounded(options.op_limit(), async {
        match f {
            RegisterF::Read => reader
                .get(key(k))
                .await
                .map(|v| RegisterResult::Read(decode(v))),
            RegisterF::Write(v) => writer
                .put(key(k), encode(v))
                .await
                .map(|()| RegisterResult::Written),
            RegisterF::Cas { expected, new } => writer
                .compare_and_swap(key(k), expected.map(encode), encode(new))
                .await
                .map(|(previous, swapped)| RegisterResult::Cas {
                    swapped,
                    previous: decode(previous),
                }),
        }
    })
    .await;
    let completed = clock.now();
    match result {
        Some(Ok(result)) => Op::ok(process, (k, f), invoked, completed, result),
        _ if f == RegisterF::Read => Op::failed(process, (k, f), invoked, completed),
        _ => Op::unknown(process, (k, f), invoked),
    }
}
