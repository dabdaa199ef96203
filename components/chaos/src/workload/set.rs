//! The *set* workload: every client inserts unique elements, some as raw puts and some as
//! transactional inserts (each element its own key); once the faults are over, one final read
//! of each set must show every acknowledged insert.
//!
//! A raw put or a commit that errs may have taken effect (the client cannot tell a lost answer
//! from a refused request), so it is recorded as of unknown outcome; so is an operation the
//! workload gave up on. An acknowledged transactional insert is read back at once (the
//! client can acknowledge a commit that never reached a store; see [`crate::checker::set`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::Rng;
use tikv_client::{CheckLevel, Config, Key, RawClient, TransactionClient, TransactionOptions};

use super::{bounded, pause_after_failure, raw_client, run_clients, txn_client, Clock, Options};
use crate::checker::set::{AddOp, ReadBack};
use crate::history::Op;

const RAW_PREFIX: &str = "chaos-set-raw-";
const TXN_PREFIX: &str = "chaos-set-txn-";

fn key(prefix: &str, element: u64) -> Vec<u8> {
    format!("{prefix}{element:020}").into_bytes()
}

/// The inserts, raw and transactional.
#[derive(Debug, Default)]
pub struct SetHistory {
    pub raw: Vec<AddOp>,
    pub txn: Vec<AddOp>,
}

/// Runs the inserts against the cluster whose PD is at `pd`.
///
/// # Errors
///
/// A client that cannot connect to PD at the start.
pub async fn run(pd: Vec<String>, options: Options, clock: Clock) -> Result<SetHistory, String> {
    let deadline = Instant::now() + options.duration;
    let inserts = run_clients("set", &options, |process| {
        let (pd, options) = (pd.clone(), options.clone());
        async move {
            let raw = raw_client(&pd, &options).await?;
            let txn = txn_client(&pd, &options).await?;
            let mut rng = options.rng(process, 1);
            let mut history = vec![];
            for n in 1.. {
                if Instant::now() >= deadline {
                    break;
                }
                let element = (process << 32) | n;
                let transactional = rng.gen_bool(0.5);
                let invoked = clock.now();
                let done = bounded(options.op_limit(), async {
                    if transactional {
                        let mut t = txn
                            .begin_with_options(
                                TransactionOptions::new_optimistic().drop_check(CheckLevel::None),
                            )
                            .await?;
                        t.insert(key(TXN_PREFIX, element), b"1".to_vec()).await?;
                        t.commit().await.map(drop)
                    } else {
                        raw.put(key(RAW_PREFIX, element), b"1".to_vec()).await
                    }
                })
                .await;
                let op = match done {
                    Some(Ok(())) => {
                        let completed = clock.now();
                        let read_back = if transactional {
                            read_back(&txn, key(TXN_PREFIX, element), options.op_limit()).await
                        } else {
                            ReadBack::Unchecked
                        };
                        Op::ok(process, element, invoked, completed, read_back)
                    }
                    _ => Op::unknown(process, element, invoked),
                };
                pause_after_failure(&op).await;
                history.push((transactional, op));
            }
            Ok(history)
        }
    })
    .await?;
    let mut history = SetHistory::default();
    for (transactional, op) in inserts {
        if transactional {
            history.txn.push(op);
        } else {
            history.raw.push(op);
        }
    }
    Ok(history)
}

/// Reads an acknowledged transactional insert back at a fresh timestamp, which must see it if
/// it committed (see [`crate::checker::set`] for why the client's word is not enough).
async fn read_back(txn: &TransactionClient, key: Vec<u8>, limit: Duration) -> ReadBack {
    let read = async {
        let ts = txn.current_timestamp().await?;
        txn.snapshot(ts, TransactionOptions::new_optimistic())
            .get(key)
            .await
    };
    match bounded(limit, read).await {
        Some(Ok(Some(_))) => ReadBack::Seen,
        Some(Ok(None)) => ReadBack::NotSeen,
        _ => ReadBack::Unchecked,
    }
}

fn element(prefix: &str, key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key)
        .ok()?
        .strip_prefix(prefix)?
        .parse()
        .ok()
}

/// What the final reads found.
#[derive(Debug)]
pub struct FinalReads {
    pub raw: BTreeSet<u64>,
    pub txn: BTreeSet<u64>,
}

/// The final reads, raw and transactional (at a fresh timestamp), each paged through its
/// whole prefix; retried until both succeed or `patience` runs out.
///
/// # Errors
///
/// The last error once `patience` is spent.
pub async fn final_reads(
    pd: Vec<String>,
    options: Options,
    patience: Duration,
) -> Result<FinalReads, String> {
    let deadline = Instant::now() + patience;
    loop {
        let attempt = async {
            let raw = RawClient::new_with_config(
                pd.clone(),
                Config::default().with_timeout(options.timeout),
            )
            .await?;
            let mut raw_set = BTreeSet::new();
            let mut from = key(RAW_PREFIX, 0);
            loop {
                let page = raw
                    .scan(from.clone()..key(RAW_PREFIX, u64::MAX), 1000)
                    .await?;
                // A page must go on where the last ended, in order: otherwise paging could
                // skip or repeat elements, and the attempt is void.
                let ordered = page.windows(2).all(|w| w[0].key() < w[1].key())
                    && page
                        .first()
                        .is_none_or(|kv| Vec::from(kv.key().clone()) >= from);
                if !ordered {
                    return Err(tikv_client::Error::StringError(
                        "a raw scan page out of order".into(),
                    ));
                }
                let Some(last) = page.last() else { break };
                from = Vec::from(last.key().clone());
                from.push(0);
                raw_set.extend(
                    page.iter()
                        .filter_map(|kv| element(RAW_PREFIX, kv.key().into())),
                );
            }
            let txn = txn_client(&pd, &options)
                .await
                .map_err(tikv_client::Error::StringError)?;
            let mut snapshot = txn.snapshot(
                txn.current_timestamp().await?,
                TransactionOptions::new_optimistic(),
            );
            let mut txn_set = BTreeSet::new();
            let mut from: Key = key(TXN_PREFIX, 0).into();
            loop {
                let page: Vec<_> = snapshot
                    .scan(from.clone()..key(TXN_PREFIX, u64::MAX).into(), 1000)
                    .await?
                    .collect();
                let Some(last) = page.last() else { break };
                let mut next = Vec::from(last.key().clone());
                next.push(0);
                from = next.into();
                txn_set.extend(
                    page.iter()
                        .filter_map(|kv| element(TXN_PREFIX, kv.key().into())),
                );
            }
            Ok::<_, tikv_client::Error>(FinalReads {
                raw: raw_set,
                txn: txn_set,
            })
        };
        match bounded(options.op_limit() * 4, attempt).await {
            Some(Ok(sets)) => return Ok(sets),
            failure if Instant::now() > deadline => {
                return Err(format!("the set's final read kept failing: {failure:?}"));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
