//! TransactionService.AddPartitionsToTxn and AddOffsetsToTxn: partitions join the producer's
//! transaction (a group's offsets join as the group's `__consumer_offsets` partition).

use vltava_common::WireError;
use vltava_proto::v1::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
};

use super::markers::result;
use crate::broker::Broker;
use crate::coordinator::codec::TopicPartitions;
use crate::error::BrokerError;
use crate::groups::coordinator::OFFSETS_TOPIC;
use crate::groups::find_coordinator::ensure_offsets_topic;

/// Adds the partitions; when any is unknown, nothing is added and each partition's result says
/// which were unknown.
///
/// # Errors
///
/// The coordinator's refusals (fenced, wrong producer id, concurrent transaction).
pub async fn handle(
    broker: &Broker,
    req: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse, BrokerError> {
    let image = broker.replicas.image();
    let mut partitions = TopicPartitions::new();
    let mut unknown = false;
    let mut checks = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let known = image.partition(&t.topic, *p).is_some();
            unknown |= !known;
            checks.push((t.topic.clone(), *p, known));
            partitions.entry(t.topic.clone()).or_default().insert(*p);
        }
    }
    if partitions.is_empty() {
        return Err(BrokerError::InvalidRequest("AddPartitionsToTxn names no partition".into()));
    }
    let results = if unknown {
        checks
            .into_iter()
            .map(|(topic, partition, known)| {
                let outcome = if known {
                    Err(WireError::new(
                        vltava_common::ErrorCode::OperationNotAttempted,
                        "not added: another partition of the request is unknown",
                    ))
                } else {
                    Err(WireError::from(BrokerError::UnknownTopicOrPartition { topic: topic.clone(), partition }))
                };
                result(&topic, partition, outcome)
            })
            .collect()
    } else {
        let epoch = req.producer_epoch as i16;
        broker.transactions.add_partitions(&req.transactional_id, req.producer_id, epoch, &partitions).await?;
        checks.into_iter().map(|(topic, partition, _)| result(&topic, partition, Ok(()))).collect()
    };
    Ok(AddPartitionsToTxnResponse { results })
}

/// Adds the group's `__consumer_offsets` partition to the transaction (creating the topic if
/// needed).
///
/// # Errors
///
/// `INVALID_GROUP_ID`; the coordinator's refusals.
pub async fn add_offsets(broker: &Broker, req: AddOffsetsToTxnRequest) -> Result<AddOffsetsToTxnResponse, BrokerError> {
    vltava_common::names::validate_group_id(&req.group_id)?;
    ensure_offsets_topic(broker).await?;
    let partition = broker.groups.partition_for(&broker.replicas.image(), &req.group_id)?;
    let partitions = TopicPartitions::from([(OFFSETS_TOPIC.to_string(), [partition].into())]);
    let epoch = req.producer_epoch as i16;
    broker.transactions.add_partitions(&req.transactional_id, req.producer_id, epoch, &partitions).await?;
    Ok(AddOffsetsToTxnResponse {})
}
