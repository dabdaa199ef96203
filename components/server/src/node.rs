//! Joining the cluster (seed: `Node::start`): the store ident, bootstrapping the cluster with
//! the first region, and registering the store with PD.
//!
//! Bootstrap survives a crash at any point: the first region is prepared locally (marked with
//! the prepare-bootstrap key) before PD is asked; on restart a prepared region is either
//! confirmed by PD (another attempt succeeded) or cleared (another store won).

use std::time::Duration;

use engine_traits::{KvEngine, Mutable, WriteBatch, WriteOptions, CF_RAFT};
use kvproto::raft_serverpb::{PeerState, RegionLocalState, StoreIdent};
use kvproto::{metapb, pdpb};
use pd_client::PdClient;
use prost::Message as _;
use raft_log_engine::{clear_region, RaftLogEngine};
use raftstore::peer_storage::{
    load_all_region_states, write_initial_apply_state, write_initial_raft_state,
};
use tracing::{info, warn};
use types::RegionId;

use crate::ServerError;

/// Retries a PD call until it succeeds or PD refuses it with an error of its own.
async fn retry<T, F, Fut>(what: &str, mut call: F) -> Result<T, pd_client::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, pd_client::Error>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if e.pd_error_type().is_some() => return Err(e),
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "{what} failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
        }
    }
}

fn pd_error(what: &str, e: pd_client::Error) -> ServerError {
    ServerError::Pd(format!("{what}: {e}"))
}

/// Returns this store's id, allocating and persisting it on first start.
///
/// # Errors
///
/// [`ServerError::ClusterIdMismatch`] if the data directory belongs to another cluster;
/// [`ServerError::Data`] for a directory with regions but no ident.
pub async fn load_or_create_store_id<EK: KvEngine>(
    pd: &PdClient,
    kv: &EK,
) -> Result<u64, ServerError> {
    if let Some(bytes) = kv.get_value_cf(CF_RAFT, keys::STORE_IDENT_KEY)? {
        let ident = StoreIdent::decode(bytes.as_slice())
            .map_err(|e| ServerError::Data(format!("store ident is corrupt: {e}")))?;
        if ident.cluster_id != pd.cluster_id() {
            return Err(ServerError::ClusterIdMismatch {
                local: ident.cluster_id,
                pd: pd.cluster_id(),
            });
        }
        return Ok(ident.store_id);
    }
    if !load_all_region_states(kv)
        .map_err(|e| ServerError::Data(e.to_string()))?
        .is_empty()
    {
        return Err(ServerError::Data(
            "the data directory holds regions but no store ident; use an empty --data-dir".into(),
        ));
    }
    let store_id = retry("allocating the store id", || pd.alloc_id())
        .await
        .map_err(|e| pd_error("allocate store id", e))?;
    let ident = StoreIdent {
        cluster_id: pd.cluster_id(),
        store_id,
    };
    let mut batch = kv.write_batch();
    batch.put_cf(CF_RAFT, keys::STORE_IDENT_KEY, &ident.encode_to_vec())?;
    batch.write_opt(WriteOptions { sync: true })?;
    info!(
        store_id,
        cluster_id = ident.cluster_id,
        "store ident written"
    );
    Ok(store_id)
}

fn prepared_region<EK: KvEngine>(kv: &EK) -> Result<Option<metapb::Region>, ServerError> {
    let Some(bytes) = kv.get_value_cf(CF_RAFT, keys::PREPARE_BOOTSTRAP_KEY)? else {
        return Ok(None);
    };
    let state = RegionLocalState::decode(bytes.as_slice())
        .map_err(|e| ServerError::Data(format!("prepared bootstrap region is corrupt: {e}")))?;
    Ok(state.region)
}

async fn prepare_region<EK: KvEngine, ER: RaftLogEngine>(
    pd: &PdClient,
    kv: &EK,
    raft: &ER,
    store_id: u64,
) -> Result<metapb::Region, ServerError> {
    let region_id = retry("allocating the first region id", || pd.alloc_id())
        .await
        .map_err(|e| pd_error("allocate region id", e))?;
    let peer_id = retry("allocating the first peer id", || pd.alloc_id())
        .await
        .map_err(|e| pd_error("allocate peer id", e))?;
    let region = metapb::Region {
        id: region_id,
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: 1,
            version: 1,
        }),
        peers: vec![metapb::Peer {
            id: peer_id,
            store_id,
            ..Default::default()
        }],
        ..Default::default()
    };
    write_initial_raft_state(raft, &region).map_err(|e| ServerError::Data(e.to_string()))?;
    let mut batch = kv.write_batch();
    let state = RegionLocalState {
        state: PeerState::Normal as i32,
        region: Some(region.clone()),
    };
    batch.put_cf(CF_RAFT, keys::PREPARE_BOOTSTRAP_KEY, &state.encode_to_vec())?;
    write_initial_apply_state(&mut batch, &region).map_err(|e| ServerError::Data(e.to_string()))?;
    batch.write_opt(WriteOptions { sync: true })?;
    info!(region_id, "first region prepared for bootstrap");
    Ok(region)
}

fn finish_prepared<EK: KvEngine, ER: RaftLogEngine>(
    kv: &EK,
    raft: &ER,
    region: &metapb::Region,
    keep: bool,
) -> Result<(), ServerError> {
    let mut batch = kv.write_batch();
    batch.delete_cf(CF_RAFT, keys::PREPARE_BOOTSTRAP_KEY)?;
    if !keep {
        batch.delete_cf(CF_RAFT, &keys::region_state_key(region.id))?;
        batch.delete_cf(CF_RAFT, &keys::apply_state_key(region.id))?;
    }
    batch.write_opt(WriteOptions { sync: true })?;
    if !keep {
        clear_region(raft, RegionId(region.id)).map_err(|e| ServerError::Data(e.to_string()))?;
        info!(
            region_id = region.id,
            "cluster was bootstrapped by another store; prepared region cleared"
        );
    }
    Ok(())
}

/// Bootstraps the cluster with this store's first region if PD says nobody has.
///
/// # Errors
///
/// PD refusing for a reason other than "already bootstrapped"; engine errors.
pub async fn bootstrap_cluster<EK: KvEngine, ER: RaftLogEngine>(
    pd: &PdClient,
    kv: &EK,
    raft: &ER,
    store: metapb::Store,
) -> Result<(), ServerError> {
    let bootstrapped = retry("asking PD whether the cluster is bootstrapped", || {
        pd.is_cluster_bootstrapped()
    })
    .await
    .map_err(|e| pd_error("check bootstrap", e))?;
    let prepared = prepared_region(kv)?;
    if bootstrapped {
        if let Some(region) = prepared {
            // Our own earlier attempt may have succeeded right before a crash. Only PD's
            // answer decides: a transient error must not make us clear the cluster's first
            // region.
            let answer = retry(
                "asking PD whether our first region was bootstrapped",
                || async {
                    match pd.get_region_by_id(region.id).await {
                        Ok(_) => Ok(true),
                        // PD answers an unknown region without one (or, ours, with an error).
                        Err(pd_client::Error::Incomplete { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                },
            )
            .await;
            let ours = prepared_region_is_ours(answer)?;
            finish_prepared(kv, raft, &region, ours)?;
        }
        return Ok(());
    }
    let region = match prepared {
        Some(region) => region,
        None => prepare_region(pd, kv, raft, store.id).await?,
    };
    let result = retry("bootstrapping the cluster", || {
        pd.bootstrap_cluster(store.clone(), region.clone())
    })
    .await;
    match result {
        Ok(()) => {
            info!(
                cluster_id = pd.cluster_id(),
                region_id = region.id,
                "cluster bootstrapped"
            );
            finish_prepared(kv, raft, &region, true)
        }
        Err(e) if e.pd_error_type() == Some(pdpb::ErrorType::AlreadyBootstrapped) => {
            finish_prepared(kv, raft, &region, false)
        }
        Err(e) => Err(pd_error("bootstrap cluster", e)),
    }
}

/// Whether PD's definitive answer says our prepared first region is the cluster's. Transport
/// errors were retried before; any PD error but RegionNotFound is passed on, never taken for
/// "not ours".
fn prepared_region_is_ours(answer: Result<bool, pd_client::Error>) -> Result<bool, ServerError> {
    match answer {
        Ok(ours) => Ok(ours),
        Err(e) if e.pd_error_type() == Some(pdpb::ErrorType::RegionNotFound) => Ok(false),
        Err(e) => Err(pd_error("check the prepared first region", e)),
    }
}

/// Registers (or updates) the store with PD, retrying until PD answers.
///
/// # Errors
///
/// PD refusing the store (for example another store already has this address).
pub async fn put_store(pd: &PdClient, store: metapb::Store) -> Result<(), ServerError> {
    retry("registering the store with PD", || {
        pd.put_store(store.clone())
    })
    .await
    .map_err(|e| pd_error("put store", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9, bug 11: any failure to read the region from PD (a transient one included)
    /// counted as "another store bootstrapped", and the store cleared its first region.
    #[test]
    fn only_region_not_found_means_the_prepared_region_is_not_ours() {
        assert!(prepared_region_is_ours(Ok(true)).unwrap());
        assert!(!prepared_region_is_ours(Ok(false)).unwrap());
        let not_found = pd_client::Error::Pd {
            kind: pdpb::ErrorType::RegionNotFound,
            message: "region 2 not found".into(),
        };
        assert!(!prepared_region_is_ours(Err(not_found)).unwrap());
        let other = pd_client::Error::Pd {
            kind: pdpb::ErrorType::NotBootstrapped,
            message: "not bootstrapped".into(),
        };
        assert!(prepared_region_is_ours(Err(other)).is_err());
        let unreachable = pd_client::Error::Unreachable {
            endpoints: "127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert!(prepared_region_is_ours(Err(unreachable)).is_err());
    }
}
