//! GroupService.FindCoordinator: which broker coordinates a group, creating `__consumer_offsets`
//! on first use (Kafka's `offsets.topic.*` settings, cleanup policy `compact`).

use vltava_common::names::validate_group_id;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{FindCoordinatorRequest, FindCoordinatorResponse};

use super::coordinator::OFFSETS_TOPIC;
use crate::auto_create;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Answers the coordinator of `req.group_id`.
///
/// # Errors
///
/// `INVALID_GROUP_ID`; `COORDINATOR_NOT_AVAILABLE` while the group's partition has no leader;
/// a failure to create `__consumer_offsets`.
pub async fn handle(broker: &Broker, req: FindCoordinatorRequest) -> Result<FindCoordinatorResponse, BrokerError> {
    validate_group_id(&req.group_id)?;
    ensure_offsets_topic(broker).await?;
    // Open the shards of partitions this broker now leads at once (the metadata follower would
    // soon), so a call right after this answer finds them.
    broker.groups.sync(&broker.replicas);
    let image = broker.replicas.image();
    let partition = broker.groups.partition_for(&image, &req.group_id)?;
    let leader = image.partition(OFFSETS_TOPIC, partition).map_or(-1, |p| p.leader);
    let Some(node) = image.brokers.get(&leader) else {
        return Err(BrokerError::Refused(WireError::new(
            ErrorCode::CoordinatorNotAvailable,
            format!("{OFFSETS_TOPIC}-{partition} has no leader right now"),
        )));
    };
    Ok(FindCoordinatorResponse { node_id: leader, address: node.address.clone(), partition })
}

/// Creates `__consumer_offsets` unless it exists: `offsets_topic_num_partitions` partitions,
/// `offsets_topic_replication_factor` replicas capped at the live broker count (raise it later
/// by reassignment), `cleanup.policy=compact` (so retention never deletes it). Waits until this
/// broker has applied it.
///
/// # Errors
///
/// The metadata service refused the creation for another reason than a concurrent one.
pub async fn ensure_offsets_topic(broker: &Broker) -> Result<(), BrokerError> {
    let config = &broker.config.groups;
    auto_create::ensure_internal_topic(
        broker,
        OFFSETS_TOPIC,
        config.offsets_topic_num_partitions,
        config.offsets_topic_replication_factor,
    )
    .await
}
