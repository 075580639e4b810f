//! Heartbeat: a classic group member is alive and in the current generation
//! (`REBALANCE_IN_PROGRESS` tells it to join again).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use vltava_broker::Broker;
use vltava_broker::groups::classic_rpc::{self, MemberRef};

use super::code;

/// Records `req`'s heartbeat.
pub async fn handle(broker: &Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    let member =
        MemberRef { id: &req.member_id, instance: req.group_instance_id.as_deref(), generation: req.generation_id };
    match classic_rpc::heartbeat(broker, &req.group_id, member).await {
        Ok(()) => HeartbeatResponse::default(),
        Err(e) => HeartbeatResponse::default().with_error_code(code(&e)),
    }
}
