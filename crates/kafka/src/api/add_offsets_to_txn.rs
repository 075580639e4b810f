//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the producer's
//! transaction, so that TxnOffsetCommit may follow.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::code;

/// Adds the group's offsets partition to the transaction.
pub async fn handle(broker: &Broker, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let asked = pb::AddOffsetsToTxnRequest {
        transactional_id: req.transactional_id.to_string(),
        producer_id: req.producer_id.0,
        producer_epoch: i32::from(req.producer_epoch),
        group_id: req.group_id.to_string(),
    };
    match vltava_broker::transactions::add_partitions::add_offsets(broker, asked).await.map_err(WireError::from) {
        Ok(_) => AddOffsetsToTxnResponse::default(),
        Err(e) => AddOffsetsToTxnResponse::default().with_error_code(code(&e)),
    }
}
