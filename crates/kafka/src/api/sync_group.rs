//! SyncGroup: the leader hands out the assignment it computed; every member gets its own. The
//! sync is applied in request order ([`start`]); a follower's answer waits for the leader
//! ([`answer`], beside the connection's next requests).

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use vltava_broker::Broker;
use vltava_broker::groups::classic_rpc::{self, MemberRef, Syncing};

use super::{code, str_bytes};

/// Applies `req`'s sync to its group.
pub async fn start(broker: &Broker, req: &SyncGroupRequest) -> Syncing {
    let assignments = req.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect();
    let member =
        MemberRef { id: &req.member_id, instance: req.group_instance_id.as_deref(), generation: req.generation_id };
    let protocol = (req.protocol_type.as_deref(), req.protocol_name.as_deref());
    classic_rpc::sync(broker, &req.group_id, member, protocol, assignments).await
}

/// The SyncGroup response once the member's assignment is known; the group's protocol type and
/// assignor are echoed (version 5).
pub async fn answer(broker: std::sync::Arc<Broker>, req: SyncGroupRequest, syncing: Syncing) -> SyncGroupResponse {
    let synced = syncing.outcome().await;
    let group = broker.groups.classic.describe(&req.group_id);
    let response = SyncGroupResponse::default()
        .with_protocol_type(group.as_ref().map(|g| str_bytes(g.protocol_type.clone())))
        .with_protocol_name(group.map(|g| str_bytes(g.protocol)));
    match synced {
        Ok(assignment) => response.with_assignment(assignment),
        Err(e) => response.with_error_code(code(&e)),
    }
}
