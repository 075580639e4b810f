//! Heartbeat: a classic group member is alive and in the current generation
//! (`REBALANCE_IN_PROGRESS` tells it to join again).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use vltava_broker::Broker;
use vltava_broker::groups::classic_rpc;

use super::code;

/// Records `req`'s heartbeat.
pub async fn handle(broker: &Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    match classic_rpc::heartbeat(broker, &req.group_id, &req.member_id, req.generation_id).await {
        Ok(()) => HeartbeatResponse::default(),
        Err(e) => HeartbeatResponse::default().with_error_code(code(&e)),
    }
}
