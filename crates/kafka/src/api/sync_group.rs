//! SyncGroup: the leader hands out the assignment it computed; every member gets its own
//! (run beside the connection's next requests: followers wait for the leader).

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use vltava_broker::Broker;
use vltava_broker::groups::classic_rpc;

use super::code;

/// Syncs `req`'s member.
pub async fn handle(broker: Arc<Broker>, req: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = req.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect();
    let synced = classic_rpc::sync(&broker, &req.group_id, &req.member_id, req.generation_id, assignments).await;
    let response =
        SyncGroupResponse::default().with_protocol_type(req.protocol_type).with_protocol_name(req.protocol_name);
    match synced {
        Ok(assignment) => response.with_assignment(assignment),
        Err(e) => response.with_error_code(code(&e)),
    }
}
