//! OffsetDelete: removes a group's committed offsets of partitions whose topics none of its
//! members subscribes to.

use kafka_protocol::messages::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use vltava_broker::Broker;
use vltava_broker::groups::consumer_protocol::subscribed_topics;
use vltava_common::WireError;
use vltava_common::names::validate_group_id;

use super::code;

/// Deletes the requested offsets.
pub async fn handle(broker: &Broker, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> =
        req.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index))).collect();
    let subscribed: Vec<String> = broker
        .groups
        .classic
        .describe(&req.group_id)
        .map(|c| c.members.iter().flat_map(|m| subscribed_topics(&m.metadata)).collect())
        .unwrap_or_default();
    let image = broker.replicas.image();
    let deleted = match validate_group_id(&req.group_id) {
        Ok(()) => {
            broker.groups.delete_offsets(&image, &req.group_id, partitions, &subscribed).await.map_err(WireError::from)
        }
        Err(e) => Err(e),
    };
    let mut results = match deleted {
        Ok(r) => r.into_iter(),
        Err(e) => return OffsetDeleteResponse::default().with_error_code(code(&e)),
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = results.next().and_then(Result::err).map_or(0, |e| code(&e));
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
