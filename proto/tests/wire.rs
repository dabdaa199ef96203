//! Wire-level checks against facts from the protocol reference
//! (field numbers, enum values and gRPC paths that `tikv-client` relies on).
//!
//! Each encoding test asserts the exact bytes prost produces, so a wrong
//! field number in a `.proto` file fails here rather than at runtime
//! against a real client.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use kvproto::{errorpb, keyspacepb, kvrpcpb, metapb, pdpb, raft_serverpb, tikvpb};
use prost::Message;
use tonic::codegen::{http, Service};

// ---------------------------------------------------------------------------
// Encoding: field numbers show up in the tag bytes.
// ---------------------------------------------------------------------------

#[test]
fn context_api_version_is_field_21() {
    let ctx = kvrpcpb::Context {
        api_version: kvrpcpb::ApiVersion::V2 as i32,
        ..Default::default()
    };
    // Tag (21 << 3 | varint) = 168 = varint 0xa8 0x01, then the value 2.
    assert_eq!(ctx.encode_to_vec(), [0xa8, 0x01, 0x02]);
}

#[test]
fn context_keyspace_id_is_field_32() {
    let ctx = kvrpcpb::Context {
        keyspace_id: 7,
        ..Default::default()
    };
    // Tag (32 << 3 | varint) = 256 = varint 0x80 0x02.
    assert_eq!(ctx.encode_to_vec(), [0x80, 0x02, 0x07]);
}

#[test]
fn raw_get_response_not_found_is_field_4() {
    let resp = kvrpcpb::RawGetResponse {
        not_found: true,
        ..Default::default()
    };
    // Tag (4 << 3 | varint) = 0x20.
    assert_eq!(resp.encode_to_vec(), [0x20, 0x01]);
}

#[test]
fn region_error_epoch_not_match_is_field_5() {
    let err = errorpb::Error {
        epoch_not_match: Some(errorpb::EpochNotMatch::default()),
        ..Default::default()
    };
    // Tag (5 << 3 | length-delimited) = 0x2a, then an empty message.
    assert_eq!(err.encode_to_vec(), [0x2a, 0x00]);
}

#[test]
fn region_error_camel_case_fields_keep_their_numbers() {
    let err = errorpb::Error {
        recovery_in_progress: Some(errorpb::RecoveryInProgress { region_id: 1 }),
        ..Default::default()
    };
    // Tag (16 << 3 | length-delimited) = 130 = varint 0x82 0x01.
    assert_eq!(err.encode_to_vec(), [0x82, 0x01, 0x02, 0x08, 0x01]);
}

#[test]
fn tso_response_timestamp_is_field_3() {
    let resp = pdpb::TsoResponse {
        count: 1,
        timestamp: Some(pdpb::Timestamp {
            physical: 5,
            logical: 6,
            suffix_bits: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        resp.encode_to_vec(),
        [
            0x10, 0x01, // count = 2:varint
            0x1a, 0x04, // timestamp = 3:message, 4 bytes
            0x08, 0x05, // physical = 1
            0x10, 0x06, // logical = 2
        ]
    );
}

#[test]
fn keyspace_meta_id_is_field_1() {
    let meta = keyspacepb::KeyspaceMeta {
        id: 1,
        ..Default::default()
    };
    assert_eq!(meta.encode_to_vec(), [0x08, 0x01]);
}

#[test]
fn lock_info_is_txn_file_is_field_100() {
    let lock = kvrpcpb::LockInfo {
        is_txn_file: true,
        ..Default::default()
    };
    // Tag (100 << 3 | varint) = 800 = varint 0xa0 0x06.
    assert_eq!(lock.encode_to_vec(), [0xa0, 0x06, 0x01]);
}

#[test]
fn key_error_txn_not_found_is_field_8() {
    let err = kvrpcpb::KeyError {
        txn_not_found: Some(kvrpcpb::TxnNotFound {
            start_ts: 3,
            primary_key: b"k".to_vec(),
        }),
        ..Default::default()
    };
    assert_eq!(
        err.encode_to_vec(),
        [0x42, 0x05, 0x08, 0x03, 0x12, 0x01, b'k']
    );
}

#[test]
fn region_heartbeat_operator_change_peer_uses_raft_conf_change_numbers() {
    let resp = pdpb::RegionHeartbeatResponse {
        change_peer: Some(pdpb::ChangePeer {
            peer: None,
            change_type: pdpb::ConfChangeType::AddLearnerNode as i32,
        }),
        region_id: 9,
        ..Default::default()
    };
    assert_eq!(
        resp.encode_to_vec(),
        [
            0x12, 0x02, 0x10, 0x02, // change_peer = 2 { change_type = 2: AddLearnerNode(2) }
            0x20, 0x09, // region_id = 4
        ]
    );
}

#[test]
fn raft_message_payload_is_field_4_bytes() {
    let msg = raft_serverpb::RaftMessage {
        region_id: 2,
        message: vec![0xde, 0xad].into(),
        ..Default::default()
    };
    assert_eq!(msg.encode_to_vec(), [0x08, 0x02, 0x22, 0x02, 0xde, 0xad]);
}

// ---------------------------------------------------------------------------
// Decoding: hand-written bytes, as another implementation would send them.
// ---------------------------------------------------------------------------

#[test]
fn get_region_response_decodes_epoch_and_leader() {
    let bytes = [
        0x0a, 0x00, // header = 1 (present, empty)
        0x12, 0x08, // region = 2, 8 bytes
        0x08, 0x03, //   id = 1
        0x22, 0x04, //   region_epoch = 4, 4 bytes
        0x08, 0x01, //     conf_ver = 1
        0x10, 0x02, //     version = 2
        0x1a, 0x04, // leader = 3, 4 bytes
        0x08, 0x04, //   id = 1
        0x10, 0x01, //   store_id = 2
    ];
    let resp = pdpb::GetRegionResponse::decode(&bytes[..]).unwrap();
    assert!(resp.header.is_some());
    let region = resp.region.unwrap();
    assert_eq!(region.id, 3);
    assert_eq!(
        region.region_epoch,
        Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: 2
        })
    );
    let leader = resp.leader.unwrap();
    assert_eq!((leader.id, leader.store_id), (4, 1));
}

#[test]
fn fields_we_do_not_model_are_skipped() {
    // GetResponse with value = 3, not_found = 4 and an upstream-only
    // exec_details_v2 = 6 message that our subset leaves out.
    let bytes = [
        0x1a, 0x01, b'v', // value = 3
        0x32, 0x02, 0x08, 0x01, // exec_details_v2 = 6 (unknown to us)
        0x20, 0x01, // not_found = 4
    ];
    let resp = kvrpcpb::GetResponse::decode(&bytes[..]).unwrap();
    assert_eq!(resp.value, b"v");
    assert!(resp.not_found);
}

#[test]
fn check_txn_status_action_values() {
    // action = 5 with value 5 (LockNotExistDoNothing).
    let resp = kvrpcpb::CheckTxnStatusResponse::decode(&[0x28, 0x05][..]).unwrap();
    assert_eq!(resp.action(), kvrpcpb::Action::LockNotExistDoNothing);
}

#[test]
fn store_state_values() {
    // state = 3 with value 2 (Tombstone), address = 2.
    let bytes = [0x12, 0x01, b'a', 0x18, 0x02];
    let store = metapb::Store::decode(&bytes[..]).unwrap();
    assert_eq!(store.address, "a");
    assert_eq!(store.state(), metapb::StoreState::Tombstone);
}

// ---------------------------------------------------------------------------
// gRPC paths, observed through the generated clients.
// ---------------------------------------------------------------------------

/// A transport that records each request path and answers every call with
/// a trailers-only `UNIMPLEMENTED` gRPC response.
#[derive(Clone, Default)]
struct RecordingTransport {
    paths: Arc<Mutex<Vec<String>>>,
}

impl Service<http::Request<tonic::body::Body>> for RecordingTransport {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        self.paths.lock().unwrap().push(req.uri().path().to_owned());
        let resp = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .body(tonic::body::Body::empty())
            .unwrap();
        ready(Ok(resp))
    }
}

impl RecordingTransport {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.paths.lock().unwrap())
    }
}

/// Drives a future that never needs to wait (the transport answers
/// synchronously) to completion without an async runtime.
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("future did not complete");
}

#[test]
fn tikv_method_paths() {
    let transport = RecordingTransport::default();
    let mut client = tikvpb::tikv_client::TikvClient::new(transport.clone());

    let status =
        block_on(client.kv_pessimistic_rollback(kvrpcpb::PessimisticRollbackRequest::default()))
            .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let _ = block_on(client.raw_compare_and_swap(kvrpcpb::RawCasRequest::default()));
    let _ = block_on(client.raw_get_key_ttl(kvrpcpb::RawGetKeyTtlRequest::default()));
    let _ = block_on(client.kv_gc(kvrpcpb::GcRequest::default()));

    assert_eq!(
        transport.take(),
        [
            "/tikvpb.Tikv/KVPessimisticRollback",
            "/tikvpb.Tikv/RawCompareAndSwap",
            "/tikvpb.Tikv/RawGetKeyTTL",
            "/tikvpb.Tikv/KvGC",
        ]
    );
}

#[test]
fn pd_and_keyspace_method_paths() {
    let transport = RecordingTransport::default();
    let mut pd = pdpb::pd_client::PdClient::new(transport.clone());
    let _ = block_on(pd.get_members(pdpb::GetMembersRequest::default()));
    let _ = block_on(pd.get_region_by_id(pdpb::GetRegionByIdRequest::default()));
    let _ = block_on(pd.update_gc_safe_point(pdpb::UpdateGcSafePointRequest::default()));
    let _ = block_on(pd.alloc_id(pdpb::AllocIdRequest::default()));

    let mut ks = keyspacepb::keyspace_client::KeyspaceClient::new(transport.clone());
    let _ = block_on(ks.load_keyspace(keyspacepb::LoadKeyspaceRequest::default()));

    assert_eq!(
        transport.take(),
        [
            "/pdpb.PD/GetMembers",
            "/pdpb.PD/GetRegionByID",
            "/pdpb.PD/UpdateGCSafePoint",
            "/pdpb.PD/AllocID",
            "/keyspacepb.Keyspace/LoadKeyspace",
        ]
    );
}

/// Compile-time check that the generated server trait has the methods a
/// TiKV server must implement under their expected Rust names.
#[allow(dead_code)]
fn server_traits_have_expected_methods<T, P, R>()
where
    T: tikvpb::tikv_server::Tikv,
    P: pdpb::pd_server::Pd,
    R: raft_serverpb::raft_transport_server::RaftTransport,
{
    let _ = T::kv_pessimistic_rollback;
    let _ = T::raw_compare_and_swap;
    let _ = T::unsafe_destroy_range;
    let _ = P::tso;
    let _ = P::region_heartbeat;
    let _ = R::batch_raft;
    let _ = R::snapshot;
}
