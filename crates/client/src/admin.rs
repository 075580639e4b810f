//! [`Admin`]: topic administration, metadata and offset look-ups (Kafka's `Admin` client).

use std::sync::Arc;
use std::time::Duration;

use vltava_proto::v1::{
    AlterConfigsRequest, AlterPartitionReassignmentsRequest, CreatePartitionsRequest, CreateTopicRequest,
    DeleteTopicRequest, DescribeClusterRequest, DescribeClusterResponse, DescribeTopicRequest,
    DescribeTransactionsRequest, ErrorCode, GroupDescription, ListPartitionReassignmentsRequest, ListTopicsRequest,
    MetadataResponse, PartitionDescription, PartitionReassignment, TopicDescription, TopicSummary, TransactionState,
};

use crate::cluster::Cluster;
use crate::config::IsolationLevel;
use crate::error::ClientError;
use crate::offsets::{self, on_any_node};
use crate::types::{NewTopic, OffsetAndMetadata, OffsetSpec, TopicPartition};

/// Default timeout of admin calls.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// An administrative client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

impl Admin {
    /// Connects to the first reachable of the comma-separated `host:port` bootstrap servers.
    pub async fn connect(bootstrap: &str) -> Result<Admin, ClientError> {
        crate::config::ProducerConfig::new(bootstrap).validate()?;
        Ok(Admin { cluster: Cluster::connect(bootstrap, ADMIN_TIMEOUT, false).await? })
    }

    /// Creates a topic and returns it as created.
    ///
    /// Fails with `TOPIC_ALREADY_EXISTS`, `INVALID_TOPIC`, `INVALID_PARTITIONS`,
    /// `INVALID_REPLICATION_FACTOR` or `INVALID_CONFIG`.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<TopicDescription, ClientError> {
        let request = CreateTopicRequest {
            name: topic.name.clone(),
            partitions: topic.partitions,
            replication_factor: topic.replication_factor,
            configs: topic.configs.into_iter().collect(),
            validate_only: false,
        };
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(request.clone());
            async move { node.admin().create_topic(request).await }
        })
        .await?;
        response
            .into_inner()
            .topic
            .ok_or_else(|| ClientError::server(ErrorCode::UnknownServerError, "create_topic returned no topic"))
    }

    /// Deletes a topic and all its data. Fails with `UNKNOWN_TOPIC_OR_PARTITION`.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let request = DeleteTopicRequest { name: name.to_string() };
        on_any_node(&self.cluster, |node| {
            let request = timed(request.clone());
            async move { node.admin().delete_topic(request).await }
        })
        .await?;
        Ok(())
    }

    /// Every topic, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicSummary>, ClientError> {
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(ListTopicsRequest {});
            async move { node.admin().list_topics(request).await }
        })
        .await?;
        Ok(response.into_inner().topics)
    }

    /// One topic with partitions, leaders, replicas, ISR and offsets.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, ClientError> {
        let request = DescribeTopicRequest { name: name.to_string() };
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(request.clone());
            async move { node.admin().describe_topic(request).await }
        })
        .await?;
        response.into_inner().topic.ok_or_else(|| crate::cluster::unknown_topic(name))
    }

    /// Grows a topic to `total` partitions (Kafka's `kafka-topics --alter --partitions`).
    pub async fn create_partitions(&self, name: &str, total: i32) -> Result<TopicDescription, ClientError> {
        let request = CreatePartitionsRequest { topic: name.to_string(), total_count: total, validate_only: false };
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(request.clone());
            async move { node.admin().create_partitions(request).await }
        })
        .await?;
        response.into_inner().topic.ok_or_else(|| crate::cluster::unknown_topic(name))
    }

    /// Sets (`set`) and removes (`delete`) per-topic configuration keys.
    pub async fn alter_configs(
        &self,
        name: &str,
        set: std::collections::HashMap<String, String>,
        delete: Vec<String>,
    ) -> Result<TopicDescription, ClientError> {
        let request = AlterConfigsRequest { topic: name.to_string(), set, delete, validate_only: false };
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(request.clone());
            async move { node.admin().alter_configs(request).await }
        })
        .await?;
        response.into_inner().topic.ok_or_else(|| crate::cluster::unknown_topic(name))
    }

    /// The controller quorum (leader, term, applied index) and the brokers (alive or fenced).
    pub async fn describe_cluster(&self) -> Result<DescribeClusterResponse, ClientError> {
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(DescribeClusterRequest {});
            async move { node.admin().describe_cluster(request).await }
        })
        .await?;
        Ok(response.into_inner())
    }

    /// Starts moving a partition to `replicas` (preferred leader first), as Kafka's
    /// `kafka-reassign-partitions --execute` does. The new replicas copy the log from the leader;
    /// once all of them are in sync the old ones are dropped. Returns the partition right after
    /// the change: empty `adding_replicas` and `removing_replicas` mean the move already
    /// completed (every new replica was in sync) or changed nothing.
    ///
    /// Fails with `UNKNOWN_TOPIC_OR_PARTITION` or `INVALID_REPLICA_ASSIGNMENT`.
    pub async fn reassign_partition(
        &self,
        topic: &str,
        partition: i32,
        replicas: Vec<i32>,
    ) -> Result<PartitionDescription, ClientError> {
        self.alter_reassignment(AlterPartitionReassignmentsRequest {
            topic: topic.to_string(),
            partition,
            replicas,
            cancel: false,
        })
        .await
    }

    /// Cancels the reassignment in progress of a partition: it goes back to its replicas from
    /// before. Fails with `NO_REASSIGNMENT_IN_PROGRESS` when none is.
    pub async fn cancel_reassignment(&self, topic: &str, partition: i32) -> Result<PartitionDescription, ClientError> {
        self.alter_reassignment(AlterPartitionReassignmentsRequest {
            topic: topic.to_string(),
            partition,
            replicas: Vec::new(),
            cancel: true,
        })
        .await
    }

    async fn alter_reassignment(
        &self,
        request: AlterPartitionReassignmentsRequest,
    ) -> Result<PartitionDescription, ClientError> {
        let (topic, partition) = (request.topic.clone(), request.partition);
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(request.clone());
            async move { node.admin().alter_partition_reassignments(request).await }
        })
        .await?;
        response.into_inner().partition.ok_or_else(|| {
            ClientError::server(ErrorCode::UnknownTopicOrPartition, format!("no answer for {topic}-{partition}"))
        })
    }

    /// The partitions being reassigned, sorted by topic and partition, with their replicas,
    /// the replicas being added and removed, and the ISR.
    pub async fn list_reassignments(&self) -> Result<Vec<PartitionReassignment>, ClientError> {
        let response = on_any_node(&self.cluster, |node| {
            let request = timed(ListPartitionReassignmentsRequest { topics: Vec::new() });
            async move { node.admin().list_partition_reassignments(request).await }
        })
        .await?;
        Ok(response.into_inner().reassignments)
    }

    /// Brokers and partition leaders of every topic.
    pub async fn metadata(&self) -> Result<MetadataResponse, ClientError> {
        let response = self.cluster.metadata(&[]).await?;
        Ok(response)
    }

    /// The offset `spec` designates in `tp` (asked of the partition's leader): the log start,
    /// the high watermark, or the first offset with a timestamp at or after the given one
    /// (-1 when there is none).
    pub async fn list_offsets(&self, tp: &TopicPartition, spec: OffsetSpec) -> Result<i64, ClientError> {
        if self.cluster.leader(&tp.topic, tp.partition).is_none() {
            let missing = self.cluster.refresh(std::slice::from_ref(&tp.topic)).await?;
            if !missing.is_empty() {
                return Err(crate::cluster::unknown_topic(&tp.topic));
            }
        }
        let found =
            offsets::list_offsets(&self.cluster, &[(tp.clone(), spec.wire())], IsolationLevel::ReadUncommitted).await?;
        found
            .get(tp)
            .copied()
            .ok_or_else(|| ClientError::server(ErrorCode::UnknownTopicOrPartition, format!("no answer for {tp}")))
    }

    /// The state of a transactional id, from its coordinator (Kafka's `describeTransactions`):
    /// its status (`Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`, `CompleteCommit`,
    /// `CompleteAbort`), producer id and epoch, timeout and open partitions.
    ///
    /// # Errors
    ///
    /// `TRANSACTIONAL_ID_NOT_FOUND` for an id never used; the coordinator's errors.
    pub async fn describe_transaction(&self, transactional_id: &str) -> Result<TransactionState, ClientError> {
        let timeout = self.cluster.request_timeout();
        let request = DescribeTransactionsRequest { transactional_ids: vec![transactional_id.to_string()] };
        let response =
            offsets::on_coordinator_of(&self.cluster, offsets::CoordinatorKey::Transaction(transactional_id), |node| {
                let request = offsets::timed(request.clone(), timeout);
                async move { node.transactions().describe_transactions(request).await }
            })
            .await?;
        let state =
            response.into_inner().transactions.pop().ok_or_else(|| {
                ClientError::server(ErrorCode::UnknownServerError, "the coordinator described nothing")
            })?;
        match ClientError::from_partition_code(state.error_code, &state.error_message) {
            Some(e) => Err(e),
            None => Ok(state),
        }
    }

    /// Groups with members or committed offsets, sorted.
    pub async fn list_groups(&self) -> Result<Vec<String>, ClientError> {
        offsets::list_groups(&self.cluster).await
    }

    /// Deletes `group`: its committed offsets and state. Refused (`NON_EMPTY_GROUP`) while it
    /// has members, `GROUP_ID_NOT_FOUND` when it does not exist.
    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        offsets::delete_group(&self.cluster, group).await
    }

    /// `group` as its coordinator sees it: state, epochs, members with their assignments, and
    /// per partition the committed offset, log end offset and lag. `GROUP_ID_NOT_FOUND` when
    /// it has neither members nor committed offsets.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        offsets::describe_group(&self.cluster, group).await
    }

    /// Resets `group`'s committed offsets (Kafka's `alterConsumerGroupOffsets`). Refused with
    /// `NON_EMPTY_GROUP` while the group has members and `OFFSET_OUT_OF_RANGE` for an offset
    /// outside its partition's log; then nothing is stored.
    pub async fn alter_group_offsets(&self, group: &str, offsets: &[(TopicPartition, i64)]) -> Result<(), ClientError> {
        offsets::alter_group_offsets(&self.cluster, group, offsets).await
    }

    /// Every offset `group` committed, sorted by partition.
    pub async fn group_offsets(&self, group: &str) -> Result<Vec<(TopicPartition, i64)>, ClientError> {
        let mut offsets = offsets::fetch_committed(&self.cluster, group, &[]).await?;
        offsets.sort();
        Ok(offsets)
    }

    /// Commits offsets for a group (e.g. to reset a group's position by hand).
    pub async fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &std::collections::HashMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        let offsets = offsets.iter().map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o))).collect();
        offsets::commit(&self.cluster, group, None, &offsets).await
    }
}

fn timed<T>(message: T) -> tonic::Request<T> {
    offsets::timed(message, ADMIN_TIMEOUT)
}
