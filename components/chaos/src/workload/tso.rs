//! The *tso* workload: clients ask PD for timestamps, one at a time each, while PD is killed,
//! restarted, paused and cut off. A request that fails says nothing.

use std::time::Instant;

use tikv_client::TimestampExt;

use super::{bounded, pause_after_failure, run_clients, txn_client, Clock, Options};
use crate::checker::tso::TsoOp;
use crate::history::Op;

/// Runs the workload against the PD at `pd`.
///
/// # Errors
///
/// A client that cannot connect to PD at the start.
pub async fn run(pd: Vec<String>, options: Options, clock: Clock) -> Result<Vec<TsoOp>, String> {
    let deadline = Instant::now() + options.duration;
    run_clients("tso", &options, |process| {
        let (pd, options) = (pd.clone(), options.clone());
        async move {
            let client = txn_client(&pd, &options).await?;
            let mut history = vec![];
            while Instant::now() < deadline {
                let invoked = clock.now();
                let ts = bounded(options.op_limit(), client.current_timestamp()).await;
                let op = match ts {
                    Some(Ok(ts)) => Op::ok(process, (), invoked, clock.now(), ts.version()),
                    _ => Op::failed(process, (), invoked, clock.now()),
                };
                pause_after_failure(&op).await;
                // A few hundred a second is plenty, and leaves the CPU to the cluster.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                history.push(op);
            }
            Ok(history)
        }
    })
    .await
}
