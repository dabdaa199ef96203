//! The *register* workload: raw get, put and compare-and-swap on a few keys (CAS in atomic
//! mode, as the official client requires), by several clients at once.
//!
//! Every written value is unique (the client's number in the high bits), so a read names the
//! write it saw. A read that fails says nothing; a write or CAS that fails may or may not have
//! taken effect (the client cannot tell a lost answer from a refused request), so it is
//! recorded as of unknown outcome.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tikv_client::{Config, RawClient};

use super::Clock;
use crate::checker::register::{RegisterF, RegisterOp, RegisterResult, Value};
use crate::history::{Op, Outcome};

/// How the workload runs.
#[derive(Clone, Debug)]
pub struct RegisterOptions {
    pub clients: u64,
    pub keys: u64,
    pub duration: Duration,
    pub seed: u64,
    /// The client's timeout per request.
    pub timeout: Duration,
}

fn key(k: u64) -> Vec<u8> {
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

/// Runs the workload against the cluster whose PD is at `pd`; returns every operation.
///
/// # Errors
/// A client that cannot connect to PD at the start.
pub async fn run(pd: Vec<String>, options: RegisterOptions) -> Result<Vec<RegisterOp>, String> {
    let clock = Clock::start();
    let deadline = Instant::now() + options.duration;
    let mut tasks = vec![];
    for process in 0..options.clients {
        let config = Config::default().with_timeout(options.timeout);
        let client = RawClient::new_with_config(pd.clone(), config)
            .await
            .map_err(|e| format!("connect to PD: {e}"))?
            .with_atomic_for_cas();
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(options.seed ^ process.wrapping_mul(0x9E37));
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
                        let expected = history
                            .iter()
                            .rev()
                            .find_map(|op: &RegisterOp| match (&op.f, &op.outcome) {
                                ((key, RegisterF::Read), Outcome::Ok(RegisterResult::Read(v)))
                                    if *key == k =>
                                {
                                    Some(*v)
                                }
                                _ => None,
                            })
                            .unwrap_or(None);
                        RegisterF::Cas {
                            expected,
                            new: (process << 32) | written,
                        }
                    }
                };
                history.push(call(&client, &clock, process, k, f).await);
            }
            history
        }));
    }
    let mut history = vec![];
    for task in tasks {
        history.extend(task.await.map_err(|e| format!("register client: {e}"))?);
    }
    Ok(history)
}

/// Runs one operation and records it.
async fn call(client: &RawClient, clock: &Clock, process: u64, k: u64, f: RegisterF) -> RegisterOp {
    let invoked = clock.now();
    let result = match f {
        RegisterF::Read => client
            .get(key(k))
            .await
            .map(|v| RegisterResult::Read(decode(v))),
        RegisterF::Write(v) => client
            .put(key(k), encode(v))
            .await
            .map(|()| RegisterResult::Written),
        RegisterF::Cas { expected, new } => client
            .compare_and_swap(key(k), expected.map(encode), encode(new))
            .await
            .map(|(previous, swapped)| RegisterResult::Cas {
                swapped,
                previous: decode(previous),
            }),
    };
    let completed = clock.now();
    match result {
        Ok(result) => Op::ok(process, (k, f), invoked, completed, result),
        Err(_) if f == RegisterF::Read => Op::failed(process, (k, f), invoked, completed),
        Err(_) => Op::unknown(process, (k, f), invoked),
    }
}
