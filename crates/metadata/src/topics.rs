//! Planning topic changes on the active controller: validation, topic ids and replica placement.
//!
//! Plans are turned into [`crate::command::Command`]s; the state machine re-checks what can
//! have changed between planning and commit.

use std::collections::BTreeMap;

use crate::error::MetadataError;
use crate::model::{BrokerId, ClusterImage, CreateTopic, PartitionState, TopicMetadata};
use crate::{placement, topic_config};

/// Most partitions one topic may have.
pub const MAX_PARTITIONS: i32 = 100_000;

/// Live brokers with their racks.
fn live_brokers(image: &ClusterImage) -> Vec<(BrokerId, Option<String>)> {
    image.live_brokers().map(|b| (b.id, b.rack.clone())).collect()
}

/// Fails when `min.insync.replicas` in `configs` exceeds the replication factor.
pub fn check_min_isr(configs: &BTreeMap<String, String>, replication_factor: i32) -> Result<(), MetadataError> {
    if let Some(min_isr) = configs.get("min.insync.replicas")
        && min_isr.parse::<i32>().unwrap_or(1) > replication_factor
    {
        return Err(MetadataError::InvalidConfig {
            key: "min.insync.replicas".into(),
            value: min_isr.clone(),
            reason: format!("larger than the replication factor {replication_factor}"),
        });
    }
    Ok(())
}

fn new_partitions(assignment: Vec<Vec<BrokerId>>, first: i32) -> Vec<PartitionState> {
    assignment.into_iter().enumerate().map(|(i, replicas)| PartitionState::new(first + i as i32, replicas)).collect()
}

/// Validates a create request against `image` and builds the topic it describes, placing replicas
/// on live brokers.
pub fn build_topic(
    image: &ClusterImage,
    request: &CreateTopic,
    default_replication_factor: i32,
) -> Result<TopicMetadata, MetadataError> {
    vltava_common::names::validate_topic_name(&request.name).map_err(MetadataError::InvalidTopic)?;
    if image.topics.contains_key(&request.name) {
        return Err(MetadataError::TopicAlreadyExists { name: request.name.clone() });
    }
    if request.partitions < 1 || request.partitions > MAX_PARTITIONS {
        return Err(MetadataError::InvalidPartitions { count: request.partitions, max: MAX_PARTITIONS });
    }
    let rf = if request.replication_factor == 0 { default_replication_factor } else { request.replication_factor };
    let brokers = live_brokers(image);
    if rf < 1 || rf as usize > brokers.len() {
        return Err(MetadataError::InvalidReplicationFactor { requested: rf, available: brokers.len() });
    }
    topic_config::validate(&request.configs)?;
    check_min_isr(&request.configs, rf)?;
    let assignment =
        placement::assign_with_racks(&brokers, request.partitions as usize, rf as usize, image.topics.len());
    Ok(TopicMetadata {
        name: request.name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        partitions: new_partitions(assignment, 0),
        configs: request.configs.clone(),
    })
}

/// Plans the partitions that grow `topic` to `total` partitions.
pub fn plan_partitions(
    image: &ClusterImage,
    topic: &str,
    total: i32,
) -> Result<(TopicMetadata, Vec<PartitionState>), MetadataError> {
    let current = image.topic(topic).ok_or_else(|| MetadataError::UnknownTopic { name: topic.to_string() })?;
    let have = current.partitions.len() as i32;
    if total <= have || total > MAX_PARTITIONS {
        return Err(MetadataError::PartitionsMustGrow { topic: topic.to_string(), current: have, requested: total });
    }
    let rf = current.replication_factor();
    let brokers = live_brokers(image);
    if rf > brokers.len() {
        return Err(MetadataError::InvalidReplicationFactor { requested: rf as i32, available: brokers.len() });
    }
    let assignment = placement::assign_with_racks(&brokers, (total - have) as usize, rf, have as usize);
    Ok((current.as_ref().clone(), new_partitions(assignment, have)))
}

/// Convenience for tests and tools: a create request with defaults.
pub fn create_request(name: &str, partitions: i32) -> CreateTopic {
    CreateTopic { name: name.into(), partitions, replication_factor: 0, configs: BTreeMap::new(), validate_only: false }
}
