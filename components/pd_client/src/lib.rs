//! The store side of PD: a gRPC client for `pdpb.PD` with the calls a tikv-server makes.
//!
//! [`PdClient::connect`] retries forever with capped exponential backoff, logging why each
//! attempt failed, so a store can start before its PD. Once connected, each call checks the
//! response header and turns PD's errors into [`Error::Pd`]; transport failures reconnect (to
//! the current leader) on the next call.
//!
//! Depends on the protocol crate only.

use std::time::Duration;

use kvproto::{metapb, pdpb};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tracing::{info, warn};

type GrpcClient = pdpb::pd_client::PdClient<Channel>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("PD request failed: {0}")]
    Grpc(#[from] tonic::Status),
    #[error("cannot reach PD at {endpoints}: {reason}")]
    Unreachable { endpoints: String, reason: String },
    #[error("PD error {kind:?}: {message}")]
    Pd {
        kind: pdpb::ErrorType,
        message: String,
    },
    #[error("PD answered without {what}")]
    Incomplete { what: &'static str },
}

impl Error {
    /// Returns the PD error type, if PD refused the request.
    pub fn pd_error_type(&self) -> Option<pdpb::ErrorType> {
        match self {
            Error::Pd { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Backoff between connection attempts: doubling from 100 ms up to 3 s.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// Per-call deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PdClient {
    endpoints: Vec<String>,
    cluster_id: u64,
    client: Mutex<GrpcClient>,
}

fn check_header(header: Option<&pdpb::ResponseHeader>) -> Result<()> {
    let header = header.ok_or(Error::Incomplete { what: "header" })?;
    match &header.error {
        Some(error) if error.r#type != pdpb::ErrorType::Ok as i32 => Err(Error::Pd {
            kind: pdpb::ErrorType::try_from(error.r#type).unwrap_or(pdpb::ErrorType::Unknown),
            message: error.message.clone(),
        }),
        _ => Ok(()),
    }
}

fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

async fn connect_channel(addr: &str) -> std::result::Result<Channel, String> {
    Endpoint::from_shared(with_scheme(addr))
        .map_err(|e| format!("invalid PD address {addr:?}: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("{addr}: {e}"))
}

/// Asks each endpoint for the members and connects to the leader they name.
async fn connect_leader(endpoints: &[String]) -> std::result::Result<(u64, GrpcClient), String> {
    let mut reasons = Vec::new();
    for addr in endpoints {
        let channel = match connect_channel(addr).await {
            Ok(channel) => channel,
            Err(e) => {
                reasons.push(e);
                continue;
            }
        };
        let mut client = GrpcClient::new(channel);
        let members = match client.get_members(pdpb::GetMembersRequest::default()).await {
            Ok(resp) => resp.into_inner(),
            Err(status) => {
                reasons.push(format!("{addr}: GetMembers: {status}"));
                continue;
            }
        };
        let cluster_id = members.header.as_ref().map_or(0, |h| h.cluster_id);
        let leader_url = members
            .leader
            .as_ref()
            .and_then(|leader| leader.client_urls.first().cloned());
        let Some(leader_url) = leader_url else {
            reasons.push(format!("{addr}: no PD leader"));
            continue;
        };
        if with_scheme(&leader_url) == with_scheme(addr) {
            return Ok((cluster_id, client));
        }
        match connect_channel(&leader_url).await {
            Ok(channel) => return Ok((cluster_id, GrpcClient::new(channel))),
            Err(e) => reasons.push(format!("leader {e}")),
        }
    }
    Err(reasons.join("; "))
}

impl PdClient {
    /// Connects to the PD leader, retrying forever with backoff and logging each failure.
    pub async fn connect(endpoints: Vec<String>) -> PdClient {
        let mut backoff = BACKOFF_START;
        loop {
            match connect_leader(&endpoints).await {
                Ok((cluster_id, client)) => {
                    info!(cluster_id, endpoints = ?endpoints, "connected to PD");
                    return PdClient {
                        endpoints,
                        cluster_id,
                        client: Mutex::new(client),
                    };
                }
                Err(reason) => {
                    warn!(%reason, retry_in = ?backoff, "PD is not reachable yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Connects once, failing instead of retrying.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] with every endpoint's reason.
    pub async fn try_connect(endpoints: Vec<String>) -> Result<PdClient> {
        let (cluster_id, client) =
            connect_leader(&endpoints)
                .await
                .map_err(|reason| Error::Unreachable {
                    endpoints: endpoints.join(","),
                    reason,
                })?;
        Ok(PdClient {
            endpoints,
            cluster_id,
            client: Mutex::new(client),
        })
    }

    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    fn header(&self) -> Option<pdpb::RequestHeader> {
        Some(pdpb::RequestHeader {
            cluster_id: self.cluster_id,
            sender_id: 0,
        })
    }

    fn client(&self) -> GrpcClient {
        self.client.lock().clone()
    }

    /// Reconnects after a transport failure, keeping the cluster id.
    async fn reconnect(&self) {
        if let Ok((cluster_id, client)) = connect_leader(&self.endpoints).await {
            if cluster_id == self.cluster_id {
                *self.client.lock() = client;
            } else {
                warn!(
                    expected = self.cluster_id,
                    found = cluster_id,
                    "PD now reports another cluster id"
                );
            }
        }
    }

    async fn after<T>(
        &self,
        result: std::result::Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T> {
        match result {
            Ok(resp) => Ok(resp.into_inner()),
            Err(status) => {
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::DeadlineExceeded
                ) {
                    self.reconnect().await;
                }
                Err(status.into())
            }
        }
    }

    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn is_cluster_bootstrapped(&self) -> Result<bool> {
        let req = pdpb::IsBootstrappedRequest {
            header: self.header(),
        };
        let resp = self.after(self.client().is_bootstrapped(req).await).await?;
        check_header(resp.header.as_ref())?;
        Ok(resp.bootstrapped)
    }

    /// # Errors
    ///
    /// A transport error or PD's error (ALREADY_BOOTSTRAPPED the second time).
    pub async fn bootstrap_cluster(
        &self,
        store: metapb::Store,
        region: metapb::Region,
    ) -> Result<()> {
        let req = pdpb::BootstrapRequest {
            header: self.header(),
            store: Some(store),
            region: Some(region),
        };
        let resp = self.after(self.client().bootstrap(req).await).await?;
        check_header(resp.header.as_ref())
    }

    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn alloc_id(&self) -> Result<u64> {
        let req = pdpb::AllocIdRequest {
            header: self.header(),
        };
        let resp = self.after(self.client().alloc_id(req).await).await?;
        check_header(resp.header.as_ref())?;
        if resp.id == 0 {
            return Err(Error::Incomplete { what: "an id" });
        }
        Ok(resp.id)
    }

    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn put_store(&self, store: metapb::Store) -> Result<()> {
        let req = pdpb::PutStoreRequest {
            header: self.header(),
            store: Some(store),
        };
        let resp = self.after(self.client().put_store(req).await).await?;
        check_header(resp.header.as_ref())
    }

    /// # Errors
    ///
    /// A transport error or PD's error (unknown store).
    pub async fn get_store(&self, store_id: u64) -> Result<metapb::Store> {
        let req = pdpb::GetStoreRequest {
            header: self.header(),
            store_id,
        };
        let resp = self.after(self.client().get_store(req).await).await?;
        check_header(resp.header.as_ref())?;
        resp.store.ok_or(Error::Incomplete { what: "the store" })
    }

    /// Returns a region and its leader (if PD knows one).
    ///
    /// # Errors
    ///
    /// A transport error or PD's error (REGION_NOT_FOUND).
    pub async fn get_region_by_id(
        &self,
        region_id: u64,
    ) -> Result<(metapb::Region, Option<metapb::Peer>)> {
        let req = pdpb::GetRegionByIdRequest {
            header: self.header(),
            region_id,
            need_buckets: false,
        };
        let resp = self
            .after(self.client().get_region_by_id(req).await)
            .await?;
        check_header(resp.header.as_ref())?;
        let region = resp
            .region
            .ok_or(Error::Incomplete { what: "the region" })?;
        Ok((region, resp.leader))
    }

    /// The region holding `key`, and its leader (if PD knows one).
    ///
    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn get_region(&self, key: &[u8]) -> Result<(metapb::Region, Option<metapb::Peer>)> {
        let req = pdpb::GetRegionRequest {
            header: self.header(),
            region_key: key.to_vec(),
            need_buckets: false,
        };
        let resp = self.after(self.client().get_region(req).await).await?;
        check_header(resp.header.as_ref())?;
        let region = resp
            .region
            .ok_or(Error::Incomplete { what: "the region" })?;
        Ok((region, resp.leader))
    }

    /// The cluster's GC safe point: no read below it needs the versions GC may remove.
    ///
    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn get_gc_safe_point(&self) -> Result<u64> {
        let req = pdpb::GetGcSafePointRequest {
            header: self.header(),
        };
        let resp = self
            .after(self.client().get_gc_safe_point(req).await)
            .await?;
        check_header(resp.header.as_ref())?;
        Ok(resp.safe_point)
    }

    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn store_heartbeat(
        &self,
        stats: pdpb::StoreStats,
    ) -> Result<pdpb::StoreHeartbeatResponse> {
        let req = pdpb::StoreHeartbeatRequest {
            header: self.header(),
            stats: Some(stats),
        };
        let resp = self.after(self.client().store_heartbeat(req).await).await?;
        check_header(resp.header.as_ref())?;
        Ok(resp)
    }

    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn ask_batch_split(
        &self,
        region: metapb::Region,
        split_count: u32,
    ) -> Result<Vec<pdpb::SplitId>> {
        let req = pdpb::AskBatchSplitRequest {
            header: self.header(),
            region: Some(region),
            split_count,
        };
        let resp = self.after(self.client().ask_batch_split(req).await).await?;
        check_header(resp.header.as_ref())?;
        Ok(resp.ids)
    }

    /// # Errors
    ///
    /// A transport error or PD's error.
    pub async fn report_batch_split(&self, regions: Vec<metapb::Region>) -> Result<()> {
        let req = pdpb::ReportBatchSplitRequest {
            header: self.header(),
            regions,
        };
        let resp = self
            .after(self.client().report_batch_split(req).await)
            .await?;
        check_header(resp.header.as_ref())
    }

    /// One timestamp from PD's TSO, as `physical_ms << 18 | logical` (a store needs one to
    /// seed the `max_ts` that async commit relies on).
    ///
    /// # Errors
    ///
    /// A transport error, PD's error, or a stream that ends without an answer.
    pub async fn get_tso(&self) -> Result<u64> {
        let request = pdpb::TsoRequest {
            header: self.header(),
            count: 1,
            dc_location: String::new(),
        };
        let stream = tokio_stream::once(request);
        let mut responses = self.after(self.client().tso(stream).await).await?;
        let resp = responses.message().await?.ok_or(Error::Incomplete {
            what: "tso response",
        })?;
        check_header(resp.header.as_ref())?;
        let ts = resp.timestamp.ok_or(Error::Incomplete {
            what: "tso timestamp",
        })?;
        let physical = u64::try_from(ts.physical).unwrap_or(0);
        let logical = u64::try_from(ts.logical).unwrap_or(0);
        Ok((physical << 18) | logical)
    }

    /// Opens the region heartbeat stream: heartbeats go into the returned sender, PD's
    /// responses (operators and errors) come out of the returned stream.
    ///
    /// # Errors
    ///
    /// A transport error if the stream cannot be opened.
    pub async fn region_heartbeat_stream(
        &self,
    ) -> Result<(
        mpsc::Sender<pdpb::RegionHeartbeatRequest>,
        tonic::Streaming<pdpb::RegionHeartbeatResponse>,
    )> {
        let (tx, rx) = mpsc::channel(1024);
        let responses = self
            .after(
                self.client()
                    .region_heartbeat(ReceiverStream::new(rx))
                    .await,
            )
            .await?;
        Ok((tx, responses))
    }

    /// Builds a region heartbeat request with this client's header.
    pub fn region_heartbeat_request(&self) -> pdpb::RegionHeartbeatRequest {
        pdpb::RegionHeartbeatRequest {
            header: self.header(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_become_pd_errors() {
        assert!(check_header(None).is_err());
        let ok = pdpb::ResponseHeader {
            cluster_id: 1,
            error: None,
        };
        assert!(check_header(Some(&ok)).is_ok());
        let refused = pdpb::ResponseHeader {
            cluster_id: 1,
            error: Some(pdpb::Error {
                r#type: pdpb::ErrorType::AlreadyBootstrapped as i32,
                message: "cluster 1 is already bootstrapped".into(),
            }),
        };
        let err = check_header(Some(&refused)).unwrap_err();
        assert_eq!(
            err.pd_error_type(),
            Some(pdpb::ErrorType::AlreadyBootstrapped)
        );
    }

    #[tokio::test]
    async fn unreachable_pd_is_reported() {
        let err = PdClient::try_connect(vec!["127.0.0.1:1".into()])
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    }
}
