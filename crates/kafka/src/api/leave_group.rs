//! LeaveGroup: classic group members leave (one before version 3, a batch since), and the
//! group rebalances without them.

use kafka_protocol::messages::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use vltava_broker::Broker;
use vltava_broker::groups::classic_rpc;

use super::{code, str_bytes};

/// Removes `req`'s members from their group.
pub async fn handle(broker: &Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = match version {
        v if v >= 3 => req
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
            .collect(),
        _ => vec![(req.member_id.to_string(), None)],
    };
    let instances: Vec<Option<String>> = members.iter().map(|(_, i)| i.clone()).collect();
    match classic_rpc::leave(broker, &req.group_id, members).await {
        Err(e) => LeaveGroupResponse::default().with_error_code(code(&e)),
        Ok(results) if version < 3 => {
            let error = results.first().and_then(|(_, r)| r.as_ref().err()).map_or(0, code);
            LeaveGroupResponse::default().with_error_code(error)
        }
        Ok(results) => {
            let members = results
                .into_iter()
                .zip(instances)
                .map(|((id, r), instance)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(id))
                        .with_group_instance_id(instance.map(str_bytes))
                        .with_error_code(r.as_ref().err().map_or(0, code))
                })
                .collect();
            LeaveGroupResponse::default().with_members(members)
        }
    }
}
