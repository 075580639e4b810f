//! EndTxn: commits or aborts the producer's transaction (markers on every partition in it),
//! through the broker's transaction coordinator.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::code;

/// Ends the transaction.
pub async fn handle(broker: &Broker, req: EndTxnRequest) -> EndTxnResponse {
    let asked = pb::EndTxnRequest {
        transactional_id: req.transactional_id.to_string(),
        producer_id: req.producer_id.0,
        producer_epoch: i32::from(req.producer_epoch),
        commit: req.committed,
    };
    match vltava_broker::transactions::end_txn::handle(broker, asked).await.map_err(WireError::from) {
        Ok(_) => EndTxnResponse::default(),
        Err(e) => EndTxnResponse::default().with_error_code(code(&e)),
    }
}
