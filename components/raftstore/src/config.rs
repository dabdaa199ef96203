//! Raftstore settings (`[raftstore]` in tikv-server's config file).

use std::time::Duration;

use config_types::{ReadableDuration, ReadableSize};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// One raft tick. Default `"1s"`, as TiKV's: elections after 10-20 s of silence, and each
    /// awake replica costs one tick a second (idle ones hibernate and cost none).
    pub raft_base_tick_interval: ReadableDuration,
    /// Ticks between leader heartbeats. Default 2.
    pub raft_heartbeat_ticks: usize,
    /// Ticks without a leader before a follower campaigns. Default 10.
    pub raft_election_timeout_ticks: usize,
    /// Largest batch of entries in one append message. Default `"1MiB"`.
    pub raft_max_size_per_msg: ReadableSize,
    /// Append messages in flight per follower. Default 256.
    pub raft_max_inflight_msgs: usize,
    /// Largest proposal; larger writes fail with RaftEntryTooLarge. Default `"8MiB"`.
    pub raft_entry_max_size: ReadableSize,
    /// How often the raft log is compacted. Default `"10s"`.
    pub raft_log_gc_tick_interval: ReadableDuration,
    /// Compact once this many applied entries are in the log. Default 50.
    pub raft_log_gc_threshold: u64,
    /// Past this many entries, the log's older half is compacted even if lagging followers
    /// still need it (they then need a snapshot). Default 10000.
    pub raft_log_gc_count_limit: u64,
    /// Once the log holds about this many bytes of entries, its older half is compacted even
    /// if a lagging follower still needs it, so a follower that is down cannot make the leader
    /// keep an unbounded log (it catches up from a snapshot instead). Default: 3/4 of
    /// `coprocessor.region-split-size`, as TiKV.
    pub raft_log_gc_size_limit: Option<ReadableSize>,
    /// How often leaders report their regions to PD, besides at once after a change of leader,
    /// peers or range. Default `"1m"`, as TiKV's (PD pushes its steps without waiting for it).
    pub pd_heartbeat_tick_interval: ReadableDuration,
    /// How often the store reports itself to PD. Default `"10s"`, as TiKV's.
    pub pd_store_heartbeat_tick_interval: ReadableDuration,
    /// A peer silent this long is reported to PD as down. Default `"30s"`.
    pub max_peer_down_duration: ReadableDuration,
    /// A leadership transfer is refused while the target lacks more than this many entries
    /// (raft refuses writes while a transfer runs, so a lagging target would stall them).
    /// Default 128, as TiKV.
    pub leader_transfer_max_log_lag: u64,
    /// How often leaders consider checking their region's size. Default `"10s"`.
    pub split_region_check_tick_interval: ReadableDuration,
    /// Bytes written to a region before its size is checked again. Default `"6MiB"`.
    pub region_split_check_diff: ReadableSize,
    /// How often the raft log engine reclaims the files of compacted entries. Default `"10s"`.
    pub raft_engine_purge_interval: ReadableDuration,
    /// Raft poller threads. Default 2.
    pub store_pool_size: usize,
    /// Apply poller threads. Default 2.
    pub apply_pool_size: usize,
    /// Threads writing raft logs for the raft pollers (TiKV's store writers): 0 makes each
    /// poller write and sync its round's batch itself; 1 hands it to a writer thread, which
    /// syncs whatever queued meanwhile at once, while the poller goes on. Default 0.
    pub store_io_pool_size: usize,
    /// Let idle regions stop ticking (TiKV's hibernate regions): a leader whose region had no
    /// activity for an election timeout, with every follower caught up, puts the replicas to
    /// sleep until a message, a request or a silent store wakes them. Default true.
    pub hibernate_regions: bool,
    /// How often each replica checks whether it has been without a leader too long (TiKV's
    /// peer stale state check). Default `"5m"`.
    pub peer_stale_state_check_interval: ReadableDuration,
    /// A replica without a leader this long is logged as leader-missing. Default `"10m"`.
    pub abnormal_leader_missing_duration: ReadableDuration,
    /// A replica without a leader this long asks PD whether it is still a member of its
    /// region, and destroys itself if PD's newer region no longer has it: the replica was
    /// removed while it could not hear of it. Default `"2h"`.
    pub max_leader_missing_duration: ReadableDuration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            raft_base_tick_interval: ReadableDuration::secs(1),
            raft_heartbeat_ticks: 2,
            raft_election_timeout_ticks: 10,
            raft_max_size_per_msg: ReadableSize::mib(1),
            raft_max_inflight_msgs: 256,
            raft_entry_max_size: ReadableSize::mib(8),
            raft_log_gc_tick_interval: ReadableDuration::secs(10),
            raft_log_gc_threshold: 50,
            raft_log_gc_count_limit: 10_000,
            raft_log_gc_size_limit: None,
            pd_heartbeat_tick_interval: ReadableDuration::secs(60),
            pd_store_heartbeat_tick_interval: ReadableDuration::secs(10),
            max_peer_down_duration: ReadableDuration::secs(30),
            leader_transfer_max_log_lag: 128,
            split_region_check_tick_interval: ReadableDuration::secs(10),
            region_split_check_diff: ReadableSize::mib(6),
            raft_engine_purge_interval: ReadableDuration::secs(10),
            store_pool_size: 2,
            apply_pool_size: 2,
            store_io_pool_size: 0,
            hibernate_regions: true,
            peer_stale_state_check_interval: ReadableDuration::minutes(5),
            abnormal_leader_missing_duration: ReadableDuration::minutes(10),
            max_leader_missing_duration: ReadableDuration::minutes(120),
        }
    }
}

impl Config {
    /// # Errors
    ///
    /// A message naming the bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.raft_heartbeat_ticks == 0 {
            return Err("raftstore.raft-heartbeat-ticks must be at least 1".into());
        }
        if self.raft_election_timeout_ticks <= self.raft_heartbeat_ticks {
            return Err(
                "raftstore.raft-election-timeout-ticks must be larger than raft-heartbeat-ticks"
                    .into(),
            );
        }
        if self.raft_base_tick_interval.0.is_zero() {
            return Err("raftstore.raft-base-tick-interval must not be 0".into());
        }
        if self.raft_engine_purge_interval.0.is_zero() {
            return Err("raftstore.raft-engine-purge-interval must not be 0".into());
        }
        if self.region_split_check_diff.0 == 0 {
            return Err("raftstore.region-split-check-diff must not be 0".into());
        }
        if self.store_pool_size == 0 || self.apply_pool_size == 0 {
            return Err("raftstore pool sizes must be at least 1".into());
        }
        if self.store_io_pool_size > 1 {
            return Err(format!(
                "raftstore.store-io-pool-size = {} is not supported: use 0 (pollers write their \
                 own raft logs) or 1 (one writer thread)",
                self.store_io_pool_size
            ));
        }
        if self.raft_log_gc_count_limit == 0
            || self
                .raft_log_gc_size_limit
                .is_some_and(|limit| limit.0 == 0)
        {
            return Err(
                "raftstore.raft-log-gc-count-limit and raft-log-gc-size-limit must not be 0".into(),
            );
        }
        if self.peer_stale_state_check_interval.0.is_zero() {
            return Err("raftstore.peer-stale-state-check-interval must not be 0".into());
        }
        if self.abnormal_leader_missing_duration.0 < self.peer_stale_state_check_interval.0 {
            return Err(
                "raftstore.abnormal-leader-missing-duration must not be less than \
                 peer-stale-state-check-interval"
                    .into(),
            );
        }
        if self.max_leader_missing_duration.0 < self.abnormal_leader_missing_duration.0 {
            return Err(
                "raftstore.max-leader-missing-duration must not be less than \
                 abnormal-leader-missing-duration"
                    .into(),
            );
        }
        Ok(())
    }

    /// Log bytes above which a leader compacts past lagging followers, for regions split at
    /// `region_split_size` bytes.
    pub fn raft_log_gc_size_limit(&self, region_split_size: u64) -> u64 {
        self.raft_log_gc_size_limit
            .map_or(region_split_size / 4 * 3, |limit| limit.0)
    }

    /// How often a leader heartbeats its followers.
    pub fn raft_heartbeat_interval(&self) -> Duration {
        self.raft_base_tick_interval.0 * self.raft_heartbeat_ticks as u32
    }

    pub fn election_timeout(&self) -> Duration {
        self.raft_base_tick_interval.0 * self.raft_election_timeout_ticks as u32
    }

    /// The longest a leader serves reads from its lease after a quorum last confirmed it: less
    /// than an election timeout, so no new leader can exist while the lease holds.
    pub fn max_leader_lease(&self) -> Duration {
        self.election_timeout() * 9 / 10
    }
}
