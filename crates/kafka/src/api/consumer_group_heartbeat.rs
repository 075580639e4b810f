//! ConsumerGroupHeartbeat (KIP-848): the same heartbeat as gRPC's, so a Kafka client with
//! `group.protocol=consumer` and a Vltava SDK consumer can be members of one group. Kafka names
//! topics by id here; they are mapped through the cluster image.

use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::TopicPartitions as AssignedTopic;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, ConsumerGroupHeartbeatResponse};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::{code, str_bytes, topic_by_id, topic_uuid};

/// Decides the heartbeat on the group's coordinator.
pub async fn handle(
    broker: &Broker,
    req: ConsumerGroupHeartbeatRequest,
    client_id: String,
    client_host: String,
) -> ConsumerGroupHeartbeatResponse {
    let image = broker.metadata.image();
    let name_of = |id: &uuid::Uuid| topic_by_id(&image, id).map(|t| t.name.clone());
    let subscription = match (&req.subscribed_topic_names, &req.subscribed_topic_regex) {
        (None, None) => None,
        (names, regex) => Some(pb::Subscription {
            topics: names.iter().flatten().map(|n| n.to_string()).collect(),
            pattern: regex.as_ref().map(|r| r.to_string()).unwrap_or_default(),
        }),
    };
    let owned = req.topic_partitions.as_ref().map(|tps| pb::PartitionSet {
        topics: tps
            .iter()
            .filter_map(|tp| {
                Some(pb::TopicPartitions { topic: name_of(&tp.topic_id)?, partitions: tp.partitions.clone() })
            })
            .collect(),
    });
    let asked = pb::ConsumerGroupHeartbeatRequest {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|i| i.to_string()),
        rack: req.rack_id.as_ref().map(|r| r.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms.max(0),
        subscription,
        server_assignor: req.server_assignor.as_ref().map(|a| a.to_string()).unwrap_or_default(),
        owned,
        client_id,
    };
    let decided =
        vltava_broker::groups::heartbeat_rpc::handle(broker, asked, client_host).await.map_err(WireError::from);
    match decided {
        Ok(r) => {
            let assignment = r.assignment.map(|set| {
                let topics = set
                    .topics
                    .into_iter()
                    .filter_map(|t| {
                        let id = image.topic(&t.topic).map(|m| topic_uuid(&m.id))?;
                        Some(AssignedTopic::default().with_topic_id(id).with_partitions(t.partitions))
                    })
                    .collect();
                Assignment::default().with_topic_partitions(topics)
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(str_bytes(r.member_id)))
                .with_member_epoch(r.member_epoch)
                .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
                .with_assignment(assignment)
        }
        Err(e) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code(&e))
            .with_error_message(Some(str_bytes(e.message))),
    }
}
