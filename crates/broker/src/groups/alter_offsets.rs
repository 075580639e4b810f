//! GroupService.AlterConsumerGroupOffsets: a group's committed offsets set by hand (`vltava
//! group reset-offsets`), on the group's coordinator.
//!
//! As Kafka's `kafka-consumer-groups --reset-offsets`, it is refused while the group has members
//! (they would overwrite it with their own commits). Every offset must lie between its
//! partition's log start and log end offsets; if any is refused, none is stored.

use std::collections::BTreeSet;

use vltava_common::names::validate_group_id;
use vltava_common::time::now_ms;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{AlterConsumerGroupOffsetsRequest, AlterConsumerGroupOffsetsResponse, PartitionResult};

use super::coordinator::OffsetToCommit;
use super::partition_offsets::{self, EARLIEST, LATEST};
use super::records::OffsetValue;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Stores the offsets if the group has no members and every offset is within its partition.
///
/// # Errors
///
/// `INVALID_GROUP_ID`, `NON_EMPTY_GROUP`, `NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`, or
/// a write failure (then nothing was stored). Per-offset refusals are in the response.
pub async fn handle(
    broker: &Broker,
    req: AlterConsumerGroupOffsetsRequest,
) -> Result<AlterConsumerGroupOffsetsResponse, BrokerError> {
    validate_group_id(&req.group_id)?;
    let image = broker.replicas.image();
    if let Some((group, _)) = broker.groups.describe(&image, &req.group_id).await?
        && !group.members.is_empty()
    {
        return Err(BrokerError::Refused(WireError::new(
            ErrorCode::NonEmptyGroup,
            format!(
                "group {} has {} member(s): offsets can only be reset while the group is inactive",
                req.group_id,
                group.members.len()
            ),
        )));
    }
    let keys: BTreeSet<(String, i32)> = req.offsets.iter().map(|o| (o.topic.clone(), o.partition)).collect();
    let starts =
        partition_offsets::offsets_at(broker.config.broker_id, &broker.replicas, &image, &keys, EARLIEST).await;
    let ends = partition_offsets::offsets_at(broker.config.broker_id, &broker.replicas, &image, &keys, LATEST).await;
    let checks: Vec<Result<(), WireError>> = req
        .offsets
        .iter()
        .map(|o| {
            let key = (o.topic.clone(), o.partition);
            if image.partition(&o.topic, o.partition).is_none() {
                return Err(WireError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("{}-{} does not exist", o.topic, o.partition),
                ));
            }
            match (starts.get(&key), ends.get(&key)) {
                (Some(start), Some(end)) if (*start..=*end).contains(&o.offset) => Ok(()),
                (Some(start), Some(end)) => Err(WireError::new(
                    ErrorCode::OffsetOutOfRange,
                    format!("offset {} of {}-{} is outside its log [{start}, {end}]", o.offset, o.topic, o.partition),
                )),
                _ => Err(WireError::new(
                    ErrorCode::LeaderNotAvailable,
                    format!("the leader of {}-{} did not name its offsets", o.topic, o.partition),
                )),
            }
        })
        .collect();
    let outcomes = if checks.iter().all(Result::is_ok) {
        let now = now_ms();
        let offsets = req
            .offsets
            .iter()
            .map(|o| OffsetToCommit {
                topic: o.topic.clone(),
                partition: o.partition,
                value: OffsetValue {
                    offset: o.offset,
                    leader_epoch: -1,
                    metadata: o.metadata.clone(),
                    commit_timestamp: now,
                },
            })
            .collect();
        broker.groups.commit(&image, &req.group_id, "", -1, offsets).await?
    } else {
        checks
    };
    let results = req
        .offsets
        .into_iter()
        .zip(outcomes)
        .map(|(o, outcome)| {
            let error = outcome.err();
            PartitionResult {
                topic: o.topic,
                partition: o.partition,
                error_code: error.as_ref().map_or(ErrorCode::None, |e| e.code) as i32,
                error_message: error.map(|e| e.message).unwrap_or_default(),
            }
        })
        .collect();
    Ok(AlterConsumerGroupOffsetsResponse { results })
}
