//! TransactionService.FindTransactionCoordinator: which broker coordinates a transactional id, creating
//! `__transaction_state` on first use (Kafka's `transaction.state.log.*` settings, cleanup
//! policy `compact`).

use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{FindTransactionCoordinatorRequest, FindTransactionCoordinatorResponse};

use super::coordinator::TRANSACTION_STATE_TOPIC;
use crate::auto_create;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Answers the coordinator of `req.transactional_id`.
///
/// # Errors
///
/// `INVALID_REQUEST` for an empty id; `COORDINATOR_NOT_AVAILABLE` while its partition has no
/// leader; a failure to create `__transaction_state`.
pub async fn handle(
    broker: &Broker,
    req: FindTransactionCoordinatorRequest,
) -> Result<FindTransactionCoordinatorResponse, BrokerError> {
    validate_transactional_id(&req.transactional_id)?;
    ensure_state_topic(broker).await?;
    broker.transactions.sync();
    let image = broker.replicas.image();
    let partition = broker.transactions.partition_for(&image, &req.transactional_id)?;
    let leader = image.partition(TRANSACTION_STATE_TOPIC, partition).map_or(-1, |p| p.leader);
    let Some(node) = image.brokers.get(&leader) else {
        return Err(BrokerError::Refused(WireError::new(
            ErrorCode::CoordinatorNotAvailable,
            format!("{TRANSACTION_STATE_TOPIC}-{partition} has no leader right now"),
        )));
    };
    Ok(FindTransactionCoordinatorResponse { node_id: leader, address: node.address.clone(), partition })
}

/// Refuses an empty or over-long transactional id.
///
/// # Errors
///
/// `INVALID_REQUEST` naming the problem.
pub fn validate_transactional_id(id: &str) -> Result<(), BrokerError> {
    if id.is_empty() {
        return Err(BrokerError::InvalidRequest("the transactional id is empty".into()));
    }
    if id.len() > 249 * 4 {
        return Err(BrokerError::InvalidRequest(format!(
            "the transactional id is {} bytes long (at most 996)",
            id.len()
        )));
    }
    Ok(())
}

/// Creates `__transaction_state` unless it exists (replication factor capped at the live broker
/// count) and waits until this broker has applied it.
///
/// # Errors
///
/// The metadata service refused the creation for another reason than a concurrent one.
pub async fn ensure_state_topic(broker: &Broker) -> Result<(), BrokerError> {
    let config = &broker.config.transactions;
    auto_create::ensure_internal_topic(
        broker,
        TRANSACTION_STATE_TOPIC,
        config.state_topic_num_partitions,
        config.state_topic_replication_factor,
    )
    .await
}
