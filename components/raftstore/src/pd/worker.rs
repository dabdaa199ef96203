//! The PD worker (seed: the PD worker): region heartbeats over one stream whose responses carry
//! operators, store heartbeats, split id requests and split reports, and the validation of
//! replicas that have been without a leader too long. Runs as tokio tasks; the raft threads
//! only queue [`PdTask`]s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use kvproto::{metapb, pdpb};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use types::{RegionId, StoreId};

use super::PdApi;
use crate::msg::PeerMsg;
use crate::router::RouterHandle;

/// What a leader reports about its region.
pub struct RegionHeartbeat {
    pub region: metapb::Region,
    pub leader: metapb::Peer,
    pub down_peers: Vec<pdpb::PeerStats>,
    pub pending_peers: Vec<metapb::Peer>,
    pub approximate_size: u64,
    pub approximate_keys: u64,
    pub term: u64,
    pub written_bytes: u64,
    pub written_keys: u64,
}

pub enum PdTask {
    RegionHeartbeat(Box<RegionHeartbeat>),
    StoreHeartbeat {
        region_count: u32,
        leader_count: u32,
    },
    AskBatchSplit {
        region: metapb::Region,
        split_keys: Vec<Vec<u8>>,
        /// A client's SplitRegion waiting for the outcome.
        callback: Option<crate::msg::WriteCallback>,
    },
    ReportBatchSplit {
        regions: Vec<metapb::Region>,
    },
    /// A replica without a leader for `max-leader-missing-duration` asks whether it is still a
    /// member of its region (its `region` as it knows it).
    ValidatePeer {
        region: metapb::Region,
        peer: metapb::Peer,
    },
}

/// Queues tasks for the PD worker; never blocks.
#[derive(Clone)]
pub struct PdScheduler {
    sender: mpsc::UnboundedSender<PdTask>,
}

impl PdScheduler {
    pub fn new() -> (PdScheduler, mpsc::UnboundedReceiver<PdTask>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (PdScheduler { sender }, receiver)
    }

    pub fn schedule(&self, task: PdTask) {
        if self.sender.send(task).is_err() {
            debug!("pd worker stopped; task dropped");
        }
    }
}

/// Total and available bytes of the file system holding `path`.
fn disk_stats(path: &std::path::Path) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return (0, 0);
    };
    // SAFETY: statvfs(3) writes into the zeroed struct we own and reads a valid C string.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return (0, 0);
        }
        let block = stat.f_frsize as u64;
        (stat.f_blocks as u64 * block, stat.f_bavail as u64 * block)
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Longest the worker waits on a split report before going on with later tasks.
const SPLIT_REPORT_TIMEOUT: Duration = Duration::from_secs(5);

type HeartbeatSender = Arc<Mutex<Option<mpsc::Sender<pdpb::RegionHeartbeatRequest>>>>;

/// Runs the PD worker until `tasks` closes.
pub async fn run_pd_worker<R: RouterHandle>(
    mut tasks: mpsc::UnboundedReceiver<PdTask>,
    pd: Arc<dyn PdApi>,
    router: R,
    store_id: StoreId,
    data_dir: PathBuf,
) {
    let heartbeat_sender: HeartbeatSender = Arc::default();
    let stream_task = tokio::spawn(keep_heartbeat_stream(
        pd.clone(),
        router.clone(),
        heartbeat_sender.clone(),
    ));
    let start_time = unix_secs() as u32;
    while let Some(task) = tasks.recv().await {
        match task {
            PdTask::RegionHeartbeat(heartbeat) => {
                send_region_heartbeat(pd.as_ref(), &heartbeat_sender, *heartbeat);
            }
            PdTask::StoreHeartbeat {
                region_count,
                leader_count,
            } => {
                let (capacity, available) = disk_stats(&data_dir);
                let stats = pdpb::StoreStats {
                    store_id: store_id.get(),
                    capacity,
                    available,
                    used_size: capacity.saturating_sub(available),
                    region_count,
                    start_time,
                    ..Default::default()
                };
                let pd = pd.clone();
                tokio::spawn(async move {
                    if let Err(e) = pd.store_heartbeat(stats).await {
                        warn!(error = %e, leader_count, "store heartbeat failed");
                    }
                });
            }
            PdTask::AskBatchSplit {
                region,
                split_keys,
                callback,
            } => {
                let (pd, router) = (pd.clone(), router.clone());
                tokio::spawn(ask_batch_split(pd, router, region, split_keys, callback));
            }
            PdTask::ReportBatchSplit { regions } => {
                // Awaited here, not spawned: PD must have the whole new layout before the
                // heartbeats queued behind this task narrow the old region, or clients would
                // find no region for the rest of its range meanwhile.
                match tokio::time::timeout(SPLIT_REPORT_TIMEOUT, pd.report_batch_split(regions))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "reporting a split to PD failed"),
                    Err(_) => warn!("reporting a split to PD timed out"),
                }
            }
            PdTask::ValidatePeer { region, peer } => {
                let (pd, router) = (pd.clone(), router.clone());
                tokio::spawn(validate_peer(pd, router, region, peer));
            }
        }
    }
    stream_task.abort();
}

/// What PD's region says of a replica that has been without a leader too long.
#[derive(Debug, PartialEq, Eq)]
pub enum PeerValidity {
    /// PD's region still has the replica.
    Member,
    /// PD's region is at least as new as the replica's and no longer has it: it was removed.
    Removed,
    /// PD's region is older than the replica's in some respect (PD has not heard of a change
    /// the replica has applied): it cannot judge.
    PdBehind,
}

/// Judges `peer`, whose region is `local`, by PD's region `pd`. Only a region at least as new
/// in both the version and the conf version, and newer in the conf version, can say the replica
/// was removed: peer ids are never reused, so a later configuration that lacks it came after
/// its removal (the replica acts on it only under the same condition).
pub fn peer_validity(
    local: &metapb::Region,
    peer: &metapb::Peer,
    pd: &metapb::Region,
) -> PeerValidity {
    let ours = local.region_epoch.unwrap_or_default();
    let theirs = pd.region_epoch.unwrap_or_default();
    if theirs.version < ours.version || theirs.conf_ver < ours.conf_ver {
        return PeerValidity::PdBehind;
    }
    if pd.peers.iter().any(|p| p.id == peer.id) {
        PeerValidity::Member
    } else if theirs.conf_ver > ours.conf_ver {
        PeerValidity::Removed
    } else {
        // The same configuration without the replica: PD's region cannot be right.
        PeerValidity::PdBehind
    }
}

/// Asks PD for the region of a replica that has been without a leader too long, and tells the
/// replica to destroy itself if PD says it was removed.
async fn validate_peer<R: RouterHandle>(
    pd: Arc<dyn PdApi>,
    router: R,
    region: metapb::Region,
    peer: metapb::Peer,
) {
    let pd_region = match pd.region_by_id(region.id).await {
        Ok(Some(pd_region)) => pd_region,
        Ok(None) => {
            // A region created by a split PD has not heard of yet.
            info!(
                region_id = region.id,
                "PD knows no such region; replica kept"
            );
            return;
        }
        Err(e) => {
            warn!(region_id = region.id, error = %e, "asking PD about a leaderless replica failed");
            return;
        }
    };
    let validity = peer_validity(&region, &peer, &pd_region);
    let label = match validity {
        PeerValidity::Member => "peer valid",
        PeerValidity::Removed => "peer stale",
        PeerValidity::PdBehind => "region epoch error",
    };
    crate::metrics::PD_VALIDATE_PEER
        .with_label_values(&[label])
        .inc();
    match validity {
        PeerValidity::Member => {
            info!(
                region_id = region.id,
                peer_id = peer.id,
                "replica is still a member of its region"
            );
        }
        PeerValidity::PdBehind => {
            info!(
                region_id = region.id,
                local_epoch = ?region.region_epoch,
                pd_epoch = ?pd_region.region_epoch,
                "PD's region is older than the replica's; replica kept"
            );
        }
        PeerValidity::Removed => {
            info!(
                region_id = region.id,
                peer_id = peer.id,
                pd_epoch = ?pd_region.region_epoch,
                "replica is no longer a member of its region; destroying it"
            );
            router.send_raft_message(crate::util::tombstone_message(
                region.id,
                peer,
                peer,
                pd_region.region_epoch,
            ));
        }
    }
}

fn send_region_heartbeat(pd: &dyn PdApi, sender: &HeartbeatSender, heartbeat: RegionHeartbeat) {
    let mut request = pd.region_heartbeat_request();
    request.region = Some(heartbeat.region);
    request.leader = Some(heartbeat.leader);
    request.down_peers = heartbeat.down_peers;
    request.pending_peers = heartbeat.pending_peers;
    request.approximate_size = heartbeat.approximate_size;
    request.approximate_keys = heartbeat.approximate_keys;
    request.term = heartbeat.term;
    request.bytes_written = heartbeat.written_bytes;
    request.keys_written = heartbeat.written_keys;
    let sender = sender.lock().clone();
    if let Some(sender) = sender {
        if sender.try_send(request).is_err() {
            debug!("region heartbeat stream busy or closed; heartbeat dropped");
        }
    }
}

/// Asks PD for the ids of a split and hands them to the region's peer; a client's
/// SplitRegion waiting in `callback` hears a failure.
async fn ask_batch_split<R: RouterHandle>(
    pd: Arc<dyn PdApi>,
    router: R,
    region: metapb::Region,
    split_keys: Vec<Vec<u8>>,
    callback: Option<crate::msg::WriteCallback>,
) {
    let count = split_keys.len() as u32;
    match pd.ask_batch_split(region.clone(), count).await {
        Ok(ids) => {
            let msg = PeerMsg::SplitIds {
                region_epoch: region.region_epoch.unwrap_or_default(),
                split_keys,
                ids,
                callback,
            };
            router.send_peer(RegionId(region.id), msg);
        }
        Err(e) => {
            warn!(region_id = region.id, error = %e, "asking PD for split ids failed");
            if let Some(callback) = callback {
                let error = crate::Error::Pd(e.to_string());
                callback(Ok(crate::msg::error_response(error, 0)));
            }
        }
    }
}

/// Keeps one region heartbeat stream open, reopening it when it breaks, and routes PD's
/// responses (operators) to the regions' peers.
async fn keep_heartbeat_stream<R: RouterHandle>(
    pd: Arc<dyn PdApi>,
    router: R,
    sender: HeartbeatSender,
) {
    loop {
        match pd.region_heartbeat_stream().await {
            Ok((tx, mut responses)) => {
                info!("region heartbeat stream to PD opened");
                *sender.lock() = Some(tx);
                loop {
                    match responses.next().await {
                        Some(Ok(resp)) => route_operator(&router, resp),
                        None => break,
                        Some(Err(e)) => {
                            warn!(error = %e, "region heartbeat stream broke");
                            break;
                        }
                    }
                }
                *sender.lock() = None;
            }
            Err(e) => warn!(error = %e, "cannot open the region heartbeat stream; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn route_operator<R: RouterHandle>(router: &R, resp: pdpb::RegionHeartbeatResponse) {
    if let Some(error) = resp.header.as_ref().and_then(|h| h.error.as_ref()) {
        debug!(message = %error.message, "PD refused a region heartbeat");
        return;
    }
    if resp.region_id == 0 {
        return;
    }
    router.send_peer(
        RegionId(resp.region_id),
        PeerMsg::PdOperator(Box::new(resp)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(version: u64, conf_ver: u64, peer_ids: &[u64]) -> metapb::Region {
        metapb::Region {
            id: 1,
            region_epoch: Some(metapb::RegionEpoch { conf_ver, version }),
            peers: peer_ids
                .iter()
                .map(|&id| metapb::Peer {
                    id,
                    store_id: id,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_replica_is_removed_only_by_a_region_at_least_as_new_that_lacks_it() {
        let local = region(3, 5, &[1, 2, 3]);
        let peer = local.peers[2];
        assert_eq!(
            peer_validity(&local, &peer, &region(3, 5, &[1, 2, 3])),
            PeerValidity::Member
        );
        assert_eq!(
            peer_validity(&local, &peer, &region(4, 7, &[1, 2, 3, 4])),
            PeerValidity::Member
        );
        assert_eq!(
            peer_validity(&local, &peer, &region(3, 7, &[1, 2, 4])),
            PeerValidity::Removed
        );
        assert_eq!(
            peer_validity(&local, &peer, &region(5, 9, &[4, 5, 6])),
            PeerValidity::Removed
        );
        // PD has not heard of a split or a conf change this replica applied.
        assert_eq!(
            peer_validity(&local, &peer, &region(2, 7, &[1, 2, 4])),
            PeerValidity::PdBehind
        );
        assert_eq!(
            peer_validity(&local, &peer, &region(3, 4, &[1, 2])),
            PeerValidity::PdBehind
        );
        assert_eq!(
            peer_validity(&local, &peer, &region(3, 5, &[1, 2])),
            PeerValidity::PdBehind
        );
    }
}
