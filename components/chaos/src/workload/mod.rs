//! Workloads: clients that run operations against the cluster through the official client and
//! record each one's invocation, completion and outcome for the checkers.

pub mod bank;
pub mod list_append;
pub mod register;
pub mod set;
pub mod tso;

use std::future::Future;
use std::time::{Duration, Instant};

use tikv_client::{Config, RawClient, TransactionClient};

/// Nanoseconds since the run's start, on one monotonic clock shared by all clients (and the
/// nemesis, so that faults and operations line up).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// How a workload runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Concurrent clients, each running one operation at a time.
    pub clients: u64,
    /// Keys (registers, accounts, lists) the operations spread over.
    pub keys: u64,
    pub duration: Duration,
    pub seed: u64,
    /// The official client's timeout per request.
    pub timeout: Duration,
}

impl Options {
    /// Each client's random stream, from the run's seed.
    fn rng(&self, process: u64, salt: u64) -> rand::rngs::StdRng {
        use rand::SeedableRng;
        rand::rngs::StdRng::seed_from_u64(
            self.seed ^ process.wrapping_mul(0x9E37_79B9) ^ salt.wrapping_mul(0xC2B2_AE35),
        )
    }

    /// How long one whole operation may take before the workload gives up on it and records
    /// it as of unknown outcome: long enough for the client's own retries across a fault.
    fn op_limit(&self) -> Duration {
        self.timeout * 8
    }
}

/// After an operation that did not succeed, a short pause, so that a client facing a dead or
/// cut-off cluster does not spin, filling the history with failures.
async fn pause_after_failure<F, R>(op: &crate::history::Op<F, R>) {
    if !matches!(op.outcome, crate::history::Outcome::Ok(_)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a commit that erred certainly did not commit: the server refused its prewrite with
/// a write conflict, which comes before the primary key is committed. Anything else (a lost
/// connection, an undetermined outcome, a timeout) may have committed.
fn refused_at_prewrite(e: &tikv_client::Error) -> bool {
    use tikv_client::Error;
    match e {
        Error::KeyError(k) => k.conflict.is_some(),
        Error::ExtractedErrors(errors) | Error::MultipleKeyErrors(errors) => {
            !errors.is_empty() && errors.iter().all(refused_at_prewrite)
        }
        _ => false,
    }
}

/// `operation` bounded by `limit`; `None` if it ran out of time (and was abandoned).
async fn bounded<T>(limit: Duration, operation: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, operation).await.ok()
}

/// How long a client keeps trying to connect: the nemesis may have killed or cut off PD.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

/// Connects with `connect`, retrying for [`CONNECT_PATIENCE`].
async fn connect<C, Fut>(connect: impl Fn() -> Fut) -> Result<C, String>
where
    Fut: Future<Output = tikv_client::Result<C>>,
{
    let deadline = Instant::now() + CONNECT_PATIENCE;
    loop {
        match connect().await {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() > deadline => return Err(format!("connect to PD: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn txn_client(pd: &[String], options: &Options) -> Result<TransactionClient, String> {
    let config = Config::default().with_timeout(options.timeout);
    connect(|| TransactionClient::new_with_config(pd.to_vec(), config.clone())).await
}

async fn raw_client(pd: &[String], options: &Options) -> Result<RawClient, String> {
    let config = Config::default().with_timeout(options.timeout);
    connect(|| RawClient::new_with_config(pd.to_vec(), config.clone())).await
}

/// Runs `options.clients` clients at once, each on its own task: client `process` runs
/// `client(process)`, which connects and returns its history. Returns their histories
/// concatenated, or the first client's error (`what` names the workload).
async fn run_clients<T, Fut>(
    what: &str,
    options: &Options,
    client: impl Fn(u64) -> Fut,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    Fut: Future<Output = Result<Vec<T>, String>> + Send + 'static,
{
    let tasks: Vec<_> = (0..options.clients)
        .map(|process| tokio::spawn(client(process)))
        .collect();
    let mut history = vec![];
    for task in tasks {
        history.extend(task.await.map_err(|e| format!("{what} client: {e}"))??);
    }
    Ok(history)
}
