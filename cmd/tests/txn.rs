//! End-to-end tests of transactions: the real `pd-server` and three `tikv-server` processes,
//! driven by the official `tikv-client` TransactionClient (API V1 and the default keyspace), and
//! by raw gRPC where a test must play a client that stops half-way.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmd::process::{wait_until, LocalCluster};
use kvproto::pdpb::pd_client::PdClient as PdGrpc;
use kvproto::tikvpb::tikv_client::TikvClient;
use kvproto::{kvrpcpb, metapb, pdpb};
use tikv_client::{Config, Timestamp, Transaction, TransactionClient, TransactionOptions};

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("binaries live in a directory")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

fn start_cluster(dir: &Path, tikv_config: &str) -> LocalCluster {
    start_cluster_with_pd(dir, tikv_config, "")
}

/// As [`start_cluster`], with more `[schedule]` settings for PD.
fn start_cluster_with_pd(dir: &Path, tikv_config: &str, schedule: &str) -> LocalCluster {
    let pd_config = format!("[schedule]\nmax-store-down-time = \"1h\"\n{schedule}");
    LocalCluster::start_configured(
        bin_dir(),
        dir,
        3,
        Some(&pd_config),
        tikv_config,
        Duration::from_secs(90),
    )
    .unwrap_or_else(|e| panic!("start cluster: {e}"))
}

async fn get(txn: &mut Transaction, key: &[u8]) -> Option<Vec<u8>> {
    txn.get(key.to_vec()).await.unwrap()
}

/// Reads `key` in a snapshot at a fresh timestamp.
async fn read(client: &TransactionClient, key: &[u8]) -> Option<Vec<u8>> {
    let ts = client.current_timestamp().await.unwrap();
    let mut snapshot = client.snapshot(ts, TransactionOptions::new_optimistic());
    snapshot.get(key.to_vec()).await.unwrap()
}

/// The basic life of transactions of each kind, as a user meets them.
async fn lifecycle(client: &TransactionClient, prefix: &str) {
    let key = |k: &str| format!("{prefix}{k}").into_bytes();
    // Optimistic: commit, read back, conflict.
    let mut txn = client.begin_optimistic().await.unwrap();
    txn.put(key("a"), b"1".to_vec()).await.unwrap();
    txn.put(key("b"), vec![b'b'; 1000]).await.unwrap();
    txn.commit().await.unwrap();
    let mut reader = client.begin_optimistic().await.unwrap();
    assert_eq!(get(&mut reader, &key("a")).await, Some(b"1".to_vec()));
    assert_eq!(get(&mut reader, &key("b")).await, Some(vec![b'b'; 1000]));
    assert_eq!(get(&mut reader, &key("missing")).await, None);
    let mut first = client.begin_optimistic().await.unwrap();
    let mut second = client.begin_optimistic().await.unwrap();
    first.put(key("a"), b"first".to_vec()).await.unwrap();
    second.put(key("a"), b"second".to_vec()).await.unwrap();
    first.commit().await.unwrap();
    assert!(second.commit().await.is_err(), "a write conflict");
    // The old snapshot still reads the old value.
    assert_eq!(get(&mut reader, &key("a")).await, Some(b"1".to_vec()));
    reader.rollback().await.unwrap();

    // Pessimistic: locks first; reads its own writes; delete; insert of an existing key fails.
    let mut txn = client.begin_pessimistic().await.unwrap();
    txn.put(key("c"), b"3".to_vec()).await.unwrap();
    txn.delete(key("a")).await.unwrap();
    assert_eq!(get(&mut txn, &key("c")).await, Some(b"3".to_vec()));
    txn.commit().await.unwrap();
    let mut txn = client.begin_pessimistic().await.unwrap();
    assert!(txn.insert(key("c"), b"dup".to_vec()).await.is_err());
    txn.rollback().await.unwrap();

    // Async commit and 1PC.
    let options = TransactionOptions::new_optimistic().use_async_commit();
    let mut txn = client.begin_with_options(options).await.unwrap();
    txn.put(key("d"), b"async".to_vec()).await.unwrap();
    txn.put(key("e"), b"async".to_vec()).await.unwrap();
    txn.commit().await.unwrap();
    let options = TransactionOptions::new_optimistic().try_one_pc();
    let mut txn = client.begin_with_options(options).await.unwrap();
    txn.put(key("f"), b"1pc".to_vec()).await.unwrap();
    txn.commit().await.unwrap();
    let mut snapshot = client.snapshot(
        client.current_timestamp().await.unwrap(),
        TransactionOptions::new_optimistic(),
    );
    for (k, v) in [("d", "async"), ("e", "async"), ("f", "1pc")] {
        assert_eq!(
            snapshot.get(key(k)).await.unwrap(),
            Some(v.as_bytes().to_vec()),
            "{k}"
        );
    }
    // Scans in both directions.
    let scanned: Vec<Vec<u8>> = snapshot
        .scan(key("a")..key("z"), 10)
        .await
        .unwrap()
        .map(|pair| pair.key().clone().into())
        .collect();
    let expected: Vec<Vec<u8>> = ["b", "c", "d", "e", "f"].iter().map(|k| key(k)).collect();
    assert_eq!(scanned, expected);
    let reversed: Vec<Vec<u8>> = snapshot
        .scan_reverse(key("a")..key("z"), 10)
        .await
        .unwrap()
        .map(|pair| pair.key().clone().into())
        .collect();
    assert_eq!(reversed, expected.into_iter().rev().collect::<Vec<_>>());
}

/// GC moves PD's safe point; a snapshot below it still reads committed data until GC runs.
async fn gc_and_destroy(client: &TransactionClient, prefix: &str) {
    let key = |k: &str| format!("{prefix}{k}").into_bytes();
    let safe_point = client.current_timestamp().await.unwrap();
    assert!(client.gc(safe_point).await.unwrap(), "the safe point moved");
    assert_eq!(read(client, &key("c")).await, Some(b"3".to_vec()));
}

/// SplitRegion at a client's key, RawChecksum over raw pairs, and a method this store does not
/// serve, by raw gRPC as other clients send them.
async fn region_and_raw_methods(cluster: &LocalCluster, raw: &mut RawTxn) {
    let regions_before = cluster.regions_json().unwrap()["count"].as_u64().unwrap();
    let (mut store, ctx) = raw.route(b"split-here").await;
    let resp = store
        .split_region(kvrpcpb::SplitRegionRequest {
            context: Some(ctx),
            split_keys: vec![b"split-here".to_vec()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.region_error.is_none(), "{resp:?}");
    assert_eq!(resp.regions.len(), 2);
    assert_eq!(
        resp.regions[1].start_key,
        codec::memcomparable::encode(b"split-here")
    );
    wait_until("PD to know the split", Duration::from_secs(10), || {
        cluster.regions_json().unwrap()["count"].as_u64().unwrap() > regions_before
    })
    .unwrap();

    let pd = vec![cluster.pd.addr()];
    let raw_client = tikv_client::RawClient::new(pd).await.unwrap();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..10)
        .map(|i| {
            (
                format!("sum-{i}").into_bytes(),
                format!("value-{i}").into_bytes(),
            )
        })
        .collect();
    raw_client.batch_put(pairs.clone()).await.unwrap();
    let mut expected = 0;
    for (key, value) in &pairs {
        let mut digest = crc64fast::Digest::new();
        digest.write(key);
        digest.write(value);
        expected ^= digest.sum64();
    }
    // Raw V1 keys are stored as they are: route by the raw key itself.
    let (mut store, ctx) = raw.route_raw(b"sum-").await;
    let resp = store
        .raw_checksum(kvrpcpb::RawChecksumRequest {
            context: Some(ctx),
            algorithm: kvrpcpb::ChecksumAlgorithm::Crc64Xor as i32,
            ranges: vec![kvrpcpb::KeyRange {
                start_key: b"sum-".to_vec(),
                end_key: b"sum.".to_vec(),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        resp.region_error.is_none() && resp.error.is_empty(),
        "{resp:?}"
    );
    assert_eq!((resp.checksum, resp.total_kvs), (expected, 10));
    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(resp.total_bytes, bytes as u64);

    // A method of tikvpb.Tikv this store does not serve is named in the answer.
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", cluster.stores[0].addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/tikvpb.Tikv/Coprocessor");
    let status = grpc
        .unary::<_, kvrpcpb::RawGetResponse, _>(
            tonic::Request::new(kvrpcpb::RawGetRequest::default()),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(
        status.message(),
        "Coprocessor is not supported by this store"
    );
}

#[test]
fn transactions_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster(dir.path(), "");
    let pd = vec![cluster.pd.addr()];
    runtime().block_on(async {
        let v1 = TransactionClient::new(pd.clone()).await.unwrap();
        lifecycle(&v1, "v1-").await;
        gc_and_destroy(&v1, "v1-").await;
        let v2 = TransactionClient::new_with_config(
            pd.clone(),
            Config::default().with_default_keyspace(),
        )
        .await
        .unwrap();
        lifecycle(&v2, "v2-").await;
        gc_and_destroy(&v2, "v2-").await;
        v2.unsafe_destroy_range(..).await.unwrap();
        assert_eq!(read(&v2, b"v2-c").await, None, "the range is gone");
        // V1 data is outside the destroyed keyspace.
        assert_eq!(read(&v1, b"v1-c").await, Some(b"3".to_vec()));
        let mut raw = RawTxn::connect(&cluster.pd.addr()).await;
        region_and_raw_methods(&cluster, &mut raw).await;
        // The split region serves transactions on both sides.
        lifecycle(&v1, "split-").await;
    });
}

/// A raw gRPC view of the cluster, for playing a client that stops half-way.
struct RawTxn {
    pd: PdGrpc<tonic::transport::Channel>,
    cluster_id: u64,
}

impl RawTxn {
    async fn connect(pd_addr: &str) -> RawTxn {
        let mut pd = PdGrpc::connect(format!("http://{pd_addr}")).await.unwrap();
        let members = pd
            .get_members(pdpb::GetMembersRequest::default())
            .await
            .unwrap()
            .into_inner();
        RawTxn {
            pd,
            cluster_id: members.header.unwrap().cluster_id,
        }
    }

    fn header(&self) -> Option<pdpb::RequestHeader> {
        Some(pdpb::RequestHeader {
            cluster_id: self.cluster_id,
            sender_id: 0,
        })
    }

    async fn tso(&mut self) -> u64 {
        let request = pdpb::TsoRequest {
            header: self.header(),
            count: 1,
            dc_location: String::new(),
        };
        let mut stream = self
            .pd
            .tso(tokio_stream::once(request))
            .await
            .unwrap()
            .into_inner();
        let ts = stream.message().await.unwrap().unwrap().timestamp.unwrap();
        ((ts.physical as u64) << 18) + ts.logical as u64
    }

    /// The leader's store client and the context of the region holding transactional `key`.
    async fn route(
        &mut self,
        key: &[u8],
    ) -> (TikvClient<tonic::transport::Channel>, kvrpcpb::Context) {
        self.route_raw(&codec::memcomparable::encode(key)).await
    }

    /// As [`RawTxn::route`], for a key as PD's key space holds it (raw V1 keys are themselves).
    async fn route_raw(
        &mut self,
        region_key: &[u8],
    ) -> (TikvClient<tonic::transport::Channel>, kvrpcpb::Context) {
        let region = self
            .pd
            .get_region(pdpb::GetRegionRequest {
                header: self.header(),
                region_key: region_key.to_vec(),
                need_buckets: false,
            })
            .await
            .unwrap()
            .into_inner();
        let leader: metapb::Peer = region.leader.expect("a leader");
        let store = self
            .pd
            .get_store(pdpb::GetStoreRequest {
                header: self.header(),
                store_id: leader.store_id,
            })
            .await
            .unwrap()
            .into_inner()
            .store
            .unwrap();
        let region = region.region.unwrap();
        let client = TikvClient::connect(format!("http://{}", store.address))
            .await
            .unwrap();
        let ctx = kvrpcpb::Context {
            region_id: region.id,
            region_epoch: region.region_epoch,
            peer: Some(leader),
            ..Default::default()
        };
        (client, ctx)
    }

    /// Prewrites `key = value` for each pair with `primary`, one request per key.
    async fn prewrite(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        primary: &[u8],
        start_ts: u64,
        ttl: u64,
    ) {
        for (key, value) in pairs {
            let (mut client, ctx) = self.route(key).await;
            let resp = client
                .kv_prewrite(kvrpcpb::PrewriteRequest {
                    context: Some(ctx),
                    mutations: vec![kvrpcpb::Mutation {
                        op: kvrpcpb::Op::Put as i32,
                        key: key.to_vec(),
                        value: value.to_vec(),
                        ..Default::default()
                    }],
                    primary_lock: primary.to_vec(),
                    start_version: start_ts,
                    lock_ttl: ttl,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(
                resp.region_error.is_none() && resp.errors.is_empty(),
                "{resp:?}"
            );
        }
    }

    /// Checks the transaction `lock_ts` at its primary `primary` as a resolver of a pessimistic
    /// lock does, with `current_ts` as the resolver's time.
    async fn check_txn_status(
        &mut self,
        primary: &[u8],
        lock_ts: u64,
        current_ts: u64,
    ) -> kvrpcpb::CheckTxnStatusResponse {
        let (mut client, ctx) = self.route(primary).await;
        let resp = client
            .kv_check_txn_status(kvrpcpb::CheckTxnStatusRequest {
                context: Some(ctx),
                primary_key: primary.to_vec(),
                lock_ts,
                caller_start_ts: current_ts,
                current_ts,
                rollback_if_not_exist: true,
                resolving_pessimistic_lock: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            resp.region_error.is_none() && resp.error.is_none(),
            "{resp:?}"
        );
        resp
    }

    async fn commit(&mut self, key: &[u8], start_ts: u64, commit_ts: u64) {
        let (mut client, ctx) = self.route(key).await;
        let resp = client
            .kv_commit(kvrpcpb::CommitRequest {
                context: Some(ctx),
                start_version: start_ts,
                keys: vec![key.to_vec()],
                commit_version: commit_ts,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            resp.region_error.is_none() && resp.error.is_none(),
            "{resp:?}"
        );
    }
}

/// A client that dies after committing the primary leaves its secondaries locked; the next
/// reader resolves them to the committed value. One that dies before committing leaves locks
/// that the next reader rolls back once they expire.
#[test]
fn half_committed_transactions_are_resolved_by_the_next_reader() {
    let dir = tempfile::tempdir().unwrap();
    // The hand-made transaction below asks PD for each key's leader once and does not retry a
    // moved leader as a client does: PD's leader balancer stays off.
    let cluster = start_cluster_with_pd(dir.path(), "", "leader-schedule-limit = 0\n");
    let pd_addr = cluster.pd.addr();
    runtime().block_on(async {
        let client = TransactionClient::new(vec![pd_addr.clone()]).await.unwrap();
        let mut txn = client.begin_optimistic().await.unwrap();
        for key in ["hc-primary", "hc-secondary", "ab-primary", "ab-secondary"] {
            txn.put(key.as_bytes().to_vec(), b"old".to_vec())
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();

        let mut raw = RawTxn::connect(&pd_addr).await;
        // Committed primary, secondary still locked.
        let start_ts = raw.tso().await;
        let pairs: [(&[u8], &[u8]); 2] = [(b"hc-primary", b"new"), (b"hc-secondary", b"new")];
        raw.prewrite(&pairs, b"hc-primary", start_ts, 3_600_000)
            .await;
        let commit_ts = raw.tso().await;
        raw.commit(b"hc-primary", start_ts, commit_ts).await;
        assert_eq!(read(&client, b"hc-secondary").await, Some(b"new".to_vec()));
        assert_eq!(read(&client, b"hc-primary").await, Some(b"new".to_vec()));

        // Never committed, TTL 100 ms: rolled back by a reader after it expires.
        let start_ts = raw.tso().await;
        let pairs: [(&[u8], &[u8]); 2] = [(b"ab-primary", b"lost"), (b"ab-secondary", b"lost")];
        raw.prewrite(&pairs, b"ab-primary", start_ts, 100).await;
        let started = Instant::now();
        assert_eq!(read(&client, b"ab-secondary").await, Some(b"old".to_vec()));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "resolved within the client's backoff"
        );
        // Resolving a lock resolves every lock of its transaction in the region: none is left.
        let now = client.current_timestamp().await.unwrap();
        let locks = client
            .scan_locks(&now, b"ab-".to_vec()..b"hd".to_vec(), 100)
            .await
            .unwrap();
        assert!(locks.is_empty(), "{locks:?}");
    });
}

/// The chaos bank's commit step meets the official client's flaw (see
/// `chaos::workload::bank::commit`): an async-commit transaction whose prewrite finds PD down
/// panics inside the client. The workload must end it as an unknown transfer, not die, and
/// the transaction must have written nothing.
#[test]
fn an_async_commit_that_finds_pd_down_ends_as_an_unknown_transfer() {
    use chaos::workload::bank::{commit, Mode, Transfer};

    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(dir.path(), "");
    runtime().block_on(async {
        let client = TransactionClient::new(vec![cluster.pd.addr()])
            .await
            .unwrap();
        let mut t = client
            .begin_with_options(Mode::AsyncCommit.options())
            .await
            .unwrap();
        // Puts are buffered: the new client has looked up no region yet.
        for key in ["pd-down-from", "pd-down-to"] {
            t.put(key.as_bytes().to_vec(), b"1".to_vec()).await.unwrap();
        }
        cluster.pd.kill();
        assert_eq!(commit(&mut t, &mut None).await, Transfer::ClientPanicked);
        cluster.pd.restart().unwrap();
        cluster
            .wait_until_serving(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        // A new client: the old one's timestamp stream died with PD.
        let client = TransactionClient::new(vec![cluster.pd.addr()])
            .await
            .unwrap();
        assert_eq!(read(&client, b"pd-down-from").await, None);
        assert_eq!(read(&client, b"pd-down-to").await, None);
    });
}

/// The chaos bank's pessimistic transfer guards against the official client's relocking `put`
/// (see `chaos::workload::bank::write_and_commit`): a transfer whose primary lock a resolver
/// removed as expired, while another transaction committed the account, locks the account
/// again in its `put` over that commit; it must then abort, not commit a balance computed from
/// the value it read before (a lost update, which two five-store chaos runs showed).
#[test]
fn a_pessimistic_transfer_whose_lock_was_removed_aborts_instead_of_losing_an_update() {
    use chaos::workload::bank::{
        account, read_balances, write_and_commit, Mode, Transfer, TransferTrace,
    };
    use tikv_client::TimestampExt;

    let dir = tempfile::tempdir().unwrap();
    // The hand-made CheckTxnStatus asks PD for the leader once: PD's leader balancer stays off.
    let cluster = start_cluster_with_pd(dir.path(), "", "leader-schedule-limit = 0\n");
    let pd_addr = cluster.pd.addr();
    runtime().block_on(async {
        let client = TransactionClient::new(vec![pd_addr.clone()]).await.unwrap();
        let (from, to) = (0, 1);
        let mut setup = client.begin_optimistic().await.unwrap();
        for i in [from, to] {
            setup.put(account(i), b"100".to_vec()).await.unwrap();
        }
        setup.commit().await.unwrap();

        // A reads and locks both accounts; `from`, locked first, holds its primary lock.
        let mut a = client
            .begin_with_options(Mode::Pessimistic.options())
            .await
            .unwrap();
        let mut trace = TransferTrace {
            from,
            to,
            amount: 30,
            ..TransferTrace::default()
        };
        trace.read = Some(
            read_balances(&mut a, Mode::Pessimistic, from, to)
                .await
                .unwrap(),
        );
        assert_eq!(trace.read, Some((100, 100)));

        // A resolver whose timestamps run an hour ahead (PD's clock stepped forward) finds
        // the primary lock expired and removes it without a rollback record, as TiKV does.
        let mut raw = RawTxn::connect(&pd_addr).await;
        let an_hour_ahead = raw.tso().await + (3_600_000 << 18);
        let status = raw
            .check_txn_status(&account(from), a.start_timestamp().version(), an_hour_ahead)
            .await;
        assert_eq!(
            status.action(),
            kvrpcpb::Action::TtlExpirePessimisticRollback,
            "{status:?}"
        );

        // B takes 40 from `from` and commits.
        let mut b = client
            .begin_with_options(Mode::Pessimistic.options())
            .await
            .unwrap();
        assert_eq!(
            b.get_for_update(account(from)).await.unwrap(),
            Some(b"100".to_vec())
        );
        b.put(account(from), b"60".to_vec()).await.unwrap();
        b.commit().await.unwrap();

        // A's `put` locks `from` again, granted over B's commit; the second read sees B's
        // balance, and A rolls back instead of writing 70 over it.
        assert_eq!(
            write_and_commit(&mut a, Mode::Pessimistic, &mut trace).await,
            Transfer::RelockMismatch
        );
        assert_eq!(trace.reread, Some((60, 100)));
        assert_eq!(read(&client, &account(from)).await, Some(b"60".to_vec()));
        assert_eq!(read(&client, &account(to)).await, Some(b"100".to_vec()));
    });
}

const ACCOUNTS: u64 = 20;
const INITIAL_BALANCE: u64 = 1000;

fn account(i: u64) -> Vec<u8> {
    format!("bank-{i:03}").into_bytes()
}

fn decode_balance(value: &[u8]) -> u64 {
    u64::from_be_bytes(value.try_into().expect("8-byte balance"))
}

/// Moves a random amount between two random accounts in one transaction of `kind`. Errors
/// (conflicts, a store going away) only abort the transfer.
async fn transfer(client: &TransactionClient, kind: u64, seed: &AtomicU64) -> bool {
    let n = seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    let (from, to) = (n % ACCOUNTS, (n / ACCOUNTS) % ACCOUNTS);
    if from == to {
        return false;
    }
    let amount = (n >> 32) % 50;
    let options = match kind {
        0 => TransactionOptions::new_optimistic(),
        1 => TransactionOptions::new_pessimistic(),
        _ => TransactionOptions::new_optimistic().use_async_commit(),
    };
    let Ok(mut txn) = client.begin_with_options(options).await else {
        return false;
    };
    let result: tikv_client::Result<()> = async {
        let pessimistic = kind == 1;
        let from_balance = read_balance(&mut txn, account(from), pessimistic).await?;
        let to_balance = read_balance(&mut txn, account(to), pessimistic).await?;
        let amount = amount.min(from_balance);
        txn.put(
            account(from),
            (from_balance - amount).to_be_bytes().to_vec(),
        )
        .await?;
        txn.put(account(to), (to_balance + amount).to_be_bytes().to_vec())
            .await?;
        txn.commit().await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = txn.rollback().await;
    }
    result.is_ok()
}

async fn read_balance(
    txn: &mut Transaction,
    key: Vec<u8>,
    for_update: bool,
) -> tikv_client::Result<u64> {
    let value = match for_update {
        true => txn.get_for_update(key).await?,
        false => txn.get(key).await?,
    };
    Ok(decode_balance(&value.expect("every account exists")))
}

/// The total over every account in one snapshot, or `None` if the read failed.
async fn total(client: &TransactionClient) -> Option<u64> {
    let ts: Timestamp = client.current_timestamp().await.ok()?;
    let mut snapshot = client.snapshot(ts, TransactionOptions::new_optimistic());
    let pairs: Vec<_> = snapshot
        .batch_get((0..ACCOUNTS).map(account))
        .await
        .ok()?
        .collect();
    assert_eq!(pairs.len() as u64, ACCOUNTS, "every account is visible");
    Some(pairs.iter().map(|pair| decode_balance(pair.value())).sum())
}

/// Accounts move money in optimistic, pessimistic and async-commit transactions from several
/// clients while one store is killed with -9 and restarted; every snapshot read sees the same
/// total.
#[test]
fn bank_total_is_constant_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(
        dir.path(),
        &format!(
            "[raftstore]\npd-heartbeat-tick-interval = \"1s\"\npd-store-heartbeat-tick-interval = \"1s\"\n{}",
            cmd::process::FAST_ELECTIONS
        ),
    );
    let pd = vec![cluster.pd.addr()];
    let rt = runtime();
    let client = Arc::new(rt.block_on(TransactionClient::new(pd)).unwrap());
    rt.block_on(async {
        let mut txn = client.begin_optimistic().await.unwrap();
        for i in 0..ACCOUNTS {
            txn.put(account(i), INITIAL_BALANCE.to_be_bytes().to_vec())
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
    });
    let expected = ACCOUNTS * INITIAL_BALANCE;
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let checks = Arc::new(AtomicU64::new(0));
    let mut workers = vec![];
    for worker in 0..6u64 {
        let (client, stop, committed) = (client.clone(), stop.clone(), committed.clone());
        workers.push(rt.spawn(async move {
            let seed = AtomicU64::new(worker * 7919 + 1);
            while !stop.load(Ordering::Relaxed) {
                if transfer(&client, worker % 3, &seed).await {
                    committed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let checker = {
        let (client, stop, checks) = (client.clone(), stop.clone(), checks.clone());
        rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(total) = total(&client).await {
                    assert_eq!(total, expected, "a snapshot saw money appear or vanish");
                    checks.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Each phase lasts until it saw both transfers and checked totals: the transfers alone
    // can finish a phase before the checker has read anything.
    let progress = |what: &str| {
        let (transfers, totals) = (
            committed.load(Ordering::Relaxed),
            checks.load(Ordering::Relaxed),
        );
        wait_until(what, Duration::from_secs(60), || {
            committed.load(Ordering::Relaxed) >= transfers + 30
                && checks.load(Ordering::Relaxed) >= totals + 5
        })
        .unwrap();
    };
    progress("transfers and checked totals before the crash");
    cluster.stores[1].kill();
    progress("transfers and checked totals with a store down");
    cluster.stores[1].restart().unwrap();
    progress("transfers and checked totals after the restart");
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for worker in workers {
            worker.await.unwrap();
        }
        checker.await.unwrap();
        let total = loop {
            if let Some(total) = total(&client).await {
                break total;
            }
        };
        assert_eq!(total, expected);
    });
}
