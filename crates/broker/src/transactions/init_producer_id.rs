//! TransactionService.InitProducerId: a producer id and epoch for an idempotent producer.

use vltava_proto::v1::{InitProducerIdRequest, InitProducerIdResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Answers a fresh producer id with epoch 0.
///
/// # Errors
///
/// `INVALID_REQUEST` for a transactional id (not served yet); the controller's errors while no
/// block of ids can be allocated.
pub async fn handle(broker: &Broker, req: InitProducerIdRequest) -> Result<InitProducerIdResponse, BrokerError> {
    if !req.transactional_id.is_empty() {
        return Err(BrokerError::InvalidRequest(format!(
            "transactional id {:?}: transactions are not supported by this broker yet",
            req.transactional_id
        )));
    }
    let producer_id = broker.producer_ids.next_id().await?;
    Ok(InitProducerIdResponse { producer_id, producer_epoch: 0 })
}
