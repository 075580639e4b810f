//! InitProducerId: a producer id for an idempotent producer, or for a transactional id a new
//! epoch that fences its earlier producers (ending their open transaction first), through the
//! broker's transaction coordinator.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::code;

/// Hands out the producer id and epoch.
pub async fn handle(broker: &Broker, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let asked = pb::InitProducerIdRequest {
        transactional_id: req.transactional_id.map(|t| t.to_string()).unwrap_or_default(),
        transaction_timeout_ms: req.transaction_timeout_ms,
    };
    match vltava_broker::transactions::init_producer_id::handle(broker, asked).await.map_err(WireError::from) {
        Ok(r) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(r.producer_id))
            .with_producer_epoch(r.producer_epoch as i16),
        Err(e) => InitProducerIdResponse::default()
            .with_error_code(code(&e))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
