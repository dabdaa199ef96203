//! Raw KV calls through [`Cluster::call`], answered as the official client would see them.

use std::time::Duration;

use futures::FutureExt;
use kvproto::kvrpcpb;
use storage::raw::service;

use crate::cluster::{CallError, Cluster};

/// How a raw call ended for the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum RawError {
    /// The store answered with an error the client reports without retrying.
    Failed(String),
    /// Region errors until the deadline.
    GaveUp(CallError),
}

const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn outcome(error: String) -> Result<(), RawError> {
    if error.is_empty() {
        Ok(())
    } else {
        Err(RawError::Failed(error))
    }
}

impl Cluster {
    pub fn raw_put(&self, key: &[u8], value: &[u8]) -> Result<(), RawError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        let response = self
            .call(
                &key.clone(),
                CALL_TIMEOUT,
                move |storage, ctx| {
                    // As a client in atomic mode sends it: ordered with compare-and-swaps.
                    let req = kvrpcpb::RawPutRequest {
                        context: Some(ctx),
                        key: key.clone(),
                        value: value.clone(),
                        for_cas: true,
                        ..Default::default()
                    };
                    async move { service::raw_put(storage.raw(), req).await }.boxed()
                },
                |resp| resp.region_error.clone(),
            )
            .map_err(RawError::GaveUp)?;
        outcome(response.error)
    }

    pub fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, RawError> {
        let key = key.to_vec();
        let response = self
            .call(
                &key.clone(),
                CALL_TIMEOUT,
                move |storage, ctx| {
                    let req = kvrpcpb::RawGetRequest {
                        context: Some(ctx),
                        key: key.clone(),
                        ..Default::default()
                    };
                    async move { service::raw_get(storage.raw(), req).await }.boxed()
                },
                |resp| resp.region_error.clone(),
            )
            .map_err(RawError::GaveUp)?;
        outcome(response.error)?;
        Ok((!response.not_found).then_some(response.value))
    }

    /// Compare-and-swap (atomic mode): sets `value` if the current value is `expected`
    /// (`None`: absent). Returns whether it swapped and the value it found.
    pub fn raw_cas(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(bool, Option<Vec<u8>>), RawError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        let expected = expected.map(<[u8]>::to_vec);
        let response = self
            .call(
                &key.clone(),
                CALL_TIMEOUT,
                move |storage, ctx| {
                    let req = kvrpcpb::RawCasRequest {
                        context: Some(ctx),
                        key: key.clone(),
                        value: value.clone(),
                        previous_not_exist: expected.is_none(),
                        previous_value: expected.clone().unwrap_or_default(),
                        ..Default::default()
                    };
                    async move { service::raw_compare_and_swap(storage.raw(), req).await }.boxed()
                },
                |resp| resp.region_error.clone(),
            )
            .map_err(RawError::GaveUp)?;
        outcome(response.error.clone())?;
        let previous = (!response.previous_not_exist).then_some(response.previous_value);
        Ok((response.succeed, previous))
    }

    pub fn must_put(&self, key: &[u8], value: &[u8]) {
        if let Err(e) = self.raw_put(key, value) {
            panic!("put {key:?} failed: {e:?} (seed {})", self.cfg.seed);
        }
    }

    pub fn must_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.raw_get(key) {
            Ok(value) => value,
            Err(e) => panic!("get {key:?} failed: {e:?} (seed {})", self.cfg.seed),
        }
    }
}
