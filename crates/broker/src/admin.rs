//! AdminService handlers: topics, partition reassignments and the cluster metadata clients route by.
//!
//! Like a Kafka broker, any broker accepts admin requests and passes them to the metadata
//! service; it answers once its own view of the cluster includes the change, so that a produce
//! right after a create finds the topic.

use vltava_metadata::{CreateTopic, MetadataError, PartitionState, TopicMetadata};
use vltava_proto::v1::{
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    BrokerInfo, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicRequest, CreateTopicResponse,
    DeleteTopicRequest, DeleteTopicResponse, DescribeClusterRequest, DescribeClusterResponse, DescribeTopicRequest,
    DescribeTopicResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ListTopicsResponse,
    MetadataRequest, MetadataResponse, PartitionDescription, PartitionReassignment, TopicDescription, TopicSummary,
};

use crate::auto_create;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Creates a topic.
pub async fn create_topic(broker: &Broker, req: CreateTopicRequest) -> Result<CreateTopicResponse, BrokerError> {
    let request = CreateTopic {
        name: req.name,
        partitions: req.partitions,
        replication_factor: req.replication_factor,
        configs: req.configs.into_iter().collect(),
        validate_only: req.validate_only,
    };
    let (topic, version) = broker.metadata.create_topic(request).await?;
    if !broker.applied(version).await {
        tracing::warn!(topic = %topic.name, "created, but this broker has not applied it yet");
    }
    Ok(CreateTopicResponse { topic: Some(describe(broker, &topic)) })
}

/// Grows a topic's partition count.
pub async fn create_partitions(
    broker: &Broker,
    req: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, BrokerError> {
    let (topic, version) = broker.metadata.create_partitions(&req.topic, req.total_count, req.validate_only).await?;
    if !req.validate_only {
        broker.applied(version).await;
    }
    Ok(CreatePartitionsResponse { topic: Some(describe(broker, &topic)) })
}

/// Sets or removes per-topic configuration.
pub async fn alter_configs(broker: &Broker, req: AlterConfigsRequest) -> Result<AlterConfigsResponse, BrokerError> {
    let (topic, version) =
        broker.metadata.alter_configs(&req.topic, req.set.into_iter().collect(), req.delete, req.validate_only).await?;
    if !req.validate_only {
        broker.applied(version).await;
    }
    Ok(AlterConfigsResponse { topic: Some(describe(broker, &topic)) })
}

/// Describes the controller quorum and the brokers.
pub async fn describe_cluster(
    broker: &Broker,
    _req: DescribeClusterRequest,
) -> Result<DescribeClusterResponse, BrokerError> {
    Ok(broker.metadata.describe_cluster().await?)
}

/// Starts or cancels one partition's reassignment; answers with the partition as this broker
/// sees it once it has applied the change.
pub async fn alter_partition_reassignments(
    broker: &Broker,
    req: AlterPartitionReassignmentsRequest,
) -> Result<AlterPartitionReassignmentsResponse, BrokerError> {
    let target = match (req.cancel, req.replicas.is_empty()) {
        (true, true) => None,
        (true, false) => {
            return Err(BrokerError::InvalidRequest("a cancellation takes no replicas".into()));
        }
        (false, _) => Some(req.replicas),
    };
    let version = broker.metadata.reassign_partition(&req.topic, req.partition, target).await?;
    broker.applied(version).await;
    let image = broker.metadata.image();
    let topic = image
        .topic(&req.topic)
        .ok_or_else(|| BrokerError::from(MetadataError::UnknownTopic { name: req.topic.clone() }))?;
    let partition = topic
        .partitions
        .get(usize::try_from(req.partition).unwrap_or(usize::MAX))
        .ok_or_else(|| BrokerError::UnknownTopicOrPartition { topic: req.topic.clone(), partition: req.partition })?;
    let offsets = offsets_of(broker, &topic.name);
    Ok(AlterPartitionReassignmentsResponse { partition: Some(partition_description(partition, &offsets)) })
}

/// The partitions being reassigned (of the requested topics, or all), sorted.
pub fn list_partition_reassignments(
    broker: &Broker,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = broker.metadata.image();
    let reassignments = image
        .topics
        .values()
        .filter(|t| req.topics.is_empty() || req.topics.contains(&t.name))
        .flat_map(|t| t.partitions.iter().filter(|p| p.is_reassigning()).map(move |p| (t, p)))
        .map(|(t, p)| PartitionReassignment {
            topic: t.name.clone(),
            partition: p.partition,
            replicas: p.replicas.clone(),
            adding_replicas: p.adding_replicas.clone(),
            removing_replicas: p.removing_replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
        })
        .collect();
    ListPartitionReassignmentsResponse { reassignments }
}

/// Deletes a topic and its data. The offsets committed for it go too: every group coordinator
/// deletes them when it sees the topic gone (`GroupCoordinator::forget_deleted_topics`).
pub async fn delete_topic(broker: &Broker, req: DeleteTopicRequest) -> Result<DeleteTopicResponse, BrokerError> {
    let version = broker.metadata.delete_topic(&req.name).await?;
    broker.applied(version).await;
    broker.groups.forget_deleted_topics(&broker.replicas.image()).await;
    Ok(DeleteTopicResponse {})
}

/// Lists topics by name.
pub fn list_topics(broker: &Broker) -> ListTopicsResponse {
    let image = broker.metadata.image();
    let topics = image
        .topics
        .values()
        .map(|t| TopicSummary {
            name: t.name.clone(),
            topic_id: t.id.clone(),
            partitions: t.partitions.len() as i32,
            replication_factor: t.replication_factor() as i32,
        })
        .collect();
    ListTopicsResponse { topics }
}

/// Describes one topic, with offsets for the partitions this broker hosts.
pub fn describe_topic(broker: &Broker, req: DescribeTopicRequest) -> Result<DescribeTopicResponse, BrokerError> {
    let image = broker.metadata.image();
    let topic = image
        .topic(&req.name)
        .ok_or_else(|| BrokerError::from(MetadataError::UnknownTopic { name: req.name.clone() }))?;
    Ok(DescribeTopicResponse { topic: Some(describe(broker, topic)) })
}

/// Brokers and partition leaders, for client routing.
pub async fn metadata(broker: &Broker, req: MetadataRequest) -> Result<MetadataResponse, BrokerError> {
    for name in &req.topics {
        auto_create::ensure_topic(broker, name).await?;
    }
    let image = broker.metadata.image();
    let topics = if req.topics.is_empty() {
        image.topics.values().map(|t| routing(t)).collect()
    } else {
        let mut out = Vec::with_capacity(req.topics.len());
        for name in &req.topics {
            let t = image
                .topic(name)
                .ok_or_else(|| BrokerError::from(MetadataError::UnknownTopic { name: name.clone() }))?;
            out.push(routing(t));
        }
        out
    };
    Ok(MetadataResponse {
        brokers: image
            .live_brokers()
            .map(|b| BrokerInfo { id: b.id, address: b.address.clone(), rack: b.rack.clone().unwrap_or_default() })
            .collect(),
        topics,
        cluster_id: image.cluster_id.clone(),
    })
}

/// What the answering broker knows of a partition it hosts: log start offset, log end offset,
/// high watermark and dirty ratio (-1 each when unknown).
type Local = (i64, i64, i64, f64);

fn routing(t: &TopicMetadata) -> TopicDescription {
    description(t, |_| (-1, -1, -1, -1.0))
}

fn describe(broker: &Broker, t: &TopicMetadata) -> TopicDescription {
    description(t, offsets_of(broker, &t.name))
}

/// The [`Local`] view of `topic`'s partitions hosted here.
fn offsets_of<'a>(broker: &'a Broker, topic: &'a str) -> impl Fn(i32) -> Local + 'a {
    move |p| match broker.replicas.partition(topic, p) {
        Ok(part) => {
            let dirty = part.dirty_stats(vltava_common::time::now_ms()).map_or(-1.0, |s| s.ratio());
            (part.log_start_offset(), part.log_end_offset(), part.high_watermark(), dirty)
        }
        Err(_) => (-1, -1, -1, -1.0),
    }
}

fn description(t: &TopicMetadata, offsets: impl Fn(i32) -> Local) -> TopicDescription {
    TopicDescription {
        name: t.name.clone(),
        topic_id: t.id.clone(),
        partitions: t.partitions.iter().map(|p| partition_description(p, &offsets)).collect(),
        configs: t.configs.clone().into_iter().collect(),
    }
}

fn partition_description(p: &PartitionState, offsets: &impl Fn(i32) -> Local) -> PartitionDescription {
    let (log_start_offset, log_end_offset, high_watermark, dirty_ratio) = offsets(p.partition);
    PartitionDescription {
        partition: p.partition,
        leader: p.leader,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        leader_epoch: p.leader_epoch,
        log_start_offset,
        log_end_offset,
        high_watermark,
        adding_replicas: p.adding_replicas.clone(),
        removing_replicas: p.removing_replicas.clone(),
        partition_epoch: p.partition_epoch,
        dirty_ratio,
    }
}
