//! Scheduling: operators that PD hands to region leaders in region heartbeat responses.
//!
//! An [`Operator`] is one step for one region: add a peer, remove a peer, transfer the
//! leadership or split at given keys. Operators come from checkers and from the HTTP API. On
//! each heartbeat of a region without a running operator the checkers run in PD's order: the
//! keyspace checker (`keyspace_checker.rs`) splits regions at keyspace boundaries, then the
//! replica checker (`replica_checker.rs`) keeps max-replicas replicas on live stores. While an
//! operator is running, every heartbeat of its region either shows the goal reached (the
//! operator finishes), or gets the step again, as PD re-dispatches on heartbeats, until the
//! operator times out.

mod keyspace_checker;
mod operator;
mod replica_checker;

use std::collections::HashMap;
use std::time::Duration;

use kvproto::pdpb;
use parking_lot::Mutex;
use tracing::info;

pub use operator::{Operator, OperatorStep, OperatorView};

use crate::cluster::{Cluster, RegionInfo};
use crate::config::ScheduleConfig;
use crate::error::{PdError, Result};
use crate::metrics;

/// How long an operator may run before it is dropped (and possibly created again).
pub const OPERATOR_TIMEOUT: Duration = Duration::from_secs(60);

/// Running operators, at most one per region, and the checkers that create them.
#[derive(Default)]
pub struct OperatorController {
    config: ScheduleConfig,
    running: Mutex<HashMap<u64, Operator>>,
}

impl OperatorController {
    /// Returns a controller with no operators whose checkers follow `config`.
    pub fn new(config: ScheduleConfig) -> Self {
        OperatorController {
            config,
            running: Mutex::new(HashMap::new()),
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
        let mut running = self.running.lock();
        if let Some(op) = running.get(&region.id()) {
            if op.is_finished(region) {
                info!(region_id = op.region_id, op = %op.describe(), "operator finished");
                metrics::OPERATORS
                    .with_label_values(&[op.kind(), "finish"])
                    .inc();
                running.remove(&region.id());
            } else if now.saturating_sub(op.created_ms) > OPERATOR_TIMEOUT.as_millis() as u64 {
                info!(region_id = op.region_id, op = %op.describe(), "operator timed out");
                metrics::OPERATORS
                    .with_label_values(&[op.kind(), "timeout"])
                    .inc();
                running.remove(&region.id());
            } else {
                return Some(op.to_response(region.leader));
            }
        }
        let op = keyspace_checker::check_keyspace_split(cluster, region, now).or_else(|| {
            let max_down = self.config.max_store_down_time.0;
            replica_checker::check_replicas(cluster, region, max_down, &running, now)
        })?;
        info!(
            region_id = op.region_id,
            op = %op.describe(),
            reason = op.reason,
            "operator created"
        );
        metrics::OPERATORS
            .with_label_values(&[op.kind(), "create"])
            .inc();
        let resp = op.to_response(region.leader);
        running.insert(region.id(), op);
        Some(resp)
    }

    /// Adds an operator from the HTTP API, replacing none: a region runs one at a time.
    ///
    /// # Errors
    ///
    /// [`PdError::Duplicated`] if the region already has an operator.
    pub fn add(&self, op: Operator) -> Result<()> {
        let mut running = self.running.lock();
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
            .running
            .lock()
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

#[cfg(test)]
mod tests;
