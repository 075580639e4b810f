//! ListGroups: the groups this broker coordinates, classic ones with their state and KIP-848
//! ones with theirs, filtered by state (version 4) and type (version 5) as asked.

use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::{GroupId, ListGroupsRequest};
use vltava_broker::Broker;
use vltava_broker::groups::describe::state_name as consumer_state;

use super::str_bytes;

/// Lists the groups.
pub async fn handle(broker: &Broker, req: ListGroupsRequest) -> ListGroupsResponse {
    let image = broker.replicas.image();
    let mut groups = Vec::new();
    for id in broker.groups.list_groups().await {
        let (state, kind) = match broker.groups.classic.describe(&id) {
            Some(c) => (c.state.name(), "classic"),
            None => match broker.groups.describe(&image, &id).await {
                Ok(Some((g, _))) if !g.members.is_empty() => (consumer_state(g.state()), "consumer"),
                // Only committed offsets: Kafka lists such a group as an empty classic one.
                Ok(_) => ("Empty", "classic"),
                Err(_) => continue,
            },
        };
        let wanted_state =
            req.states_filter.is_empty() || req.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state));
        let wanted_type = req.types_filter.is_empty() || req.types_filter.iter().any(|t| t.eq_ignore_ascii_case(kind));
        if wanted_state && wanted_type {
            groups.push(
                ListedGroup::default()
                    .with_group_id(GroupId(str_bytes(id)))
                    .with_protocol_type(str_bytes("consumer"))
                    .with_group_state(str_bytes(state))
                    .with_group_type(str_bytes(kind)),
            );
        }
    }
    ListGroupsResponse::default().with_groups(groups)
}
