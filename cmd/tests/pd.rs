//! End-to-end tests of the real `pd-server` binary: the official `tikv-client` for timestamps
//! and keyspaces, our own gRPC client playing a store for bootstrap, heartbeats and errors, and
//! plain HTTP/1.1 for the HTTP API.

use std::collections::HashSet;
use std::path::Path;

use cmd::process::{http_get, http_request, PdProcess};
use kvproto::{keyspacepb, metapb, pdpb};
use serde_json::Value;
use tikv_client::{Config, TimestampExt, TransactionClient};

type PdClient = pdpb::pd_client::PdClient<tonic::transport::Channel>;
type KeyspaceClient = keyspacepb::keyspace_client::KeyspaceClient<tonic::transport::Channel>;

fn start_pd(dir: &Path) -> PdProcess {
    PdProcess::start(Path::new(env!("CARGO_BIN_EXE_pd-server")), &dir.join("pd"))
        .unwrap_or_else(|e| panic!("start pd-server: {e}"))
}

async fn pd_client(pd: &PdProcess) -> PdClient {
    PdClient::connect(format!("http://{}", pd.addr()))
        .await
        .expect("connect to pd")
}

fn header(cluster_id: u64) -> Option<pdpb::RequestHeader> {
    Some(pdpb::RequestHeader {
        cluster_id,
        sender_id: 0,
    })
}

fn error_type(header: &Option<pdpb::ResponseHeader>) -> Option<pdpb::ErrorType> {
    let error = header
        .as_ref()
        .expect("responses always carry a header")
        .error
        .as_ref()?;
    Some(pdpb::ErrorType::try_from(error.r#type).expect("known error type"))
}

async fn cluster_id(client: &mut PdClient) -> u64 {
    let resp = client
        .get_members(pdpb::GetMembersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(resp.leader.is_some(), "GetMembers must name a leader");
    resp.header.unwrap().cluster_id
}

async fn take_timestamps(client: &TransactionClient, count: usize) -> Vec<u64> {
    let calls =
        (0..count).map(|_| async { client.current_timestamp().await.map(|ts| ts.version()) });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("every timestamp request succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_unique_and_increase_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut pd = start_pd(dir.path());
    let client = TransactionClient::new(vec![pd.addr()])
        .await
        .expect("official client connects");
    let versions = take_timestamps(&client, 10_000).await;
    let unique: HashSet<u64> = versions.iter().copied().collect();
    assert_eq!(unique.len(), 10_000, "all 10,000 timestamps are distinct");
    let max_before = *versions.iter().max().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let physical = max_before >> 18;
    assert!(
        physical.abs_diff(now_ms) < 10_000,
        "physical part is wall-clock ms"
    );
    drop(client);

    // A crash: the saved window must keep the next timestamps above every earlier one.
    pd.kill();
    pd.restart().unwrap();
    let client = TransactionClient::new(vec![pd.addr()])
        .await
        .expect("reconnect after restart");
    let after = client.current_timestamp().await.unwrap().version();
    assert!(after > max_before, "{after} must exceed {max_before}");

    // And a clean stop.
    drop(client);
    assert!(pd.stop(), "pd-server exits cleanly on SIGTERM");
    pd.restart().unwrap();
    let client = TransactionClient::new(vec![pd.addr()]).await.unwrap();
    assert!(client.current_timestamp().await.unwrap().version() > after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_keyspace_is_id_zero() {
    let dir = tempfile::tempdir().unwrap();
    let pd = start_pd(dir.path());
    let mut pd_grpc = pd_client(&pd).await;
    let id = cluster_id(&mut pd_grpc).await;
    let mut keyspaces = KeyspaceClient::connect(format!("http://{}", pd.addr()))
        .await
        .unwrap();
    let resp = keyspaces
        .load_keyspace(keyspacepb::LoadKeyspaceRequest {
            header: header(id),
            name: "DEFAULT".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(error_type(&resp.header), None);
    let meta = resp.keyspace.expect("DEFAULT exists");
    assert_eq!((meta.id, meta.name.as_str()), (0, "DEFAULT"));

    let missing = keyspaces
        .load_keyspace(keyspacepb::LoadKeyspaceRequest {
            header: header(id),
            name: "nope".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        error_type(&missing.header),
        Some(pdpb::ErrorType::EntryNotFound)
    );
    assert!(missing.keyspace.is_none());

    // The official client loads the keyspace while it connects.
    let client = TransactionClient::new_with_config(
        vec![pd.addr()],
        Config::default().with_default_keyspace(),
    )
    .await
    .expect("official client with the default keyspace connects");
    assert!(client.current_timestamp().await.unwrap().version() > 0);
}

async fn send_heartbeat(
    client: &mut PdClient,
    request: pdpb::RegionHeartbeatRequest,
) -> pdpb::RegionHeartbeatResponse {
    let mut responses = client
        .region_heartbeat(futures::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    responses
        .message()
        .await
        .unwrap()
        .expect("a response to this heartbeat")
}

fn first_region() -> metapb::Region {
    metapb::Region {
        id: 2,
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: 1,
        }),
        peers: vec![metapb::Peer {
            id: 3,
            store_id: 1,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_lifecycle_errors_and_durability() {
    let dir = tempfile::tempdir().unwrap();
    let mut pd = start_pd(dir.path());
    let mut client = pd_client(&pd).await;
    let id = cluster_id(&mut client).await;

    let resp = client
        .is_bootstrapped(pdpb::IsBootstrappedRequest { header: header(id) })
        .await
        .unwrap()
        .into_inner();
    assert!(!resp.bootstrapped);
    let resp = client
        .get_region(pdpb::GetRegionRequest {
            header: header(id),
            region_key: b"k".to_vec(),
            need_buckets: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        error_type(&resp.header),
        Some(pdpb::ErrorType::NotBootstrapped)
    );

    let wrong = client
        .alloc_id(pdpb::AllocIdRequest {
            header: header(id + 1),
        })
        .await
        .unwrap()
        .into_inner();
    let message = wrong
        .header
        .as_ref()
        .unwrap()
        .error
        .as_ref()
        .unwrap()
        .message
        .clone();
    assert!(message.contains("mismatch cluster id"), "{message}");
    let store_id = client
        .alloc_id(pdpb::AllocIdRequest { header: header(id) })
        .await
        .unwrap()
        .into_inner()
        .id;
    assert!(store_id > 0);

    let store = metapb::Store {
        id: 1,
        address: "127.0.0.1:20160".into(),
        ..Default::default()
    };
    let bootstrap = pdpb::BootstrapRequest {
        header: header(id),
        store: Some(store.clone()),
        region: Some(first_region()),
    };
    let resp = client
        .bootstrap(bootstrap.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(error_type(&resp.header), None);
    let again = client.bootstrap(bootstrap).await.unwrap().into_inner();
    assert_eq!(
        error_type(&again.header),
        Some(pdpb::ErrorType::AlreadyBootstrapped)
    );

    let unknown = client
        .get_store(pdpb::GetStoreRequest {
            header: header(id),
            store_id: 99,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(error_type(&unknown.header).is_some());
    let unknown = client
        .get_region_by_id(pdpb::GetRegionByIdRequest {
            header: header(id),
            region_id: 99,
            need_buckets: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        error_type(&unknown.header),
        Some(pdpb::ErrorType::RegionNotFound)
    );

    // The first heartbeat of the whole-key-space region gets a split at the DEFAULT
    // keyspace's boundaries.
    let resp = send_heartbeat(
        &mut client,
        pdpb::RegionHeartbeatRequest {
            header: header(id),
            region: Some(first_region()),
            leader: Some(first_region().peers[0]),
            approximate_size: 1 << 20,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(error_type(&resp.header), None);
    let split = resp.split_region.expect("split operator");
    assert_eq!(
        split.keys,
        codec::KeyspaceId::DEFAULT.region_boundaries().to_vec()
    );
    assert_eq!(resp.region_id, 2);

    for (proposed, in_force) in [(500, 500), (100, 500)] {
        let gc = client
            .update_gc_safe_point(pdpb::UpdateGcSafePointRequest {
                header: header(id),
                safe_point: proposed,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            gc.new_safe_point, in_force,
            "the safe point never moves back"
        );
    }

    // Everything acknowledged survives a crash.
    pd.kill();
    pd.restart().unwrap();
    let mut client = pd_client(&pd).await;
    assert_eq!(
        cluster_id(&mut client).await,
        id,
        "the cluster id is stable"
    );
    let resp = client
        .get_region(pdpb::GetRegionRequest {
            header: header(id),
            region_key: b"k".to_vec(),
            need_buckets: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.region.unwrap().id, 2);
    let resp = client
        .get_store(pdpb::GetStoreRequest {
            header: header(id),
            store_id: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.store.unwrap().address, store.address);
    let resp = client
        .get_gc_safe_point(pdpb::GetGcSafePointRequest { header: header(id) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.safe_point, 500);
    let next_id = client
        .alloc_id(pdpb::AllocIdRequest { header: header(id) })
        .await
        .unwrap()
        .into_inner()
        .id;
    assert!(next_id > store_id, "ids are never reissued");
}

fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let (status, body) = http_get(addr, path).unwrap();
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, value)
}

fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    http_request(addr, "POST", path, body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_answers_like_pd() {
    let dir = tempfile::tempdir().unwrap();
    let pd = start_pd(dir.path());
    let addr = pd.addr();
    let (status, health) = get_json(&addr, "/pd/api/v1/health");
    assert_eq!(status, 200);
    assert_eq!(health[0]["health"], true);
    let (_, members) = get_json(&addr, "/pd/api/v1/members");
    assert_eq!(
        members["leader"]["client_urls"][0],
        format!("http://{addr}")
    );

    let mut client = pd_client(&pd).await;
    let id = cluster_id(&mut client).await;
    assert_eq!(members["header"]["cluster_id"], id);
    client
        .bootstrap(pdpb::BootstrapRequest {
            header: header(id),
            store: Some(metapb::Store {
                id: 1,
                address: "127.0.0.1:20160".into(),
                ..Default::default()
            }),
            region: Some(first_region()),
        })
        .await
        .unwrap();

    let (_, regions) = get_json(&addr, "/pd/api/v1/regions");
    assert_eq!(regions["count"], 1);
    assert_eq!(regions["regions"][0]["id"], 2);
    assert_eq!(regions["regions"][0]["epoch"]["version"], 1);
    let (_, stores) = get_json(&addr, "/pd/api/v1/stores");
    assert_eq!(stores["count"], 1);
    assert_eq!(stores["stores"][0]["store"]["state_name"], "Up");
    assert_eq!(stores["stores"][0]["status"]["region_count"], 1);
    let (_, region) = get_json(&addr, "/pd/api/v1/region/id/2");
    assert_eq!(region["peers"][0]["store_id"], 1);
    let (_, region) = get_json(&addr, "/pd/api/v1/region/key/abc");
    assert_eq!(region["id"], 2);
    let (status, _) = get_json(&addr, "/pd/api/v1/region/id/77");
    assert_eq!(status, 404);
    let (_, cluster) = get_json(&addr, "/pd/api/v1/cluster");
    assert_eq!(cluster["id"], id);

    let (_, replicate) = get_json(&addr, "/pd/api/v1/config/replicate");
    assert_eq!(replicate["max-replicas"], 3);
    let (status, _) = post(
        &addr,
        "/pd/api/v1/config/replicate",
        r#"{"max-replicas": 5}"#,
    );
    assert_eq!(status, 200);
    let (_, replicate) = get_json(&addr, "/pd/api/v1/config/replicate");
    assert_eq!(replicate["max-replicas"], 5);
    let (status, _) = post(
        &addr,
        "/pd/api/v1/config/replicate",
        r#"{"max-replicas": 0}"#,
    );
    assert_eq!(status, 400);

    let (status, created) = post(&addr, "/pd/api/v2/keyspaces", r#"{"name": "tenant"}"#);
    assert_eq!(status, 200, "{created}");
    let (_, keyspace) = get_json(&addr, "/pd/api/v2/keyspaces/tenant");
    assert_eq!(keyspace["id"], 1);
    let (status, metrics) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("pd_grpc_requests_total"), "{metrics}");
}

#[test]
fn bad_data_directories_fail_clearly() {
    let binary = Path::new(env!("CARGO_BIN_EXE_pd-server"));
    let dir = tempfile::tempdir().unwrap();

    // A directory holding something else.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("STORE_IDENT"), b"not pd").unwrap();
    let err = PdProcess::start(binary, &foreign).err().expect("refused");
    assert!(err.contains("not a PD data directory"), "{err}");

    // Corrupt metadata.
    let corrupt = dir.path().join("corrupt");
    {
        let mut pd = PdProcess::start(binary, &corrupt).unwrap();
        assert!(pd.stop());
    }
    std::fs::write(corrupt.join("meta").join("CURRENT"), b"garbage\n").unwrap();
    let err = PdProcess::start(binary, &corrupt).err().expect("refused");
    assert!(err.contains("cannot open PD metadata"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
