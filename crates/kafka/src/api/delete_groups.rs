//! DeleteGroups: each group without members loses its offsets and state, through the broker's
//! `delete` handler (`NON_EMPTY_GROUP` while it has members).

use kafka_protocol::messages::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::code;

/// Deletes each requested group.
pub async fn handle(broker: &Broker, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let asked = pb::DeleteGroupsRequest { group_ids: req.groups_names.iter().map(|g| g.to_string()).collect() };
    let results = match vltava_broker::groups::service::delete(broker, asked).await.map_err(WireError::from) {
        Ok(r) => r
            .results
            .into_iter()
            .map(|g| {
                broker.groups.classic.forget_if_empty(&g.group_id);
                DeletableGroupResult::default()
                    .with_group_id(str_group(g.group_id))
                    .with_error_code(g.error_code as i16)
            })
            .collect(),
        Err(e) => req
            .groups_names
            .into_iter()
            .map(|g| DeletableGroupResult::default().with_group_id(g).with_error_code(code(&e)))
            .collect(),
    };
    DeleteGroupsResponse::default().with_results(results)
}

fn str_group(id: String) -> kafka_protocol::messages::GroupId {
    kafka_protocol::messages::GroupId(super::str_bytes(id))
}
