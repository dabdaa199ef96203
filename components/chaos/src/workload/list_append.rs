//! The *list-append* workload: transactions of one to four steps, each appending a unique value
//! to a list or reading a whole list (a list is one key holding comma-separated values; an
//! append reads it and writes it back longer). Transactions are optimistic or pessimistic (the
//! pessimistic ones lock what they append to). Every 30 seconds the clients move on to fresh
//! keys, so that lists stay short and the checker's work linear.
//!
//! A transaction that fails before its commit is sent, or whose prewrite meets a write
//! conflict, rolled back for certain; one whose commit errs otherwise, or that the workload
//! gave up on, is of unknown outcome.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use tikv_client::{CheckLevel, Transaction, TransactionOptions};

use super::{
    bounded, pause_after_failure, refused_at_prewrite, run_clients, txn_client, Clock, Options,
};
use crate::checker::list_append::{Micro, TxnOp};
use crate::history::Op;

/// How long the clients append to one set of keys.
const KEY_GENERATION: Duration = Duration::from_secs(30);

fn key(k: u64) -> Vec<u8> {
    format!("chaos-list-{k:06}").into_bytes()
}

/// A list as stored; a value that does not parse reads as `u64::MAX`, which no one appends,
/// so the checker reports it.
fn decode(value: Option<Vec<u8>>) -> Vec<u64> {
    let Some(bytes) = value else { return vec![] };
    String::from_utf8_lossy(&bytes)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

fn encode(list: &[u64]) -> String {
    list.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the steps in `t`; returns them with the reads' results.
async fn steps(
    t: &mut Transaction,
    pessimistic: bool,
    steps: &[Micro],
) -> tikv_client::Result<Vec<Micro>> {
    let mut done = vec![];
    for step in steps {
        match *step {
            Micro::Read { key: k, .. } => {
                let value = if pessimistic {
                    t.get_for_update(key(k)).await?
                } else {
                    t.get(key(k)).await?
                };
                let list = decode(value);
                done.push(Micro::Read {
                    key: k,
                    list: Some(list),
                });
            }
            Micro::Append { key: k, value } => {
                let current = if pessimistic {
                    t.get_for_update(key(k)).await?
                } else {
                    t.get(key(k)).await?
                };
                let mut list = decode(current);
                list.push(value);
                t.put(key(k), encode(&list)).await?;
                done.push(step.clone());
            }
        }
    }
    Ok(done)
}

/// Runs one transaction and records it.
async fn transaction(
    client: &tikv_client::TransactionClient,
    clock: &Clock,
    options: &Options,
    process: u64,
    pessimistic: bool,
    f: Vec<Micro>,
) -> TxnOp {
    let invoked = clock.now();
    let run = async {
        let txn_options = if pessimistic {
            TransactionOptions::new_pessimistic()
        } else {
            TransactionOptions::new_optimistic()
        };
        let Ok(mut t) = client
            .begin_with_options(txn_options.drop_check(CheckLevel::None))
            .await
        else {
            return Err(true);
        };
        match steps(&mut t, pessimistic, &f).await {
            Ok(done) => match t.commit().await {
                Ok(_) => Ok(done),
                Err(e) => Err(refused_at_prewrite(&e)),
            },
            Err(_) => {
                let _ = t.rollback().await;
                Err(true)
            }
        }
    };
    match bounded(options.op_limit(), run).await {
        Some(Ok(done)) => Op::ok(process, f, invoked, clock.now(), done),
        // Not committed, and no lock of it ever can be.
        Some(Err(true)) => Op::failed(process, f, invoked, clock.now()),
        _ => Op::unknown(process, f, invoked),
    }
}

/// Runs the workload against the cluster whose PD is at `pd`.
///
/// # Errors
///
/// A client that cannot connect to PD at the start.
pub async fn run(pd: Vec<String>, options: Options, clock: Clock) -> Result<Vec<TxnOp>, String> {
    let deadline = Instant::now() + options.duration;
    run_clients("list-append", &options, |process| {
        let (pd, options) = (pd.clone(), options.clone());
        async move {
            let client = txn_client(&pd, &options).await?;
            let mut rng = options.rng(process, 3);
            let mut history = vec![];
            let mut appended = 0u64;
            while Instant::now() < deadline {
                let generation = clock.now() / KEY_GENERATION.as_nanos() as u64;
                let mut keys: Vec<u64> = (0..options.keys)
                    .map(|k| generation * options.keys + k)
                    .collect();
                keys.shuffle(&mut rng);
                let f = keys[..rng.gen_range(1..=4.min(keys.len()))]
                    .iter()
                    .map(|&key| {
                        if rng.gen_bool(0.5) {
                            appended += 1;
                            Micro::Append {
                                key,
                                value: (process << 32) | appended,
                            }
                        } else {
                            Micro::Read { key, list: None }
                        }
                    })
                    .collect();
                let pessimistic = rng.gen_bool(0.5);
                let op = transaction(&client, &clock, &options, process, pessimistic, f).await;
                pause_after_failure(&op).await;
                history.push(op);
            }
            Ok(history)
        }
    })
    .await
}
