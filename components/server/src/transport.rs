//! Sending raft messages to other stores (seed: `ServerTransport` / `RaftClient`): one task per
//! destination store resolves its address through PD, keeps a `BatchRaft` stream open and
//! batches whatever is queued. Snapshot messages go through the `Snapshot` RPC in chunks.
//! Undeliverable messages are reported to their peer as unreachable, so raft backs off.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kvproto::metapb;
use kvproto::raft_serverpb::{
    raft_transport_client::RaftTransportClient, RaftMessage, RaftMessageBatch, SnapshotChunk,
};
use parking_lot::Mutex;
use pd_client::PdClient;
use raftstore::{PeerMsg, RouterHandle, Transport};
use thread_local::ThreadLocal;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};
use tracing::{info, warn};
use types::{PeerId, RegionId};

/// Raft messages per batch, and bytes of snapshot data per chunk.
const MAX_BATCH: usize = 128;
const SNAPSHOT_CHUNK: usize = 1 << 20;
/// gRPC message limit for store-to-store traffic (entries may be up to 8 MiB).
pub const MAX_RAFT_MESSAGE_SIZE: usize = 128 << 20;

pub struct ServerTransport<R: RouterHandle> {
    inner: Arc<Inner<R>>,
}

struct Inner<R: RouterHandle> {
    cluster_id: u64,
    resolver: AddressResolver<Arc<PdClient>>,
    router: R,
    runtime: Handle,
    /// The queue of each destination store's connection task.
    senders: Mutex<HashMap<u64, StoreSender>>,
    /// Each sending thread's copy of `senders`, so that a raft poller's sends take no lock
    /// shared by all threads; refreshed when a queue is missing or closed.
    cached_senders: ThreadLocal<RefCell<HashMap<u64, StoreSender>>>,
}

type StoreSender = mpsc::UnboundedSender<Outgoing>;

impl<R: RouterHandle> Clone for ServerTransport<R> {
    fn clone(&self) -> Self {
        ServerTransport {
            inner: self.inner.clone(),
        }
    }
}

impl<R: RouterHandle> ServerTransport<R> {
    pub fn new(cluster_id: u64, pd: Arc<PdClient>, router: R, runtime: Handle) -> Self {
        ServerTransport {
            inner: Arc::new(Inner {
                cluster_id,
                resolver: AddressResolver::new(pd),
                router,
                runtime,
                senders: Mutex::default(),
                cached_senders: ThreadLocal::new(),
            }),
        }
    }
}

/// A queued message, and whether it carries a snapshot (sent in chunks on its own stream).
struct Outgoing {
    msg: RaftMessage,
    snapshot: bool,
}

impl<R: RouterHandle> Transport for ServerTransport<R> {
    fn send(&self, msg: RaftMessage) {
        self.queue(Outgoing {
            msg,
            snapshot: false,
        });
    }

    fn send_snapshot(&self, msg: RaftMessage) {
        self.queue(Outgoing {
            msg,
            snapshot: true,
        });
    }
}

impl<R: RouterHandle> ServerTransport<R> {
    fn queue(&self, out: Outgoing) {
        let Some(store_id) = out.msg.to_peer.map(|p| p.store_id) else {
            return;
        };
        let cache = self.inner.cached_senders.get_or_default();
        let cached = cache.borrow().get(&store_id).cloned();
        let out = match cached {
            Some(sender) => match sender.send(out) {
                Ok(()) => return,
                // The connection task ended; start another below.
                Err(e) => e.0,
            },
            None => out,
        };
        let sender = {
            let mut senders = self.inner.senders.lock();
            let sender = senders
                .entry(store_id)
                .and_modify(|sender| {
                    if sender.is_closed() {
                        *sender = self.connect(store_id);
                    }
                })
                .or_insert_with(|| self.connect(store_id));
            sender.clone()
        };
        cache.borrow_mut().insert(store_id, sender.clone());
        if let Err(e) = sender.send(out) {
            report_unreachable(&self.inner.router, &e.0.msg);
        }
    }

    /// Starts the connection task of `store_id`; returns its queue.
    fn connect(&self, store_id: u64) -> StoreSender {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.inner
            .runtime
            .spawn(run_store_connection(self.inner.clone(), store_id, receiver));
        sender
    }
}

fn report_unreachable<R: RouterHandle>(router: &R, msg: &RaftMessage) {
    if let Some(to) = msg.to_peer {
        router.send_peer(
            RegionId(msg.region_id),
            PeerMsg::Unreachable {
                to_peer_id: PeerId(to.id),
            },
        );
    }
}

/// Where a store's address comes from.
pub trait StoreDirectory: Send + Sync + 'static {
    fn store(&self, store_id: u64) -> BoxFuture<'_, Result<metapb::Store, String>>;
}

impl StoreDirectory for Arc<PdClient> {
    fn store(&self, store_id: u64) -> BoxFuture<'_, Result<metapb::Store, String>> {
        Box::pin(async move { self.get_store(store_id).await.map_err(|e| e.to_string()) })
    }
}

/// Store addresses from PD, remembered: when PD cannot be asked (it is down or has no
/// leader), the last address PD gave is used, so that stores keep reaching each other.
pub struct AddressResolver<D: StoreDirectory> {
    directory: D,
    known: Mutex<HashMap<u64, String>>,
}

impl<D: StoreDirectory> AddressResolver<D> {
    pub fn new(directory: D) -> Self {
        AddressResolver {
            directory,
            known: Mutex::default(),
        }
    }

    /// The store's raft address: PD's current one, else the last one PD gave.
    ///
    /// # Errors
    ///
    /// PD's failure, when no address of the store is known.
    pub async fn resolve(&self, store_id: u64) -> Result<String, String> {
        match self.directory.store(store_id).await {
            Ok(store) => {
                let address = if store.peer_address.is_empty() {
                    store.address
                } else {
                    store.peer_address
                };
                self.known.lock().insert(store_id, address.clone());
                Ok(address)
            }
            Err(e) => match self.known.lock().get(&store_id) {
                Some(address) => {
                    warn!(store_id, error = %e, %address, "PD cannot resolve the store; using its last known address");
                    Ok(address.clone())
                }
                None => Err(format!("resolve store {store_id}: {e}")),
            },
        }
    }
}

impl<D: StoreDirectory> AddressResolver<D> {
    /// A gRPC channel to the store, at the address [`AddressResolver::resolve`] gives.
    ///
    /// # Errors
    ///
    /// The store cannot be resolved or reached.
    pub async fn connect(&self, store_id: u64) -> Result<Channel, String> {
        let address = self.resolve(store_id).await?;
        Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| format!("store {store_id} address {address:?}: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .tcp_keepalive(Some(Duration::from_secs(10)))
            .connect()
            .await
            .map_err(|e| format!("connect to store {store_id} at {address}: {e}"))
    }
}

/// Delivers messages to one store for as long as the transport lives, reconnecting as needed.
async fn run_store_connection<R: RouterHandle>(
    inner: Arc<Inner<R>>,
    store_id: u64,
    mut receiver: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let channel = match inner.resolver.connect(store_id).await {
            Ok(channel) => {
                backoff = Duration::from_millis(100);
                channel
            }
            Err(reason) => {
                warn!(store_id, %reason, "store unreachable; dropping queued raft messages");
                while let Ok(out) = receiver.try_recv() {
                    report_unreachable(&inner.router, &out.msg);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(3));
                continue;
            }
        };
        let client = RaftTransportClient::new(channel)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_SIZE)
            .max_decoding_message_size(MAX_RAFT_MESSAGE_SIZE);
        info!(store_id, "raft connection established");
        if !pump_messages(&inner, client, &mut receiver).await {
            return;
        }
    }
}

/// Forwards queued messages over one `BatchRaft` stream. Returns false once the transport is
/// gone (the queue closed), true when the stream broke and a reconnect is due.
async fn pump_messages<R: RouterHandle>(
    inner: &Arc<Inner<R>>,
    client: RaftTransportClient<Channel>,
    receiver: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> bool {
    let (batch_sender, batch_receiver) = mpsc::channel::<RaftMessageBatch>(64);
    let mut stream_client = client.clone();
    let mut call = tokio::spawn(async move {
        stream_client
            .batch_raft(tokio_stream::wrappers::ReceiverStream::new(batch_receiver))
            .await
    });
    loop {
        let first = tokio::select! {
            msg = receiver.recv() => msg,
            result = &mut call => {
                warn!(result = ?result.map(|r| r.map(|_| ())), "raft stream ended; reconnecting");
                return true;
            }
        };
        let Some(first) = first else {
            return false;
        };
        let mut msgs = vec![first];
        while msgs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(msg) => msgs.push(msg),
                Err(_) => break,
            }
        }
        let mut normal = Vec::with_capacity(msgs.len());
        for out in msgs {
            if out.snapshot {
                tokio::spawn(send_snapshot(inner.clone(), client.clone(), out.msg));
            } else {
                normal.push(out.msg);
            }
        }
        if normal.is_empty() {
            continue;
        }
        let batch = RaftMessageBatch {
            msgs: normal,
            cluster_id: inner.cluster_id,
        };
        if let Err(e) = batch_sender.send(batch).await {
            for msg in &e.0.msgs {
                report_unreachable(&inner.router, msg);
            }
            return true;
        }
    }
}

async fn send_snapshot<R: RouterHandle>(
    inner: Arc<Inner<R>>,
    mut client: RaftTransportClient<Channel>,
    mut msg: RaftMessage,
) {
    let region_id = msg.region_id;
    let to_peer_id = msg.to_peer.map_or(0, |p| p.id);
    let data = std::mem::take(&mut msg.message);
    let total = data.len();
    let mut chunks = Vec::new();
    let mut first = Some(msg);
    for piece in data.chunks(SNAPSHOT_CHUNK) {
        chunks.push(SnapshotChunk {
            message: first.take(),
            data: piece.to_vec(),
            cluster_id: inner.cluster_id,
        });
    }
    if let Some(message) = first {
        chunks.push(SnapshotChunk {
            message: Some(message),
            data: Vec::new(),
            cluster_id: inner.cluster_id,
        });
    }
    let result = client.snapshot(futures::stream::iter(chunks)).await;
    let finished = result.is_ok();
    match result {
        Ok(_) => info!(region_id, to_peer_id, bytes = total, "snapshot sent"),
        Err(status) => warn!(region_id, to_peer_id, %status, "sending snapshot failed"),
    }
    inner.router.send_peer(
        RegionId(region_id),
        PeerMsg::SnapshotStatus {
            to_peer_id: PeerId(to_peer_id),
            finished,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A PD that can be taken down.
    struct FlakyPd {
        up: AtomicBool,
    }

    impl StoreDirectory for FlakyPd {
        fn store(&self, store_id: u64) -> BoxFuture<'_, Result<metapb::Store, String>> {
            let up = self.up.load(Ordering::SeqCst);
            Box::pin(async move {
                if !up {
                    return Err("PD is down".into());
                }
                Ok(metapb::Store {
                    id: store_id,
                    address: format!("10.0.0.{store_id}:20160"),
                    ..Default::default()
                })
            })
        }
    }

    /// Issue 9, bug 11: every reconnect asked PD, so a store that restarted while PD was down
    /// could not be reached.
    #[tokio::test]
    async fn a_known_address_outlives_pd() {
        let resolver = AddressResolver::new(FlakyPd {
            up: AtomicBool::new(true),
        });
        assert_eq!(resolver.resolve(2).await.unwrap(), "10.0.0.2:20160");
        resolver.directory.up.store(false, Ordering::SeqCst);
        assert_eq!(resolver.resolve(2).await.unwrap(), "10.0.0.2:20160");
        assert!(resolver.resolve(3).await.is_err(), "never resolved before");
    }
}
