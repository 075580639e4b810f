//! TransactionService.InitProducerId: a producer id and epoch for an idempotent producer, or
//! for a transactional one from its coordinator.

use vltava_proto::v1::{InitProducerIdRequest, InitProducerIdResponse};

use super::find_coordinator::validate_transactional_id;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Without a transactional id: a fresh producer id with epoch 0. With one: the coordinator's
/// answer (the id's producer id, its next epoch).
///
/// # Errors
///
/// The controller's errors while no block of ids can be allocated; the coordinator's errors.
pub async fn handle(broker: &Broker, req: InitProducerIdRequest) -> Result<InitProducerIdResponse, BrokerError> {
    if req.transactional_id.is_empty() {
        let producer_id = broker.producer_ids.next_id().await?;
        return Ok(InitProducerIdResponse { producer_id, producer_epoch: 0 });
    }
    validate_transactional_id(&req.transactional_id)?;
    let (producer_id, epoch) =
        broker.transactions.init_producer_id(&req.transactional_id, req.transaction_timeout_ms).await?;
    Ok(InitProducerIdResponse { producer_id, producer_epoch: i32::from(epoch) })
}
