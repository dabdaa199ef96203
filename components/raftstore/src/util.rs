//! Checks shared by proposing and applying: region epochs, key ranges, peer lookup; the
//! tombstone message.

use kvproto::metapb;
use kvproto::raft_cmdpb::{AdminCmdType, RaftCmdRequest};
use kvproto::raft_serverpb::RaftMessage;
use types::{PeerId, StoreId};

use crate::errors::{Error, Result};

/// A message telling the replica `to` of `region_id` that it was removed from its region (as of
/// `epoch`) and must destroy itself (TiKV's gc message).
pub fn tombstone_message(
    region_id: u64,
    from: metapb::Peer,
    to: metapb::Peer,
    epoch: Option<metapb::RegionEpoch>,
) -> RaftMessage {
    RaftMessage {
        region_id,
        from_peer: Some(from),
        to_peer: Some(to),
        region_epoch: epoch,
        is_tombstone: true,
        ..Default::default()
    }
}

/// Returns the peer of `region` on `store_id`.
pub fn find_peer(region: &metapb::Region, store_id: StoreId) -> Option<&metapb::Peer> {
    region.peers.iter().find(|p| p.store_id == store_id.get())
}

/// Returns the peer of `region` with id `peer_id`.
pub fn find_peer_by_id(region: &metapb::Region, peer_id: PeerId) -> Option<&metapb::Peer> {
    region.peers.iter().find(|p| p.id == peer_id.get())
}

/// Which parts of the epoch a command depends on: `(conf_ver, version)`.
fn epoch_checks(req: &RaftCmdRequest) -> (bool, bool) {
    match req.admin_request.as_ref().map(|a| a.cmd_type()) {
        None => (false, true),
        Some(AdminCmdType::ChangePeer) => (true, false),
        Some(AdminCmdType::BatchSplit) => (false, true),
        Some(AdminCmdType::TransferLeader) => (true, true),
        Some(AdminCmdType::CompactLog | AdminCmdType::InvalidAdmin) => (false, false),
    }
}

/// Checks that the request was made for the region's current epoch (the parts the command
/// depends on), as TiKV does before proposing and again before applying.
///
/// # Errors
///
/// [`Error::EpochNotMatch`] carrying the current region.
pub fn check_region_epoch(req: &RaftCmdRequest, region: &metapb::Region) -> Result<()> {
    let (check_conf_ver, check_version) = epoch_checks(req);
    if !check_conf_ver && !check_version {
        return Ok(());
    }
    let current = region.region_epoch.unwrap_or_default();
    let sent = req
        .header
        .as_ref()
        .and_then(|h| h.region_epoch)
        .ok_or_else(|| {
            Error::InvalidRequest(format!("request for region {} has no epoch", region.id))
        })?;
    if (check_conf_ver && sent.conf_ver != current.conf_ver)
        || (check_version && sent.version != current.version)
    {
        return Err(Error::EpochNotMatch {
            message: format!(
                "current epoch of region {} is conf_ver: {} version: {}, but you sent conf_ver: {} version: {}",
                region.id, current.conf_ver, current.version, sent.conf_ver, sent.version
            ),
            current_regions: vec![region.clone()],
        });
    }
    Ok(())
}

/// Checks that `key` is in `region`.
///
/// # Errors
///
/// [`Error::KeyNotInRegion`].
pub fn check_key_in_region(key: &[u8], region: &metapb::Region) -> Result<()> {
    if keys::in_range(key, &region.start_key, &region.end_key) {
        Ok(())
    } else {
        Err(Error::KeyNotInRegion {
            key: key.to_vec(),
            region: Box::new(region.clone()),
        })
    }
}

/// Checks every key a write touches.
///
/// # Errors
///
/// [`Error::KeyNotInRegion`] for the first key outside the region.
pub fn check_write_keys(req: &RaftCmdRequest, region: &metapb::Region) -> Result<()> {
    for request in &req.requests {
        if let Some(put) = &request.put {
            check_key_in_region(&put.key, region)?;
        }
        if let Some(delete) = &request.delete {
            check_key_in_region(&delete.key, region)?;
        }
        if let Some(range) = &request.delete_range {
            check_key_in_region(&range.start_key, region)?;
            let end_ok = region.end_key.is_empty()
                || (!range.end_key.is_empty() && range.end_key <= region.end_key);
            if !end_ok {
                return Err(Error::KeyNotInRegion {
                    key: range.end_key.clone(),
                    region: Box::new(region.clone()),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kvproto::raft_cmdpb::{AdminRequest, PutRequest, RaftRequestHeader, Request};

    use super::*;

    fn region() -> metapb::Region {
        metapb::Region {
            id: 1,
            start_key: b"b".to_vec(),
            end_key: b"d".to_vec(),
            region_epoch: Some(metapb::RegionEpoch {
                conf_ver: 2,
                version: 3,
            }),
            ..Default::default()
        }
    }

    fn request(conf_ver: u64, version: u64, admin: Option<AdminCmdType>) -> RaftCmdRequest {
        RaftCmdRequest {
            header: Some(RaftRequestHeader {
                region_id: 1,
                region_epoch: Some(metapb::RegionEpoch { conf_ver, version }),
                ..Default::default()
            }),
            admin_request: admin.map(|cmd_type| AdminRequest {
                cmd_type: cmd_type as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn epoch_checks_depend_on_the_command() {
        let r = region();
        let cases = [
            (request(2, 3, None), true),
            (request(1, 3, None), true),
            (request(2, 2, None), false),
            (request(1, 3, Some(AdminCmdType::ChangePeer)), false),
            (request(2, 1, Some(AdminCmdType::ChangePeer)), true),
            (request(2, 2, Some(AdminCmdType::BatchSplit)), false),
            (request(1, 3, Some(AdminCmdType::TransferLeader)), false),
        ];
        for (req, ok) in cases {
            assert_eq!(check_region_epoch(&req, &r).is_ok(), ok, "{req:?}");
        }
        let err = check_region_epoch(&request(2, 2, None), &r).unwrap_err();
        match err {
            Error::EpochNotMatch {
                current_regions, ..
            } => assert_eq!(current_regions, vec![r]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn write_keys_must_be_in_the_region() {
        let r = region();
        let mut req = request(2, 3, None);
        req.requests.push(Request {
            put: Some(PutRequest {
                key: b"c".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(check_write_keys(&req, &r).is_ok());
        req.requests[0].put.as_mut().unwrap().key = b"d".to_vec();
        assert!(matches!(
            check_write_keys(&req, &r),
            Err(Error::KeyNotInRegion { .. })
        ));
    }
}
