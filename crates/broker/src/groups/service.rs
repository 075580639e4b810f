//! GroupService handlers for committed offsets, answered by the group's coordinator shard on
//! this broker (`NOT_COORDINATOR` elsewhere): commit, fetch, and the groups this broker
//! coordinates.

use vltava_common::names::validate_group_id;
use vltava_common::time::now_ms;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{
    CommitOffsetsRequest, CommitOffsetsResponse, DeleteGroupsRequest, DeleteGroupsResponse, FetchOffsetsRequest,
    FetchOffsetsResponse, GroupResult, ListGroupsResponse, OffsetCommit, PartitionResult,
};

use super::coordinator::OffsetToCommit;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Commits the offsets the group's state allows (see `heartbeat::validate_commit`); reports the
/// others per partition, with nothing stored for them.
///
/// # Errors
///
/// `INVALID_GROUP_ID`, `NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`, or a write failure
/// (then nothing was committed).
pub async fn commit(broker: &Broker, req: CommitOffsetsRequest) -> Result<CommitOffsetsResponse, BrokerError> {
    validate_group_id(&req.group_id)?;
    let member_epoch = if req.member_id.is_empty() { -1 } else { req.member_epoch };
    let now = now_ms();
    let (keys, offsets): (Vec<_>, Vec<_>) =
        req.offsets.into_iter().map(|o| OffsetToCommit::new(o.topic, o.partition, o.offset, o.metadata, now)).unzip();
    let image = broker.replicas.image();
    let outcomes = broker.groups.commit(&image, &req.group_id, &req.member_id, member_epoch, offsets).await?;
    let results = keys
        .into_iter()
        .zip(outcomes)
        .map(|((topic, partition), outcome)| {
            let error = outcome.err();
            PartitionResult {
                topic,
                partition,
                error_code: error.as_ref().map_or(ErrorCode::None, |e| e.code) as i32,
                error_message: error.map(|e| e.message).unwrap_or_default(),
            }
        })
        .collect();
    Ok(CommitOffsetsResponse { results })
}

/// Returns the requested (or all) committed offsets of a group; -1 where none was committed.
///
/// # Errors
///
/// `INVALID_GROUP_ID`, `NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`.
pub async fn fetch(broker: &Broker, req: FetchOffsetsRequest) -> Result<FetchOffsetsResponse, BrokerError> {
    validate_group_id(&req.group_id)?;
    let wanted =
        (!req.partitions.is_empty()).then(|| req.partitions.into_iter().map(|tp| (tp.topic, tp.partition)).collect());
    let image = broker.replicas.image();
    let committed = broker.groups.fetch_offsets(&image, &req.group_id, wanted).await?;
    let offsets = committed
        .into_iter()
        .map(|(topic, partition, value)| OffsetCommit {
            topic,
            partition,
            offset: value.as_ref().map_or(-1, |v| v.offset),
            metadata: value.map(|v| v.metadata).unwrap_or_default(),
        })
        .collect();
    Ok(FetchOffsetsResponse { offsets })
}

/// Lists the groups this broker coordinates (with members or committed offsets), sorted.
pub async fn list(broker: &Broker) -> Result<ListGroupsResponse, BrokerError> {
    Ok(ListGroupsResponse { group_ids: broker.groups.list_groups().await })
}

/// Deletes each requested group that this broker coordinates and that has no members; answers
/// every group, in order (`NOT_COORDINATOR` for groups coordinated elsewhere).
pub async fn delete(broker: &Broker, req: DeleteGroupsRequest) -> Result<DeleteGroupsResponse, BrokerError> {
    let image = broker.replicas.image();
    let mut results = Vec::with_capacity(req.group_ids.len());
    for group_id in req.group_ids {
        let outcome = match validate_group_id(&group_id) {
            Ok(()) => broker.groups.delete_group(&image, &group_id).await.map_err(WireError::from),
            Err(e) => Err(e),
        };
        let error = outcome.err();
        results.push(GroupResult {
            group_id,
            error_code: error.as_ref().map_or(ErrorCode::None, |e| e.code) as i32,
            error_message: error.map(|e| e.message).unwrap_or_default(),
        });
    }
    Ok(DeleteGroupsResponse { results })
}
