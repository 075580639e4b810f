//! DescribeGroups: a classic group's state, assignor, and members with their metadata and
//! assignment as the leader computed it; a KIP-848 group's members with their subscriptions
//! and assignments in the consumer protocol's encoding, so Kafka tools read both alike. A
//! group with neither members nor offsets is `Dead`, as Kafka reports it.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, DescribeGroupsRequest};
use kafka_protocol::protocol::Encodable;
use vltava_broker::Broker;
use vltava_common::WireError;

use super::{code, str_bytes, topic_name};
use vltava_broker::groups::describe::state_name as consumer_state;

/// Describes each requested group.
pub async fn handle(broker: &Broker, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    for id in req.groups {
        let described = DescribedGroup::default().with_group_id(id.clone()).with_protocol_type(str_bytes("consumer"));
        if let Some(c) = broker.groups.classic.describe(&id) {
            let members = c
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.id))
                        .with_group_instance_id(m.instance_id.map(str_bytes))
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            groups.push(
                described
                    .with_group_state(str_bytes(c.state.name()))
                    .with_protocol_type(str_bytes(c.protocol_type))
                    .with_protocol_data(str_bytes(c.protocol))
                    .with_members(members),
            );
            continue;
        }
        let image = broker.replicas.image();
        let found = match vltava_common::names::validate_group_id(&id) {
            Ok(()) => broker.groups.describe(&image, &id).await.map_err(WireError::from),
            Err(e) => Err(e),
        };
        groups.push(match found {
            Ok(Some((g, _))) => {
                let assignor = g.members.values().find_map(|m| m.meta.server_assignor.clone()).unwrap_or_default();
                let members = g
                    .members
                    .values()
                    .map(|m| {
                        let topics = m.meta.subscribed_topics.iter().cloned().map(str_bytes).collect();
                        let subscription = ConsumerProtocolSubscription::default().with_topics(topics);
                        let assigned = m
                            .assigned
                            .iter()
                            .map(|(t, ps)| {
                                AssignedPartitions::default()
                                    .with_topic(topic_name(t))
                                    .with_partitions(ps.iter().copied().collect())
                            })
                            .collect();
                        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(assigned);
                        DescribedGroupMember::default()
                            .with_member_id(str_bytes(m.id.clone()))
                            .with_group_instance_id(m.meta.instance_id.clone().map(str_bytes))
                            .with_client_id(str_bytes(m.meta.client_id.clone()))
                            .with_client_host(str_bytes(m.meta.client_host.clone()))
                            .with_member_metadata(consumer_protocol(&subscription))
                            .with_member_assignment(consumer_protocol(&assignment))
                    })
                    .collect();
                described
                    .with_group_state(str_bytes(consumer_state(g.state())))
                    .with_protocol_data(str_bytes(assignor))
                    .with_members(members)
            }
            Ok(None) => described.with_group_state(str_bytes("Dead")),
            // (error_message exists from version 6 only; versions up to 5 are served.)
            Err(e) => described.with_error_code(code(&e)),
        });
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// A consumer protocol message at version 0, behind its version, as consumers encode them.
fn consumer_protocol<T: Encodable>(message: &T) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    if message.encode(&mut out, 0).is_err() {
        return Bytes::new();
    }
    out.freeze()
}
