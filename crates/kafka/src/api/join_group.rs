//! JoinGroup: a classic group member joins (client-side assignors) through the broker's
//! classic group coordinator. The join is applied in request order ([`start`]); the answer
//! comes when the group's join phase completes ([`answer`], beside the connection's next
//! requests, as fetches are).

use std::time::Duration;

use kafka_protocol::messages::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use vltava_broker::Broker;
use vltava_broker::groups::classic::{JoinOutcome, JoinRequest};
use vltava_broker::groups::classic_rpc::{self, Joining};
use vltava_common::WireError;

use super::{code, str_bytes};

/// Applies `req`'s join to its group. `client_id` and `client_host` describe the connection.
pub async fn start(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> Joining {
    let rebalance_ms = if version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms };
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id,
        client_host,
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        session_timeout: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
        rebalance_timeout: Duration::from_millis(rebalance_ms.max(0) as u64),
        require_known_member_id: version >= 4,
    };
    classic_rpc::join(broker, &req.group_id, join).await
}

/// The JoinGroup response for the join's outcome.
pub fn answer(outcome: Result<JoinOutcome, (WireError, String)>) -> JoinGroupResponse {
    match outcome {
        Ok(o) => {
            let members = o
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.map(str_bytes))
                        .with_metadata(metadata)
                })
                .collect();
            JoinGroupResponse::default()
                .with_generation_id(o.generation)
                .with_protocol_type(Some(str_bytes(o.protocol_type)))
                .with_protocol_name(Some(str_bytes(o.protocol)))
                .with_leader(str_bytes(o.leader))
                .with_member_id(str_bytes(o.member_id))
                .with_members(members)
        }
        Err((e, member_id)) => JoinGroupResponse::default()
            .with_error_code(code(&e))
            .with_generation_id(-1)
            .with_member_id(str_bytes(member_id)),
    }
}
