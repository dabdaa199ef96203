//! The cluster's deadlock detector (TiKV's `server/lock_manager/deadlock.rs`).
//!
//! One wait-for graph serves every store. It is kept by the detector leader: the store that
//! leads the region holding the empty key, so the role moves with that region's leadership
//! (a new leader starts with an empty graph; waits it never heard of only time out).
//! [`Detector`] is what this store's lock manager reports to: its own graph when it is the
//! leader, otherwise a `deadlock.Deadlock/Detect` stream to the leader, whose answers (sent
//! only for a cycle) reach the waiter they name. [`DeadlockService`] serves that stream to
//! the other stores.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use kvproto::deadlock::deadlock_client::DeadlockClient;
use kvproto::deadlock::deadlock_server::Deadlock;
use kvproto::deadlock::{
    DeadlockRequest, DeadlockRequestType, DeadlockResponse, WaitForEntriesRequest,
    WaitForEntriesResponse, WaitForEntry,
};
use parking_lot::Mutex;
use pd_client::PdClient;
use raftstore::StoreMeta;
use storage::lock_manager::{DeadlockCallback, DeadlockDetector, LocalDetector};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::transport::AddressResolver;

/// The key whose region's leader keeps the graph.
const LEADER_KEY: &[u8] = b"";
const NOT_LEADER: &str = "I'm not the leader of deadlock detector";

/// Identifies a wait: waiter, waited-for transaction, key hash.
type WaitId = (u64, u64, u64);

fn wait_id(entry: &WaitForEntry) -> WaitId {
    (entry.txn, entry.wait_for_txn, entry.key_hash)
}

/// This store's way to the deadlock detector. Cheap to clone.
#[derive(Clone)]
pub struct Detector {
    inner: Arc<Inner>,
}

struct Inner {
    /// The graph this store keeps while it is the leader.
    local: LocalDetector,
    store_meta: Arc<Mutex<StoreMeta>>,
    pd: Arc<PdClient>,
    resolver: AddressResolver<Arc<PdClient>>,
    runtime: Handle,
    /// Requests to the leader, while a stream to it is open.
    stream: Mutex<Option<mpsc::UnboundedSender<DeadlockRequest>>>,
    /// Waits reported to the leader, and who hears if one closes a cycle.
    pending: Mutex<HashMap<WaitId, DeadlockCallback>>,
}

impl Detector {
    /// A detector whose edges expire after `ttl` (the longest a lock wait lasts).
    pub fn new(
        ttl: Duration,
        store_meta: Arc<Mutex<StoreMeta>>,
        pd: Arc<PdClient>,
        runtime: Handle,
    ) -> Self {
        Detector {
            inner: Arc::new(Inner {
                local: LocalDetector::new(ttl),
                store_meta,
                resolver: AddressResolver::new(pd.clone()),
                pd,
                runtime,
                stream: Mutex::default(),
                pending: Mutex::default(),
            }),
        }
    }

    /// Whether this store leads the region holding the empty key, and so keeps the graph.
    pub fn is_leader(&self) -> bool {
        self.inner
            .store_meta
            .lock()
            .leaders()
            .any(|reader| reader.region.start_key.as_slice() == LEADER_KEY)
    }

    /// Sends `request` to the leader, opening a stream to it if none is open.
    fn send(&self, request: DeadlockRequest) {
        let mut stream = self.inner.stream.lock();
        let request = match stream.as_ref() {
            Some(sender) => match sender.send(request) {
                Ok(()) => return,
                Err(returned) => returned.0,
            },
            None => request,
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        let _ = sender.send(request);
        *stream = Some(sender.clone());
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            if let Err(e) = run_stream(&inner, receiver).await {
                warn!(error = %e, "deadlock detector stream ended; waits reported on it will time out instead");
            }
            let mut stream = inner.stream.lock();
            if stream.as_ref().is_some_and(|s| s.same_channel(&sender)) {
                *stream = None;
            }
        });
    }

    fn request(tp: DeadlockRequestType, entry: WaitForEntry) -> DeadlockRequest {
        DeadlockRequest {
            tp: tp as i32,
            entry: Some(entry),
        }
    }
}

/// Streams `requests` to the detector leader and hands each cycle it answers to its waiter.
async fn run_stream(
    inner: &Inner,
    requests: mpsc::UnboundedReceiver<DeadlockRequest>,
) -> Result<(), String> {
    let (_, leader) = inner
        .pd
        .get_region(LEADER_KEY)
        .await
        .map_err(|e| format!("find the detector leader: {e}"))?;
    let leader = leader.ok_or("the first region has no leader yet")?;
    let channel = inner.resolver.connect(leader.store_id).await?;
    info!(
        store_id = leader.store_id,
        "reporting lock waits to the deadlock detector"
    );
    let mut responses = DeadlockClient::new(channel)
        .detect(UnboundedReceiverStream::new(requests))
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner();
    loop {
        match responses.message().await {
            Ok(Some(cycle)) => {
                let Some(entry) = &cycle.entry else { continue };
                let callback = inner.pending.lock().remove(&wait_id(entry));
                if let Some(callback) = callback {
                    callback(cycle);
                }
            }
            Ok(None) => return Ok(()),
            Err(status) => return Err(status.message().to_string()),
        }
    }
}

impl DeadlockDetector for Detector {
    fn detect(&self, entry: WaitForEntry, on_deadlock: DeadlockCallback) {
        if self.is_leader() {
            return self.inner.local.detect(entry, on_deadlock);
        }
        self.inner
            .pending
            .lock()
            .insert(wait_id(&entry), on_deadlock);
        self.send(Self::request(DeadlockRequestType::Detect, entry));
    }

    fn clean_up_wait_for(&self, entry: WaitForEntry) {
        // Whatever the leadership now: it may have moved here since the wait was reported.
        self.inner.pending.lock().remove(&wait_id(&entry));
        if self.is_leader() {
            return self.inner.local.clean_up_wait_for(entry);
        }
        self.send(Self::request(DeadlockRequestType::CleanUpWaitFor, entry));
    }

    fn clean_up(&self, txn: u64) {
        self.inner.pending.lock().retain(|id, _| id.0 != txn);
        if self.is_leader() {
            return self.inner.local.clean_up(txn);
        }
        let entry = WaitForEntry {
            txn,
            ..Default::default()
        };
        self.send(Self::request(DeadlockRequestType::CleanUp, entry));
    }
}

/// `deadlock.Deadlock`: the detector leader's side of the streams.
pub struct DeadlockService {
    detector: Detector,
}

impl DeadlockService {
    pub fn new(detector: Detector) -> Self {
        DeadlockService { detector }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DeadlockResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Deadlock for DeadlockService {
    async fn get_wait_for_entries(
        &self,
        _request: Request<WaitForEntriesRequest>,
    ) -> Result<Response<WaitForEntriesResponse>, Status> {
        let entries = self
            .detector
            .inner
            .local
            .graph()
            .lock()
            .entries(Instant::now());
        Ok(Response::new(WaitForEntriesResponse { entries }))
    }

    type DetectStream = ResponseStream;

    /// Only the leader answers; another store fails the stream so that its client finds the
    /// leader again.
    async fn detect(
        &self,
        request: Request<Streaming<DeadlockRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        if !self.detector.is_leader() {
            return Err(Status::failed_precondition(NOT_LEADER));
        }
        let mut requests = request.into_inner();
        let (sender, receiver) = mpsc::unbounded_channel();
        let detector = self.detector.clone();
        tokio::spawn(async move {
            while let Ok(Some(request)) = requests.message().await {
                if !detector.is_leader() {
                    let _ = sender.send(Err(Status::failed_precondition(NOT_LEADER)));
                    return;
                }
                let tp = request.tp();
                let Some(entry) = request.entry else { continue };
                let mut graph = detector.inner.local.graph().lock();
                match tp {
                    DeadlockRequestType::Detect => {
                        if let Some(cycle) = graph.detect(entry, Instant::now()) {
                            let _ = sender.send(Ok(cycle));
                        }
                    }
                    DeadlockRequestType::CleanUpWaitFor => graph.clean_up_wait_for(&entry),
                    DeadlockRequestType::CleanUp => graph.clean_up(entry.txn),
                }
            }
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(
            receiver,
        ))))
    }
}
