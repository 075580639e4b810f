//! Planning writes: what every [`crate::MetadataService`] implementation does before a change is
//! applied, and how it reads the state machine's answer afterwards.
//!
//! The active controller and [`crate::memory::MemoryMetadata`] share these functions, so a
//! request is validated, placed and answered the same way whether it goes through Raft or not.
//! Each planner reads the latest [`ClusterImage`] and either answers at once
//! ([`Plan::Answer`]: validate-only requests, proposals that change nothing) or returns the
//! [`Command`] to apply ([`Plan::Apply`]); the state machine re-checks what may have changed
//! between the plan and its application.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::command::Command;
use crate::error::MetadataError;
use crate::model::{AlterPartition, BrokerId, ClusterImage, CreateTopic, PartitionState, TopicMetadata};
use crate::service::ProducerIdBlock;
use crate::state::Outcome;
use crate::{partition_change, topic_config, topics};

/// What to do with a request.
#[derive(Debug)]
pub enum Plan<T> {
    /// Answer now, without changing anything.
    Answer(T),
    /// Apply this command, then read its [`Outcome`].
    Apply(Command),
}

/// A topic and the image version that contains it.
pub type TopicAnswer = (Arc<TopicMetadata>, u64);

/// Plans a topic creation: id, placement and leaders chosen here.
pub fn create_topic(
    image: &ClusterImage,
    request: &CreateTopic,
    default_replication_factor: i32,
) -> Result<Plan<TopicAnswer>, MetadataError> {
    let topic = topics::build_topic(image, request, default_replication_factor)?;
    if request.validate_only {
        return Ok(Plan::Answer((Arc::new(topic), image.version)));
    }
    Ok(Plan::Apply(Command::CreateTopic(topic)))
}

/// Plans a topic deletion.
pub fn delete_topic(image: &ClusterImage, name: &str) -> Result<Command, MetadataError> {
    if image.topic(name).is_none() {
        return Err(MetadataError::UnknownTopic { name: name.to_string() });
    }
    Ok(Command::DeleteTopic { name: name.to_string() })
}

/// Plans growing `topic` to `total` partitions.
pub fn create_partitions(
    image: &ClusterImage,
    topic: &str,
    total: i32,
    validate_only: bool,
) -> Result<Plan<TopicAnswer>, MetadataError> {
    let (current, partitions) = topics::plan_partitions(image, topic, total)?;
    if validate_only {
        let mut t = current.clone();
        t.partitions.extend(partitions);
        return Ok(Plan::Answer((Arc::new(t), image.version)));
    }
    Ok(Plan::Apply(Command::CreatePartitions { topic: topic.to_string(), topic_id: current.id, partitions }))
}

/// Plans a per-topic configuration change (validated against the resulting configuration).
pub fn alter_configs(
    image: &ClusterImage,
    topic: &str,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    validate_only: bool,
) -> Result<Plan<TopicAnswer>, MetadataError> {
    let current = image.topic(topic).ok_or_else(|| MetadataError::UnknownTopic { name: topic.to_string() })?;
    let mut configs = current.configs.clone();
    for key in &delete {
        configs.remove(key);
    }
    configs.extend(set.clone());
    topic_config::validate(&configs)?;
    topics::check_min_isr(&configs, current.replication_factor() as i32)?;
    if validate_only {
        let mut t = current.as_ref().clone();
        t.configs = configs;
        return Ok(Plan::Answer((Arc::new(t), image.version)));
    }
    Ok(Plan::Apply(Command::AlterConfigs { topic: topic.to_string(), set, delete }))
}

/// Plans an AlterPartition. Cheap answers come from the image: a proposal that changes nothing,
/// or one based on epochs the image has already passed, is never applied.
pub fn alter_partition(
    image: &ClusterImage,
    request: AlterPartition,
) -> Plan<Result<(PartitionState, u64), MetadataError>> {
    match partition_change::precheck_alter(image, &request) {
        Some(answer) => Plan::Answer(answer.map(|p| (p, image.version))),
        None => Plan::Apply(Command::AlterPartition(request)),
    }
}

/// Plans a reassignment (`target`) or its cancellation (`None`).
pub fn reassign_partition(
    image: &ClusterImage,
    topic: &str,
    partition: i32,
    target: Option<Vec<BrokerId>>,
) -> Result<Command, MetadataError> {
    let t = image.topic(topic).ok_or_else(|| MetadataError::UnknownTopic { name: topic.to_string() })?;
    let p = image
        .partition(topic, partition)
        .ok_or_else(|| MetadataError::UnknownPartition { topic: topic.to_string(), partition })?;
    if let Some(target) = &target {
        partition_change::check_target(image, t, p, target)?;
    }
    Ok(Command::ReassignPartition { topic: topic.to_string(), topic_id: t.id.clone(), partition, target })
}

/// Reads a topic command's outcome; `version` is the image version after it applied.
pub fn topic_outcome(outcome: Outcome, version: u64) -> Result<TopicAnswer, MetadataError> {
    match outcome {
        Outcome::Topic(t) => Ok((t, version)),
        other => Err(unexpected(other)),
    }
}

/// Reads an AlterPartition's outcome: when the new ISR completed a reassignment that moved
/// leadership off the sender, the change is committed and the answer is `NEW_LEADER_ELECTED`.
pub fn alter_partition_outcome(
    outcome: Outcome,
    sender: BrokerId,
    topic: String,
    partition: i32,
) -> Result<(PartitionState, u64), MetadataError> {
    match outcome {
        Outcome::Partition { state, .. } if state.leader != sender => {
            tracing::info!(%topic, partition, leader = state.leader, "reassignment completed: leadership moved");
            Err(MetadataError::NewLeaderElected { topic, partition, leader: state.leader })
        }
        Outcome::Partition { state, version } => Ok((state, version)),
        other => Err(unexpected(other)),
    }
}

/// Reads a reassignment's outcome (the version of the image containing it).
pub fn reassign_outcome(outcome: Outcome, target: &Option<Vec<BrokerId>>, topic: &str) -> Result<u64, MetadataError> {
    match outcome {
        Outcome::Partition { state, version } => {
            let partition = state.partition;
            match target {
                Some(target) => {
                    tracing::info!(topic, partition, ?target, replicas = ?state.replicas, adding = ?state.adding_replicas, removing = ?state.removing_replicas, "partition reassignment started")
                }
                None => {
                    tracing::info!(topic, partition, replicas = ?state.replicas, "partition reassignment cancelled")
                }
            }
            Ok(version)
        }
        other => Err(unexpected(other)),
    }
}

/// Reads an AllocateProducerIds outcome.
pub fn producer_ids_outcome(outcome: Outcome) -> Result<ProducerIdBlock, MetadataError> {
    match outcome {
        Outcome::ProducerIds { start, len } => Ok(ProducerIdBlock { start, len }),
        other => Err(unexpected(other)),
    }
}

/// An outcome that does not belong to the command that produced it (a bug, reported as such).
pub fn unexpected(outcome: Outcome) -> MetadataError {
    MetadataError::Internal(format!("unexpected outcome {outcome:?}"))
}
