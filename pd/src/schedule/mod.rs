//! Scheduling: operators that PD hands to region leaders in region heartbeat responses.
//!
//! An [`Operator`] is one step for one region: add a peer, remove a peer, transfer the
//! leadership or split at given keys. Operators come from checkers and from the HTTP API. On
//! each heartbeat of a region without a running operator the checkers run in PD's order: the
//! keyspace checker (`keyspace_checker.rs`) splits regions at keyspace boundaries, then the
//! replica checker (`replica_checker.rs`) keeps max-replicas replicas on live stores. The
//! leader balancer (`leader_balancer.rs`) runs on its own, as PD's schedulers do, and moves
//! leaderships to the stores leading the fewest regions. While an
//! operator is running, every heartbeat of its region either shows the goal reached (the
//! operator finishes), or gets the step again, as PD re-dispatches on heartbeats, until the
//! operator times out.
//!
//! Leaders heartbeat once a minute by default (and at once after a change), so PD does not
//! wait for heartbeats: as PD's patrol, [`OperatorController::patrol`] runs the checkers over
//! the region tree a batch at a time, and the steps it makes, and those of operators added
//! through the HTTP API, are pushed to the leader's store on its heartbeat stream at once.

mod keyspace_checker;
mod leader_balancer;
mod operator;
mod replica_checker;

use std::collections::HashMap;
use std::time::Duration;

use kvproto::pdpb;
use parking_lot::Mutex;
use tracing::info;

use leader_balancer::{leader_tolerance, LeaderBalancer};
pub use operator::{Operator, OperatorStep, OperatorView};

use crate::cluster::{Cluster, RegionInfo};
use crate::config::ScheduleConfig;
use crate::error::{PdError, Result};
use crate::metrics;

/// How long an operator may run before it is dropped (and possibly created again).
pub const OPERATOR_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the patrol waits for a pushed step to show in the region's heartbeats before it
/// pushes the step again (one lost with a broken stream, or refused for a moment).
pub const RESEND_AFTER: Duration = Duration::from_secs(5);

/// Running operators, at most one per region, and the checkers that create them.
#[derive(Default)]
pub struct OperatorController {
    config: ScheduleConfig,
    ops: Mutex<Ops>,
}

#[derive(Default)]
struct Ops {
    running: HashMap<u64, Operator>,
    /// When each running operator's step last went to its region's leader.
    sent_ms: HashMap<u64, u64>,
}

impl Ops {
    fn finish(&mut self, region_id: u64, event: &str) {
        if let Some(op) = self.running.remove(&region_id) {
            info!(region_id, op = %op.describe(), "operator {event}");
            metrics::OPERATORS
                .with_label_values(&[op.kind(), event])
                .inc();
        }
        self.sent_ms.remove(&region_id);
    }
}

/// A step for a region's leader, and the store the leader is on.
pub type Dispatch = (u64, pdpb::RegionHeartbeatResponse);

/// Regions the leader balancer looks at per pass.
pub const BALANCE_BATCH: usize = 256;

/// Runs `op` from now on; returns its first step for the region's leader.
fn start(
    ops: &mut Ops,
    op: Operator,
    leader: Option<kvproto::metapb::Peer>,
    now: u64,
) -> pdpb::RegionHeartbeatResponse {
    info!(
        region_id = op.region_id,
        op = %op.describe(),
        reason = op.reason,
        "operator created"
    );
    metrics::OPERATORS
        .with_label_values(&[op.kind(), "create"])
        .inc();
    let resp = op.to_response(leader);
    ops.sent_ms.insert(op.region_id, now);
    ops.running.insert(op.region_id, op);
    resp
}

impl OperatorController {
    /// Returns a controller with no operators whose checkers follow `config`.
    pub fn new(config: ScheduleConfig) -> Self {
        OperatorController {
            config,
            ops: Mutex::default(),
        }
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// Handles a region's heartbeat: finishes or times out its operator, creates one if a
    /// checker wants one, and returns the step to send back, if any.
    pub fn on_region_heartbeat(
        &self,
        cluster: &Cluster,
        region: &RegionInfo,
    ) -> Option<pdpb::RegionHeartbeatResponse> {
        let now = cluster.now_ms();
        self.next_step(&mut self.ops.lock(), cluster, region, now, true)
    }

    /// One patrol batch: the steps due for `region_ids`, each with its leader's store: new
    /// operators' first steps, those of operators added through the HTTP API, and steps pushed
    /// more than [`RESEND_AFTER`] ago without effect. Each region is read from the tree under
    /// the operators' lock, as heartbeats leave it: a copy taken before could be older than a
    /// heartbeat that finished an operator, and a checker would act on the old peers again.
    pub fn patrol(&self, cluster: &Cluster, region_ids: &[u64]) -> Vec<Dispatch> {
        let now = cluster.now_ms();
        let mut ops = self.ops.lock();
        region_ids
            .iter()
            .filter_map(|&region_id| {
                let region = cluster.region_by_id(region_id).ok()?;
                let store_id = region.leader.as_ref()?.store_id;
                let step = self.next_step(&mut ops, cluster, &region, now, false)?;
                Some((store_id, step))
            })
            .collect()
    }

    /// The step to send `region`'s leader now, if any: finishes or times out the region's
    /// operator, or creates one if a checker wants one. A heartbeat gets a running operator's
    /// step back every time (as PD); the patrol only when it is due.
    fn next_step(
        &self,
        ops: &mut Ops,
        cluster: &Cluster,
        region: &RegionInfo,
        now: u64,
        heartbeat: bool,
    ) -> Option<pdpb::RegionHeartbeatResponse> {
        let region_id = region.id();
        if let Some(op) = ops.running.get(&region_id) {
            if op.is_finished(region) {
                ops.finish(region_id, "finish");
            } else if now.saturating_sub(op.created_ms) > OPERATOR_TIMEOUT.as_millis() as u64 {
                ops.finish(region_id, "timeout");
            } else {
                let resend = RESEND_AFTER.as_millis() as u64;
                let due = heartbeat
                    || ops
                        .sent_ms
                        .get(&region_id)
                        .is_none_or(|&sent| now.saturating_sub(sent) >= resend);
                if !due {
                    return None;
                }
                let resp = op.to_response(region.leader);
                ops.sent_ms.insert(region_id, now);
                return Some(resp);
            }
        }
        let op = keyspace_checker::check_keyspace_split(cluster, region, now).or_else(|| {
            let max_down = self.config.max_store_down_time.0;
            replica_checker::check_replicas(cluster, region, max_down, &ops.running, now)
        })?;
        Some(start(ops, op, region.leader, now))
    }

    /// One pass of the leader balancer (`leader_balancer.rs`): looks at the next
    /// [`BALANCE_BATCH`] regions from `cursor`, which it advances (wrapping around at the end
    /// of the tree), for leaderships to move. Returns the transfers to push to the leaders'
    /// stores, and whether the leaders are still unbalanced (another pass is due soon).
    pub fn balance_leaders(
        &self,
        cluster: &Cluster,
        cursor: &mut Vec<u8>,
    ) -> (Vec<Dispatch>, bool) {
        let limit = self.config.leader_schedule_limit as usize;
        if limit == 0 {
            return (Vec::new(), false);
        }
        let now = cluster.now_ms();
        let mut ops = self.ops.lock();
        let max_down = self.config.max_store_down_time.0;
        let tolerance = leader_tolerance(self.config.tolerant_size_ratio);
        let mut balancer =
            LeaderBalancer::new(cluster, &ops.running, limit, tolerance, max_down, now);
        if balancer.is_balanced() {
            return (Vec::new(), false);
        }
        if balancer.is_full() {
            return (Vec::new(), true);
        }
        let Ok((region_ids, next)) = cluster.region_ids_from(cursor, BALANCE_BATCH) else {
            return (Vec::new(), false);
        };
        *cursor = next;
        let mut dispatches = Vec::new();
        for region_id in region_ids {
            if ops.running.contains_key(&region_id) {
                continue;
            }
            let Ok(region) = cluster.region_by_id(region_id) else {
                continue;
            };
            let (Some(leader), Some(op)) = (region.leader, balancer.check(&region)) else {
                continue;
            };
            dispatches.push((leader.store_id, start(&mut ops, op, region.leader, now)));
            if balancer.is_full() {
                break;
            }
        }
        (dispatches, true)
    }

    /// Adds an operator from the HTTP API, replacing none: a region runs one at a time.
    ///
    /// # Errors
    ///
    /// [`PdError::Duplicated`] if the region already has an operator.
    pub fn add(&self, op: Operator) -> Result<()> {
        let running = &mut self.ops.lock().running;
        if let Some(existing) = running.get(&op.region_id) {
            return Err(PdError::Duplicated {
                what: format!(
                    "operator for region {} ({})",
                    op.region_id,
                    existing.describe()
                ),
            });
        }
        info!(region_id = op.region_id, op = %op.describe(), reason = op.reason, "operator added");
        metrics::OPERATORS
            .with_label_values(&[op.kind(), "create"])
            .inc();
        running.insert(op.region_id, op);
        Ok(())
    }

    pub fn list(&self) -> Vec<OperatorView> {
        let mut ops: Vec<OperatorView> = self
            .ops
            .lock()
            .running
            .values()
            .map(|op| OperatorView {
                region_id: op.region_id,
                kind: op.kind(),
                desc: op.describe(),
                reason: op.reason.clone(),
                created_ms: op.created_ms,
            })
            .collect();
        ops.sort_by_key(|op| op.region_id);
        ops
    }
}

/// What a region heartbeat stream's responses go into.
pub type StreamSender = tokio::sync::mpsc::UnboundedSender<
    std::result::Result<pdpb::RegionHeartbeatResponse, tonic::Status>,
>;

/// The open region heartbeat streams, by the store whose leaders heartbeat on them: PD pushes
/// a step to a region's leader on its store's latest stream.
#[derive(Default)]
pub struct HeartbeatStreams {
    senders: Mutex<HashMap<u64, StreamSender>>,
}

impl HeartbeatStreams {
    /// `sender`'s stream carries the heartbeats of `store_id`'s leaders.
    pub fn register(&self, store_id: u64, sender: &StreamSender) {
        let mut senders = self.senders.lock();
        if senders
            .get(&store_id)
            .is_none_or(|known| !known.same_channel(sender))
        {
            senders.insert(store_id, sender.clone());
        }
    }

    /// `sender`'s stream has ended.
    pub fn unregister(&self, sender: &StreamSender) {
        self.senders
            .lock()
            .retain(|_, known| !known.same_channel(sender));
    }

    /// Pushes each step, with the cluster's id in its header as in heartbeat answers, to its
    /// store's stream; a store without one gets the step on its leader's next heartbeat.
    pub fn push(&self, cluster_id: u64, dispatches: Vec<Dispatch>) {
        if dispatches.is_empty() {
            return;
        }
        let senders = self.senders.lock();
        for (store_id, mut resp) in dispatches {
            if let Some(sender) = senders.get(&store_id) {
                resp.header = Some(pdpb::ResponseHeader {
                    cluster_id,
                    error: None,
                });
                let _ = sender.send(Ok(resp));
            }
        }
    }
}

#[cfg(test)]
mod tests;
