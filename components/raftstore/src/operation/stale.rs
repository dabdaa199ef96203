//! Finding out that this replica was removed from its region while it could not hear of it
//! (TiKV's peer stale state check).
//!
//! A replica removed by a conf change it never received (its store was down or cut off) goes
//! on believing in its old configuration. Usually it learns the truth from the others: a store
//! whose replica of the region is newer, or whose replica was destroyed, answers its messages
//! with a tombstone message (the peer's `is_from_removed_peer` and the store FSM's answer for
//! a destroyed region). When no store it knows answers (the whole region moved away and its old
//! stores are gone), only PD can tell: a replica that has heard from no leader for
//! `max-leader-missing-duration` asks PD for its region, and the PD worker sends it a
//! tombstone message if PD's region is at least as new as the replica's and no longer holds it
//! ([`crate::pd::peer_validity`]).
//!
//! A sleeping leader heartbeats its sleeping followers at each check, without waking them, so a
//! sleeping follower whose leader is still there hears from it; one whose leader removed it
//! while it missed the wake-up (its messages lost, its store not silent) goes on counting and
//! asks PD in time. A follower without a leader for `abnormal-leader-missing-duration` wakes,
//! so that it ticks and its region can elect a new leader.

use std::time::{Duration, Instant};

use engine_traits::KvEngine;
use raft_log_engine::RaftLogEngine;
use tracing::warn;

use crate::fsm::peer::PeerFsmDelegate;
use crate::pd::PdTask;

/// How long a replica has been without a leader, as seen at its stale-state ticks.
#[derive(Debug, Default)]
pub(crate) struct LeaderMissing {
    /// The first tick since the replica last heard from a leader.
    since: Option<Instant>,
}

/// What a stale-state tick concludes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StaleState {
    Valid,
    /// Without a leader for `abnormal-leader-missing-duration`.
    LeaderMissing,
    /// Without a leader for `max-leader-missing-duration`: ask PD.
    ToValidate,
}

impl LeaderMissing {
    /// A message from the leader, or this replica leads.
    pub(crate) fn heard_from_leader(&mut self) {
        self.since = None;
    }

    /// A stale-state tick at `now`. Asks for validation once per `max` of silence, so a
    /// replica that PD keeps confirming does not ask at every tick.
    pub(crate) fn on_tick(
        &mut self,
        now: Instant,
        abnormal: Duration,
        max: Duration,
    ) -> StaleState {
        let Some(since) = self.since else {
            self.since = Some(now);
            return StaleState::Valid;
        };
        let missing = now.saturating_duration_since(since);
        if missing >= max {
            self.since = Some(now);
            StaleState::ToValidate
        } else if missing >= abnormal {
            StaleState::LeaderMissing
        } else {
            StaleState::Valid
        }
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> PeerFsmDelegate<'_, EK, ER> {
    pub(crate) fn on_check_stale_state_tick(&mut self) {
        let peer = &mut self.fsm.peer;
        if peer.pending_remove {
            return;
        }
        if peer.is_leader() {
            if peer.hibernate.is_asleep() {
                // Its sleeping followers hear nothing else from it: a heartbeat (which wakes
                // no one) tells them their leader is still there, as TiKV's idle leaders ping.
                peer.raft_group.ping();
            }
            peer.leader_missing.heard_from_leader();
            return;
        }
        let cfg = &self.ctx.cfg;
        let state = peer.leader_missing.on_tick(
            Instant::now(),
            cfg.abnormal_leader_missing_duration.0,
            cfg.max_leader_missing_duration.0,
        );
        match state {
            StaleState::Valid => {}
            StaleState::LeaderMissing => {
                // A sleeping follower does not tick, so it would never campaign: if its leader
                // is gone while every store stays in touch (so the store does not wake it),
                // its region would stay without one.
                peer.wake_up(self.ctx);
                if peer.is_initialized() {
                    warn!(
                        region_id = peer.region_id.get(),
                        peer_id = peer.peer.id,
                        "no leader heard of for longer than abnormal-leader-missing-duration"
                    );
                }
            }
            StaleState::ToValidate => {
                warn!(
                    region_id = peer.region_id.get(),
                    peer_id = peer.peer.id,
                    "no leader heard of for longer than max-leader-missing-duration; asking PD \
                     whether this replica is still a member of its region"
                );
                self.ctx.pd_scheduler.schedule(PdTask::ValidatePeer {
                    region: (*peer.region).clone(),
                    peer: peer.peer,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABNORMAL: Duration = Duration::from_secs(600);
    const MAX: Duration = Duration::from_secs(7200);
    const TICK: Duration = Duration::from_secs(300);

    #[test]
    fn a_replica_silent_for_the_max_duration_is_validated_once_per_max_duration() {
        let start = Instant::now();
        let mut missing = LeaderMissing::default();
        let states: Vec<StaleState> = (0..=48)
            .map(|n| missing.on_tick(start + TICK * n, ABNORMAL, MAX))
            .collect();
        // The first tick starts the count; 10 minutes later it is abnormal; 2 hours later PD
        // is asked, and the count starts again.
        assert_eq!(states[0], StaleState::Valid);
        assert_eq!(states[1], StaleState::Valid);
        assert_eq!(states[2], StaleState::LeaderMissing);
        assert_eq!(states[23], StaleState::LeaderMissing);
        assert_eq!(states[24], StaleState::ToValidate);
        assert_eq!(states[25], StaleState::Valid);
        assert_eq!(states[26], StaleState::LeaderMissing);
        assert_eq!(states[48], StaleState::ToValidate);
        let asked = states
            .iter()
            .filter(|s| **s == StaleState::ToValidate)
            .count();
        assert_eq!(asked, 2);
    }

    #[test]
    fn hearing_from_a_leader_between_ticks_keeps_the_replica_valid() {
        let start = Instant::now();
        let mut missing = LeaderMissing::default();
        for n in 0..100 {
            assert_eq!(
                missing.on_tick(start + TICK * n, ABNORMAL, MAX),
                StaleState::Valid
            );
            missing.heard_from_leader();
        }
    }
}
