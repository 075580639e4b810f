//! TransactionService.EndTxn: commit or abort the producer's transaction.

use vltava_proto::v1::{EndTxnRequest, EndTxnResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Ends the transaction (see `TransactionCoordinator::end_txn`).
///
/// # Errors
///
/// The coordinator's refusals (`INVALID_TXN_STATE`, `PRODUCER_FENCED`, ...).
pub async fn handle(broker: &Broker, req: EndTxnRequest) -> Result<EndTxnResponse, BrokerError> {
    let epoch = req.producer_epoch as i16;
    broker.transactions.end_txn(&req.transactional_id, req.producer_id, epoch, req.commit).await?;
    Ok(EndTxnResponse {})
}
