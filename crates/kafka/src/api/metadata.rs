//! Metadata: brokers (their Kafka listeners), topics, partition leaders, leader epochs, replicas,
//! ISR and topic ids, from the broker's view of the cluster metadata, as gRPC `Metadata` answers.
//!
//! A topic asked for by name that does not exist is created when `auto.create.topics.enable` is
//! on and the request allows it (always before version 4), as Kafka does.

use std::collections::BTreeSet;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use vltava_broker::Broker;
use vltava_broker::auto_create;
use vltava_broker::groups::coordinator::OFFSETS_TOPIC;
use vltava_broker::transactions::coordinator::TRANSACTION_STATE_TOPIC;
use vltava_common::{ErrorCode, WireError};
use vltava_metadata::{ClusterImage, TopicMetadata};

use super::codes::UNKNOWN_TOPIC_ID;
use super::{code, host_port, str_bytes, topic_by_id, topic_name, topic_uuid};

/// The internal topics Kafka clients hide (`exclude.internal.topics`).
const INTERNAL_TOPICS: &[&str] = &[OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC];

/// Answers a Metadata request.
pub async fn handle(broker: &Broker, req: MetadataRequest, version: i16) -> MetadataResponse {
    let allow_create = version < 4 || req.allow_auto_topic_creation;
    // Version 0 asks for every topic with an empty list; later versions with a null one.
    let wanted = req.topics.filter(|t| !(version == 0 && t.is_empty()));
    let mut create_errors = Vec::new();
    if let Some(topics) = &wanted
        && allow_create
    {
        for name in topics.iter().filter_map(|t| t.name.as_ref()) {
            if let Err(e) = auto_create::ensure_topic(broker, name).await {
                create_errors.push((name.to_string(), WireError::from(e)));
            }
        }
    }
    let image = broker.metadata.image();
    let topics = match wanted {
        None => image.topics.values().map(|t| topic(&image, t)).collect(),
        Some(asked) => asked
            .iter()
            .map(|t| {
                let found = match &t.name {
                    Some(name) => image.topic(name),
                    None => topic_by_id(&image, &t.topic_id),
                };
                match found {
                    Some(m) => topic(&image, m),
                    None => unknown(t, &create_errors),
                }
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(brokers(&image))
        .with_cluster_id(Some(str_bytes(image.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.config.broker_id))
        .with_topics(topics)
}

/// The live brokers that run a Kafka listener.
fn brokers(image: &ClusterImage) -> Vec<MetadataResponseBroker> {
    image
        .live_brokers()
        .filter_map(|b| {
            let (host, port) = host_port(&b.kafka_address)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect()
}

fn topic(image: &ClusterImage, t: &TopicMetadata) -> MetadataResponseTopic {
    let live: BTreeSet<i32> = image.live_brokers().map(|b| b.id).collect();
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let error = if p.leader < 0 { ErrorCode::LeaderNotAvailable } else { ErrorCode::None };
            MetadataResponsePartition::default()
                .with_error_code(error as i16)
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
                .with_offline_replicas(p.replicas.iter().copied().filter(|r| !live.contains(r)).map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.name)))
        .with_topic_id(topic_uuid(&t.id))
        .with_is_internal(INTERNAL_TOPICS.contains(&t.name.as_str()))
        .with_partitions(partitions)
}

/// A topic that does not exist: its creation error when auto-creation failed, else
/// `UNKNOWN_TOPIC_OR_PARTITION` (or `UNKNOWN_TOPIC_ID` when asked for by id).
fn unknown(
    t: &kafka_protocol::messages::metadata_request::MetadataRequestTopic,
    create_errors: &[(String, WireError)],
) -> MetadataResponseTopic {
    let error = match &t.name {
        None => UNKNOWN_TOPIC_ID,
        Some(name) => create_errors
            .iter()
            .find(|(n, _)| n.as_str() == name.as_str())
            .map_or(ErrorCode::UnknownTopicOrPartition as i16, |(_, e)| code(e)),
    };
    MetadataResponseTopic::default().with_error_code(error).with_name(t.name.clone()).with_topic_id(t.topic_id)
}
