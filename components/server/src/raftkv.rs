//! `RaftKv` (seed: `storage/kv/raftkv.rs`): the storage `Engine` on top of raftstore. Writes
//! become raft proposals answered after apply; snapshots come from the local reader under a
//! leader lease, or from the peer after a read index.

use std::time::{Duration, Instant};

use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, DATA_CFS};
use kvproto::raft_cmdpb::{
    CmdType, DeleteRangeRequest, DeleteRequest, PutRequest, RaftCmdRequest, RaftCmdResponse,
    RaftRequestHeader, Request,
};
use kvproto::{errorpb, kvrpcpb, metapb};
use raft_log_engine::RaftLogEngine;
use raftstore::store_meta::ReadDelegate;
use raftstore::{
    Callback, LocalReader, PeerMsg, RaftCommand, ReadResponse, RegionSnapshot, RouterHandle,
    SharedRouter, WriteResult,
};
use storage::kv::{BoxFuture, Engine, Error, Modify, RegionSplitter, Result, WriteData};
use tokio::sync::oneshot;
use types::RegionId;

/// How long a read waits for raft before it fails (the client retries it). Writes have no
/// such limit: raftstore answers every write, with its result, with an error for a write that
/// certainly did not apply, or as undetermined (the peer stepped down or was destroyed), and
/// the write's latches must be held until then.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RaftKv<EK: KvEngine, ER: RaftLogEngine> {
    router: SharedRouter<EK, ER>,
    reader: LocalReader<EK>,
    /// The store's own data engine, for the few operations that bypass raft.
    kv: EK,
}

impl<EK: KvEngine, ER: RaftLogEngine> Clone for RaftKv<EK, ER> {
    fn clone(&self) -> Self {
        RaftKv {
            router: self.router.clone(),
            reader: self.reader.clone(),
            kv: self.kv.clone(),
        }
    }
}

fn header_from(ctx: &kvrpcpb::Context) -> RaftRequestHeader {
    RaftRequestHeader {
        region_id: ctx.region_id,
        peer: ctx.peer,
        region_epoch: ctx.region_epoch,
        term: 0,
    }
}

fn message_error(message: String) -> Error {
    Error::Region(Box::new(errorpb::Error {
        message,
        ..Default::default()
    }))
}

fn check_response(response: RaftCmdResponse) -> Result<RaftCmdResponse> {
    match response.header.as_ref().and_then(|h| h.error.clone()) {
        Some(error) => Err(Error::Region(Box::new(error))),
        None => Ok(response),
    }
}

fn to_request(modify: Modify) -> Request {
    match modify {
        Modify::Put { cf, key, value } => Request {
            cmd_type: CmdType::Put as i32,
            put: Some(PutRequest {
                cf: cf.to_string(),
                key,
                value: value.into(),
            }),
            ..Default::default()
        },
        Modify::Delete { cf, key } => Request {
            cmd_type: CmdType::Delete as i32,
            delete: Some(DeleteRequest {
                cf: cf.to_string(),
                key,
            }),
            ..Default::default()
        },
        Modify::DeleteRange { cf, start, end } => Request {
            cmd_type: CmdType::DeleteRange as i32,
            delete_range: Some(DeleteRangeRequest {
                cf: cf.to_string(),
                start_key: start,
                end_key: end,
            }),
            ..Default::default()
        },
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> RaftKv<EK, ER> {
    pub fn new(router: SharedRouter<EK, ER>, reader: LocalReader<EK>, kv: EK) -> Self {
        RaftKv { router, reader, kv }
    }

    fn send(
        &self,
        region_id: u64,
        request: RaftCmdRequest,
        callback: Callback<EK::Snapshot>,
    ) -> Result<()> {
        let msg = PeerMsg::RaftCommand(Box::new(RaftCommand::new(request, callback)));
        self.router
            .try_send_peer(RegionId(region_id), msg)
            .map_err(|_| region_not_found(region_id))
    }
}

/// Records a request to the engine that completed, by `kind` (`snapshot`, `write`).
fn observe_request(kind: &str, start: Instant) {
    crate::metrics::ENGINE_ASYNC_REQUEST_DURATION
        .with_label_values(&[kind])
        .observe(start.elapsed().as_secs_f64());
}

fn region_not_found(region_id: u64) -> Error {
    Error::Region(Box::new(errorpb::Error {
        message: format!("region {region_id} is not on this store"),
        region_not_found: Some(errorpb::RegionNotFound { region_id }),
        ..Default::default()
    }))
}

async fn wait_read<T>(receiver: oneshot::Receiver<T>) -> Result<T> {
    match tokio::time::timeout(READ_TIMEOUT, receiver).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(message_error("read dropped by raftstore; retry".into())),
        Err(_) => Err(message_error(format!(
            "read timed out after {READ_TIMEOUT:?}; retry"
        ))),
    }
}

/// Waits for raftstore's answer to a write. A write raftstore dropped unanswered (the store is
/// stopping) may have been proposed, so it is undetermined too.
async fn wait_write(receiver: oneshot::Receiver<WriteResult>) -> Result<RaftCmdResponse> {
    match receiver.await {
        Ok(Ok(response)) => check_response(response),
        Ok(Err(undetermined)) => Err(Error::Undetermined(undetermined.to_string())),
        Err(_) => Err(Error::Undetermined(
            "the store stopped before the write's outcome was known".into(),
        )),
    }
}

impl<EK: KvEngine, ER: RaftLogEngine> Engine for RaftKv<EK, ER> {
    type Snap = RegionSnapshot<EK::Snapshot>;

    fn async_snapshot(&self, ctx: &kvrpcpb::Context) -> BoxFuture<Result<Self::Snap>> {
        let start = Instant::now();
        let header = header_from(ctx);
        if let Some(snapshot) = self.reader.try_read(&header) {
            observe_request("snapshot", start);
            return Box::pin(async move { Ok(snapshot) });
        }
        let (sender, receiver) = oneshot::channel::<ReadResponse<EK::Snapshot>>();
        let request = RaftCmdRequest {
            header: Some(header),
            requests: vec![Request {
                cmd_type: CmdType::Snap as i32,
                ..Default::default()
            }],
            admin_request: None,
        };
        let callback = Callback::Read(Box::new(move |resp| {
            let _ = sender.send(resp);
        }));
        let sent = self.send(ctx.region_id, request, callback);
        Box::pin(async move {
            sent?;
            let read = wait_read(receiver).await?;
            observe_request("snapshot", start);
            check_response(read.response)?;
            read.snapshot
                .ok_or_else(|| message_error("read returned no snapshot; retry".into()))
        })
    }

    fn async_write(&self, ctx: &kvrpcpb::Context, data: WriteData) -> BoxFuture<Result<()>> {
        let start = Instant::now();
        let (sender, receiver) = oneshot::channel::<WriteResult>();
        let request = RaftCmdRequest {
            header: Some(header_from(ctx)),
            requests: data.modifies.into_iter().map(to_request).collect(),
            admin_request: None,
        };
        let callback = Callback::Write(Box::new(move |result| {
            let _ = sender.send(result);
        }));
        let sent = self.send(ctx.region_id, request, callback);
        Box::pin(async move {
            sent?;
            wait_write(receiver).await?;
            observe_request("write", start);
            Ok(())
        })
    }

    /// Deletes `[start, end)` from this store's data engine directly, as TiKV does; and the
    /// regions this store leads take the same delete through raft. A replica may apply writes
    /// committed before the destroy after its store deleted the range (a follower learns of a
    /// commit from its leader's next message, or catches up after a partition), and would keep
    /// them: through raft the delete comes after those writes in its log. A region that could
    /// not take it (its leadership or range just changed) keeps only the direct deletes.
    fn unsafe_destroy_range(&self, start: Vec<u8>, end: Vec<u8>) -> BoxFuture<Result<()>> {
        let ordered: Vec<_> = self
            .reader
            .leaders()
            .into_iter()
            .filter_map(|leader| {
                let request = destroy_request(&leader, &start, &end)?;
                let region_id = leader.region.id;
                let (sender, receiver) = oneshot::channel::<WriteResult>();
                let callback = Callback::Write(Box::new(move |result| {
                    let _ = sender.send(result);
                }));
                self.send(region_id, request, callback)
                    .ok()
                    .map(|()| (region_id, receiver))
            })
            .collect();
        let kv = self.kv.clone();
        Box::pin(async move {
            let deleted = tokio::task::spawn_blocking(move || {
                let (start, end) = (keys::data_key(&start), keys::data_end_key(&end));
                let mut batch = kv.write_batch();
                for cf in DATA_CFS {
                    batch.delete_range_cf(cf, &start, &end)?;
                }
                batch.write_opt(WriteOptions { sync: true })
            })
            .await;
            match deleted {
                Ok(result) => result?,
                Err(e) => return Err(Error::Other(format!("unsafe destroy range stopped: {e}"))),
            }
            let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
            for (region_id, receiver) in ordered {
                match tokio::time::timeout_at(deadline, wait_write(receiver)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::info!(
                        region_id,
                        error = %e,
                        "unsafe destroy range: the region did not take the delete through raft; \
                         its replicas keep their stores' direct deletes"
                    ),
                    Err(_) => tracing::warn!(
                        region_id,
                        "unsafe destroy range: the delete through raft did not apply within \
                         {READ_TIMEOUT:?}; its replicas keep their stores' direct deletes"
                    ),
                }
            }
            Ok(())
        })
    }
}

/// A write deleting `[start, end)` (empty end unbounded), clipped to `leader`'s region, from
/// every data column family, for the region's leader to propose; `None` if the range misses the
/// region.
fn destroy_request(leader: &ReadDelegate, start: &[u8], end: &[u8]) -> Option<RaftCmdRequest> {
    let region = &leader.region;
    let start = start.max(region.start_key.as_slice()).to_vec();
    let end = match (end.is_empty(), region.end_key.is_empty()) {
        (true, _) => region.end_key.clone(),
        (false, true) => end.to_vec(),
        (false, false) => end.min(region.end_key.as_slice()).to_vec(),
    };
    if !end.is_empty() && start >= end {
        return None;
    }
    Some(RaftCmdRequest {
        header: Some(RaftRequestHeader {
            region_id: region.id,
            peer: Some(metapb::Peer {
                id: leader.peer_id.get(),
                store_id: leader.store_id.get(),
                ..Default::default()
            }),
            region_epoch: region.region_epoch,
            term: 0,
        }),
        requests: DATA_CFS
            .iter()
            .map(|&cf| {
                to_request(Modify::DeleteRange {
                    cf,
                    start: start.clone(),
                    end: end.clone(),
                })
            })
            .collect(),
        admin_request: None,
    })
}

impl<EK: KvEngine, ER: RaftLogEngine> RegionSplitter for RaftKv<EK, ER> {
    fn split_region(
        &self,
        ctx: &kvrpcpb::Context,
        split_keys: Vec<Vec<u8>>,
    ) -> BoxFuture<Result<Vec<metapb::Region>>> {
        let (sender, receiver) = oneshot::channel::<WriteResult>();
        let region_id = ctx.region_id;
        let msg = PeerMsg::SplitRegion {
            region_epoch: ctx.region_epoch.unwrap_or_default(),
            split_keys,
            callback: Box::new(move |resp| {
                let _ = sender.send(resp);
            }),
        };
        let sent = self
            .router
            .try_send_peer(RegionId(region_id), msg)
            .map_err(|_| region_not_found(region_id));
        Box::pin(async move {
            sent?;
            let resp = wait_write(receiver).await?;
            let regions = resp
                .admin_response
                .and_then(|admin| admin.splits)
                .map(|splits| splits.regions)
                .unwrap_or_default();
            Ok(regions)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use types::{PeerId, StoreId};

    use super::*;

    fn leader_of(start: &[u8], end: &[u8]) -> ReadDelegate {
        ReadDelegate {
            region: Arc::new(metapb::Region {
                id: 7,
                start_key: start.to_vec(),
                end_key: end.to_vec(),
                region_epoch: Some(metapb::RegionEpoch {
                    conf_ver: 2,
                    version: 3,
                }),
                ..Default::default()
            }),
            store_id: StoreId(1),
            peer_id: PeerId(8),
            term: 5,
            applied_term: 5,
            lease_expire: None,
        }
    }

    /// The range each column family's delete covers, after the header is checked.
    fn destroyed(leader: &ReadDelegate, start: &[u8], end: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let request = destroy_request(leader, start, end).expect("the range overlaps the region");
        let header = request.header.expect("a header");
        assert_eq!(header.region_id, 7);
        assert_eq!(header.region_epoch, leader.region.region_epoch);
        assert_eq!(header.peer.map(|p| (p.id, p.store_id)), Some((8, 1)));
        let ranges: Vec<_> = request
            .requests
            .iter()
            .map(|r| {
                let range = r.delete_range.as_ref().expect("a delete range");
                (
                    range.cf.clone(),
                    range.start_key.clone(),
                    range.end_key.clone(),
                )
            })
            .collect();
        let cfs: Vec<_> = ranges.iter().map(|(cf, _, _)| cf.as_str()).collect();
        assert_eq!(cfs, DATA_CFS);
        assert!(ranges
            .windows(2)
            .all(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2));
        let (_, start, end) = ranges.into_iter().next().expect("one per column family");
        (start, end)
    }

    #[test]
    fn the_delete_through_raft_is_clipped_to_the_region() {
        let middle = leader_of(b"b", b"d");
        assert_eq!(
            destroyed(&middle, b"a", b"c"),
            (b"b".to_vec(), b"c".to_vec())
        );
        assert_eq!(
            destroyed(&middle, b"c", b"e"),
            (b"c".to_vec(), b"d".to_vec())
        );
        assert_eq!(
            destroyed(&middle, b"c", b""),
            (b"c".to_vec(), b"d".to_vec())
        );
        assert_eq!(destroyed(&middle, b"", b""), (b"b".to_vec(), b"d".to_vec()));
        let last = leader_of(b"b", b"");
        assert_eq!(destroyed(&last, b"a", b""), (b"b".to_vec(), vec![]));
        assert_eq!(destroyed(&last, b"c", b"e"), (b"c".to_vec(), b"e".to_vec()));
        let whole = leader_of(b"", b"");
        assert_eq!(destroyed(&whole, b"", b""), (vec![], vec![]));
        assert!(destroy_request(&middle, b"d", b"e").is_none());
        assert!(destroy_request(&middle, b"", b"b").is_none());
    }
}
