//! The *bank* workload: accounts that start with 100 each; clients transfer random amounts
//! between two accounts in optimistic, pessimistic and async-commit transactions (a transfer
//! that would overdraw does nothing), and read every balance at one snapshot. The checker needs
//! only the reads: each must show the constant total and no negative balance. The transfers
//! are recorded too, with their timestamps and the balances they read, as evidence of a failed
//! run: a broken total then shows which transfers touched the accounts around it.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rand::Rng;
use tikv_client::transaction::ResolveLocksOptions;
use tikv_client::{
    CheckLevel, Timestamp, TimestampExt, Transaction, TransactionClient, TransactionOptions,
};

use super::{
    bounded, pause_after_failure, refused_at_prewrite, run_clients, txn_client, Clock, Options,
};
use crate::checker::bank::ReadOp;
use crate::history::Op;

/// What every account starts with.
pub const INITIAL_BALANCE: i64 = 100;

/// The key of account `i`.
pub fn account(i: u64) -> Vec<u8> {
    format!("chaos-bank-{i:04}").into_bytes()
}

fn balance(value: Option<Vec<u8>>) -> i64 {
    // A missing or garbled balance reads as a sum no transfer can make, which the checker
    // then reports.
    value
        .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(i64::MIN / 64)
}

/// What a transfer did, as far as it got. Its outcome is the operation's: ok for committed,
/// failed for aborted, unknown otherwise.
#[derive(Clone, Debug, Default)]
pub struct TransferTrace {
    pub mode: Option<Mode>,
    pub from: u64,
    pub to: u64,
    pub amount: i64,
    /// The transaction's start ts, once it began.
    pub start_ts: Option<u64>,
    /// The balances of `from` and `to` it read, if it read them.
    pub read: Option<(i64, i64)>,
    /// The balances a pessimistic transfer read again after writing (see [`transfer`]).
    pub reread: Option<(i64, i64)>,
    /// Its commit ts, if the client returned one.
    pub commit_ts: Option<u64>,
}

/// A transfer, for the evidence of a failed run.
pub type TransferOp = Op<TransferTrace, ()>;

/// The reads, and how the transfers ended.
#[derive(Debug, Default)]
pub struct BankHistory {
    pub reads: Vec<ReadOp>,
    pub transfers: Vec<TransferOp>,
    pub transfers_committed: usize,
    pub transfers_unknown: usize,
    /// Transfers that rolled back for certain (a conflict or an error before commit) or
    /// found too little money.
    pub transfers_aborted: usize,
    /// The constant total every read must show.
    pub total: i64,
    /// Locks of async-commit transfers whose commit was interrupted, resolved by the sweeper.
    pub orphaned_locks_resolved: usize,
    /// Async-commit transfers whose commit panicked inside the client (see [`commit`]); they
    /// are counted as unknown too.
    pub client_panics: usize,
    /// Pessimistic transfers that found a balance changed after their own write had locked
    /// the account again (see [`transfer`]); they are counted as aborted too.
    pub relock_mismatches: usize,
}

/// How a transfer runs.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Optimistic,
    Pessimistic,
    AsyncCommit,
}

impl Mode {
    /// The client's options for a transaction of this mode.
    pub fn options(self) -> TransactionOptions {
        let options = match self {
            Mode::Optimistic => TransactionOptions::new_optimistic(),
            Mode::Pessimistic => TransactionOptions::new_pessimistic(),
            Mode::AsyncCommit => TransactionOptions::new_optimistic().use_async_commit(),
        };
        options.drop_check(CheckLevel::None)
    }
}

/// Writes the initial balances, unless an earlier attempt already did.
async fn open_accounts(client: &TransactionClient, accounts: u64) -> tikv_client::Result<()> {
    let mut t = client
        .begin_with_options(TransactionOptions::new_pessimistic().drop_check(CheckLevel::None))
        .await?;
    if t.get_for_update(account(0)).await?.is_some() {
        return t.rollback().await;
    }
    for i in 0..accounts {
        t.put(account(i), INITIAL_BALANCE.to_string()).await?;
    }
    t.commit().await.map(drop)
}

/// How a transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    Committed,
    Aborted,
    Unknown,
    /// Unknown, because the client panicked while committing.
    ClientPanicked,
    /// Aborted, because a balance changed between the read and the write's lock.
    RelockMismatch,
}

/// How one client's transfers ended.
#[derive(Debug, Default)]
struct Transfers {
    committed: usize,
    /// Including the client panics.
    unknown: usize,
    aborted: usize,
    client_panics: usize,
    /// Including the relock mismatches.
    relock_mismatches: usize,
}

impl Transfers {
    fn record(&mut self, transfer: Transfer) {
        match transfer {
            Transfer::Committed => self.committed += 1,
            Transfer::Aborted => self.aborted += 1,
            Transfer::Unknown => self.unknown += 1,
            Transfer::ClientPanicked => {
                self.unknown += 1;
                self.client_panics += 1;
            }
            Transfer::RelockMismatch => {
                self.aborted += 1;
                self.relock_mismatches += 1;
            }
        }
    }
}

/// Commits `t`, which has written its keys; the commit ts the client returned goes to
/// `commit_ts`.
///
/// The official client (0.4) panics while committing an async-commit transaction whose
/// prewrite could not look up any of its regions in PD, as when PD is down: it groups keys by
/// region with `stream::iter(Err(e))`, which yields nothing for the error, so the prewrite
/// sends no request and succeeds with no response, and the commit then unwraps the missing
/// `min_commit_ts`. The panic is the client's, not a finding about the cluster, so it ends the
/// transfer as unknown (nothing was prewritten, in fact). The same flaw can drop one region's
/// keys from a prewrite that spans several regions; the reads would show that as a broken
/// total, and the report's unknown transfers say how often PD errors cut commits off.
pub async fn commit(t: &mut Transaction, commit_ts: &mut Option<u64>) -> Transfer {
    match AssertUnwindSafe(t.commit()).catch_unwind().await {
        Ok(Ok(ts)) => {
            *commit_ts = ts.map(|ts| ts.version());
            Transfer::Committed
        }
        Ok(Err(e)) if refused_at_prewrite(&e) => Transfer::Aborted,
        Ok(Err(_)) => Transfer::Unknown,
        Err(_) => Transfer::ClientPanicked,
    }
}

/// Moves `trace.amount` from account `trace.from` to account `trace.to` in one transaction of
/// `mode`, unless `from` holds less; records in `trace` how far it got.
pub async fn transfer(
    client: &TransactionClient,
    mode: Mode,
    trace: &mut TransferTrace,
) -> Transfer {
    trace.mode = Some(mode);
    let Ok(mut t) = client.begin_with_options(mode.options()).await else {
        return Transfer::Aborted;
    };
    trace.start_ts = Some(t.start_timestamp().version());
    match read_balances(&mut t, mode, trace.from, trace.to).await {
        Ok(balances) => trace.read = Some(balances),
        Err(_) => {
            let _ = t.rollback().await;
            return Transfer::Aborted;
        }
    }
    write_and_commit(&mut t, mode, trace).await
}

/// The balances of accounts `from` and `to`, read in `t` (and locked, if it is pessimistic).
pub async fn read_balances(
    t: &mut Transaction,
    mode: Mode,
    from: u64,
    to: u64,
) -> tikv_client::Result<(i64, i64)> {
    let (a, b) = match mode {
        Mode::Pessimistic => (
            t.get_for_update(account(from)).await?,
            t.get_for_update(account(to)).await?,
        ),
        _ => (t.get(account(from)).await?, t.get(account(to)).await?),
    };
    Ok((balance(a), balance(b)))
}

/// Ends the transfer `trace` in `t` of `mode`, which has read the balances `trace.read`: rolls
/// back if `from` holds less than the amount, else writes both balances and commits.
///
/// A pessimistic transfer reads both balances again after writing them, and aborts if either
/// changed. The official client (0.4) locks a key again on every `put` of a pessimistic
/// transaction, with a fresh `for_update_ts` and without reading it, even when
/// `get_for_update` locked it already. If the first lock was lost in between (a resolver
/// judged it expired and removed it, as when PD's clock steps forward, and TiKV removes an
/// expired pessimistic primary lock without a rollback record), another transaction may have
/// committed the account meanwhile, and the second lock is granted over that commit: the
/// transfer would write a balance computed from a value that is no longer the latest, and
/// lose an update. TiDB does not lock a key its transaction holds; this workload cannot stop
/// the client from doing so, so it checks. The second `get_for_update` asks the server (with
/// `need_value`) while the locks are held again, and nothing after it locks anything, so a
/// lock lost after it makes the prewrite fail (PessimisticLockNotFound) instead of committing
/// over another transaction.
pub async fn write_and_commit(
    t: &mut Transaction,
    mode: Mode,
    trace: &mut TransferTrace,
) -> Transfer {
    let (from, to, amount) = (trace.from, trace.to, trace.amount);
    let Some((a, b)) = trace.read else {
        let _ = t.rollback().await;
        return Transfer::Aborted;
    };
    if a < amount {
        let _ = t.rollback().await;
        return Transfer::Aborted;
    }
    let written = async {
        t.put(account(from), (a - amount).to_string()).await?;
        t.put(account(to), (b + amount).to_string()).await
    };
    if written.await.is_err() {
        let _ = t.rollback().await;
        return Transfer::Aborted;
    }
    if let Mode::Pessimistic = mode {
        let Ok(again) = read_balances(t, mode, from, to).await else {
            let _ = t.rollback().await;
            return Transfer::Aborted;
        };
        trace.reread = Some(again);
        if again != (a, b) {
            let _ = t.rollback().await;
            return Transfer::RelockMismatch;
        }
    }
    commit(t, &mut trace.commit_ts).await
}

/// Every balance, read at one fresh snapshot, whose ts goes to `read_ts`.
async fn read_all(
    client: &TransactionClient,
    accounts: u64,
    read_ts: &mut Option<u64>,
) -> tikv_client::Result<Vec<i64>> {
    let ts = client.current_timestamp().await?;
    *read_ts = Some(ts.version());
    let mut snapshot = client.snapshot(ts, TransactionOptions::new_optimistic());
    let mut balances = vec![];
    for i in 0..accounts {
        balances.push(balance(snapshot.get(account(i)).await?));
    }
    Ok(balances)
}

/// How old an async-commit lock must be before the sweeper resolves it: older than any
/// transfer still running (the workload gives up on one after its operation limit).
const ORPHAN_AGE: Duration = Duration::from_secs(30);

/// How often the sweeper looks for orphaned locks.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Resolves, until `deadline`, the locks of async-commit transfers whose commit was cut off;
/// returns how many it resolved.
///
/// The official client commits an async-commit transaction's keys in the background once the
/// prewrite succeeds, and only logs it if that fails. Nor can its read path resolve such a lock:
/// CheckTxnStatus leaves async-commit locks alone (only CheckSecondaryLocks decides their fate),
/// and the client checks secondaries only in `cleanup_locks`, TiDB's GC worker's sweep. So this
/// sweeps as that worker does, every few seconds, for locks older than any running transfer;
/// without it, one interrupted commit blocks two accounts for the rest of the run.
async fn sweep_orphaned_locks(
    client: &TransactionClient,
    accounts: u64,
    deadline: Instant,
) -> usize {
    let mut resolved = 0;
    while Instant::now() + SWEEP_INTERVAL < deadline {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let sweep = async {
            let now = client.current_timestamp().await?;
            let physical = txn_types::TimeStamp::new(now.version()).physical();
            let oldest = physical.saturating_sub(ORPHAN_AGE.as_millis() as u64);
            let safepoint =
                Timestamp::from_version(txn_types::TimeStamp::compose(oldest, 0).into_inner());
            let options = ResolveLocksOptions {
                async_commit_only: true,
                batch_size: 1024,
            };
            client
                .cleanup_locks(account(0)..=account(accounts - 1), &safepoint, options)
                .await
        };
        if let Some(Ok(result)) = bounded(SWEEP_INTERVAL * 4, sweep).await {
            resolved += result.resolved_locks;
        }
    }
    resolved
}

/// Opens the accounts, then runs transfers and reads against the cluster whose PD is at `pd`.
///
/// # Errors
///
/// A client that cannot connect, or accounts that cannot be opened within the run's time.
pub async fn run(pd: Vec<String>, options: Options, clock: Clock) -> Result<BankHistory, String> {
    let deadline = Instant::now() + options.duration;
    let setup = txn_client(&pd, &options).await?;
    loop {
        match bounded(options.op_limit(), open_accounts(&setup, options.keys)).await {
            Some(Ok(())) => break,
            failure if Instant::now() > deadline => {
                return Err(format!("could not open the bank's accounts: {failure:?}"));
            }
            _ => {}
        }
    }
    let sweeper = tokio::spawn({
        let accounts = options.keys;
        async move { sweep_orphaned_locks(&setup, accounts, deadline).await }
    });
    let clients = run_clients("bank", &options, |process| {
        let (pd, options) = (pd.clone(), options.clone());
        async move {
            let client = txn_client(&pd, &options).await?;
            let mut rng = options.rng(process, 2);
            let mut history = vec![];
            let mut transfer_ops = vec![];
            let mut transfers = Transfers::default();
            while Instant::now() < deadline {
                if rng.gen_bool(0.5) {
                    let invoked = clock.now();
                    let mut read_ts = None;
                    let read = bounded(
                        options.op_limit(),
                        read_all(&client, options.keys, &mut read_ts),
                    )
                    .await;
                    let op = match read {
                        Some(Ok(balances)) => {
                            Op::ok(process, read_ts, invoked, clock.now(), balances)
                        }
                        _ => Op::failed(process, read_ts, invoked, clock.now()),
                    };
                    pause_after_failure(&op).await;
                    history.push(op);
                } else {
                    let from = rng.gen_range(0..options.keys);
                    let to = (from + rng.gen_range(1..options.keys)) % options.keys;
                    let mode = [Mode::Optimistic, Mode::Pessimistic, Mode::AsyncCommit]
                        [rng.gen_range(0..3)];
                    let amount = rng.gen_range(1..=INITIAL_BALANCE / 2);
                    let mut trace = TransferTrace {
                        from,
                        to,
                        amount,
                        ..TransferTrace::default()
                    };
                    let invoked = clock.now();
                    let done =
                        bounded(options.op_limit(), transfer(&client, mode, &mut trace)).await;
                    let end = done.unwrap_or(Transfer::Unknown);
                    transfer_ops.push(match end {
                        Transfer::Committed => Op::ok(process, trace, invoked, clock.now(), ()),
                        Transfer::Aborted | Transfer::RelockMismatch => {
                            Op::failed(process, trace, invoked, clock.now())
                        }
                        Transfer::Unknown | Transfer::ClientPanicked => {
                            Op::unknown(process, trace, invoked)
                        }
                    });
                    transfers.record(end);
                    if !matches!(done, Some(Transfer::Committed)) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            Ok(vec![(history, transfer_ops, transfers)])
        }
    })
    .await?;
    let mut bank = BankHistory {
        total: INITIAL_BALANCE * options.keys as i64,
        orphaned_locks_resolved: sweeper.await.map_err(|e| format!("bank sweeper: {e}"))?,
        ..BankHistory::default()
    };
    for (reads, transfer_ops, transfers) in clients {
        bank.reads.extend(reads);
        bank.transfers.extend(transfer_ops);
        bank.transfers_committed += transfers.committed;
        bank.transfers_unknown += transfers.unknown;
        bank.transfers_aborted += transfers.aborted;
        bank.client_panics += transfers.client_panics;
        bank.relock_mismatches += transfers.relock_mismatches;
    }
    Ok(bank)
}
