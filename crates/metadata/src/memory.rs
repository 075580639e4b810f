//! [`MemoryMetadata`]: the metadata state machine in memory, with no Raft and no disk.
//!
//! For tests of brokers and gateways that are not about the controller. Writes are planned by
//! [`crate::plan`] exactly as on the active controller and applied at once to one
//! [`MetadataState`], so a broker sees the same images, epochs and errors it would see from a
//! one-voter quorum. What it leaves out: persistence (everything is lost on drop), broker
//! sessions (a broker is fenced only by [`MemoryMetadata::fence`], never by a timeout) and the
//! quorum itself (`describe_cluster` names one controller, id 1).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use vltava_proto::v1::{ControllerInfo, DescribeClusterResponse};

use crate::command::Command;
use crate::error::MetadataError;
use crate::model::{
    AlterPartition, BrokerId, BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata,
};
use crate::plan::{self, Plan, TopicAnswer};
use crate::service::{MetadataService, ProducerIdBlock, Registered};
use crate::state::{MetadataState, Outcome};

/// A metadata service held in memory (see the module documentation).
pub struct MemoryMetadata {
    state: Mutex<Applied>,
    images: watch::Sender<Arc<ClusterImage>>,
    default_replication_factor: i32,
}

struct Applied {
    state: MetadataState,
    /// The index the next command is applied at (Raft's entry index, here a counter).
    next_index: u64,
}

impl MemoryMetadata {
    /// An empty cluster named `cluster_id`; topics created without a replication factor get
    /// `default_replication_factor` replicas.
    pub fn new(cluster_id: &str, default_replication_factor: i32) -> Arc<Self> {
        let mut state = MetadataState::default();
        state.image.cluster_id = cluster_id.to_string();
        state.controllers.insert(1, "memory".to_string());
        let (images, _) = watch::channel(Arc::new(state.image.clone()));
        Arc::new(Self {
            state: Mutex::new(Applied { state, next_index: 1 }),
            images,
            default_replication_factor: default_replication_factor.max(1),
        })
    }

    /// Fences a broker as an expired session would (its leaderships move to other in-sync replicas).
    pub fn fence(&self, id: BrokerId) -> Result<(), MetadataError> {
        let epoch = self.image().brokers.get(&id).ok_or(MetadataError::BrokerNotRegistered { id })?.epoch;
        self.apply(Command::FenceBroker { id, epoch }).map(|_| ())
    }

    /// Applies `command` and publishes the new image. On error nothing changed.
    fn apply(&self, command: Command) -> Result<(Outcome, u64), MetadataError> {
        let mut applied = self.state.lock();
        let index = applied.next_index;
        let (outcome, delta) = applied.state.apply(index, &command)?;
        applied.next_index += 1;
        if !delta.is_empty() || applied.state.image.version != self.images.borrow().version {
            self.images.send_replace(Arc::new(applied.state.image.clone()));
        }
        Ok((outcome, index))
    }

    fn topic_plan(&self, plan: Plan<TopicAnswer>) -> Result<TopicAnswer, MetadataError> {
        match plan {
            Plan::Answer(answer) => Ok(answer),
            Plan::Apply(command) => {
                let (outcome, version) = self.apply(command)?;
                plan::topic_outcome(outcome, version)
            }
        }
    }
}

#[async_trait::async_trait]
impl MetadataService for MemoryMetadata {
    async fn create_topic(&self, request: CreateTopic) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        let plan = plan::create_topic(&self.image(), &request, self.default_replication_factor)?;
        self.topic_plan(plan)
    }

    async fn delete_topic(&self, name: &str) -> Result<u64, MetadataError> {
        let command = plan::delete_topic(&self.image(), name)?;
        self.apply(command).map(|(_, version)| version)
    }

    async fn create_partitions(
        &self,
        topic: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        let plan = plan::create_partitions(&self.image(), topic, total, validate_only)?;
        self.topic_plan(plan)
    }

    async fn alter_configs(
        &self,
        topic: &str,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        let plan = plan::alter_configs(&self.image(), topic, set, delete, validate_only)?;
        self.topic_plan(plan)
    }

    async fn register_broker(&self, registration: BrokerRegistration) -> Result<Registered, MetadataError> {
        match self.apply(Command::RegisterBroker(registration))? {
            (Outcome::Registered { epoch }, version) => Ok(Registered { epoch, version }),
            (other, _) => Err(plan::unexpected(other)),
        }
    }

    async fn heartbeat(&self, broker: BrokerId, epoch: i64) -> Result<bool, MetadataError> {
        let image = self.image();
        let registered = image.brokers.get(&broker).ok_or(MetadataError::BrokerNotRegistered { id: broker })?;
        if registered.epoch != epoch {
            return Err(MetadataError::StaleBrokerEpoch { id: broker, expected: registered.epoch, got: epoch });
        }
        Ok(registered.fenced)
    }

    async fn controlled_shutdown(&self, broker: BrokerId, epoch: i64) -> Result<u64, MetadataError> {
        self.apply(Command::ControlledShutdown { id: broker, epoch }).map(|(_, version)| version)
    }

    async fn allocate_producer_ids(&self, broker: BrokerId, epoch: i64) -> Result<ProducerIdBlock, MetadataError> {
        let (outcome, _) = self.apply(Command::AllocateProducerIds { broker, broker_epoch: epoch })?;
        plan::producer_ids_outcome(outcome)
    }

    async fn alter_partition(&self, request: AlterPartition) -> Result<(PartitionState, u64), MetadataError> {
        let (topic, partition, sender) = (request.topic.clone(), request.partition, request.broker_id);
        match plan::alter_partition(&self.image(), request) {
            Plan::Answer(answer) => answer,
            Plan::Apply(command) => {
                let (outcome, _) = self.apply(command)?;
                plan::alter_partition_outcome(outcome, sender, topic, partition)
            }
        }
    }

    async fn reassign_partition(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<BrokerId>>,
    ) -> Result<u64, MetadataError> {
        let command = plan::reassign_partition(&self.image(), topic, partition, target.clone())?;
        let (outcome, _) = self.apply(command)?;
        plan::reassign_outcome(outcome, &target, topic)
    }

    async fn describe_cluster(&self) -> Result<DescribeClusterResponse, MetadataError> {
        let image = self.image();
        Ok(DescribeClusterResponse {
            cluster_id: image.cluster_id.clone(),
            answered_by: 1,
            leader_id: 1,
            term: 1,
            commit_index: image.version,
            applied_index: image.version,
            metadata_version: image.version,
            controllers: vec![ControllerInfo {
                id: 1,
                address: "memory".into(),
                leader: true,
                match_index: image.version,
                voter: true,
            }],
            brokers: image.brokers.values().map(crate::convert::broker_to_proto).collect(),
        })
    }

    fn image(&self) -> Arc<ClusterImage> {
        self.images.borrow().clone()
    }

    fn watch(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.images.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::create_request;

    fn broker(id: BrokerId) -> BrokerRegistration {
        BrokerRegistration::new(id, format!("127.0.0.1:{}", 9000 + id), None)
    }

    #[tokio::test]
    async fn given_registered_brokers_when_a_topic_is_created_should_publish_an_image_with_its_leaders() {
        let m = MemoryMetadata::new("c1", 2);
        let mut watch = m.watch();
        for id in 1..=3 {
            m.register_broker(broker(id)).await.unwrap();
        }
        let (topic, version) = m.create_topic(create_request("t", 3)).await.unwrap();
        assert_eq!(topic.partitions.len(), 3);
        assert!(topic.partitions.iter().all(|p| p.replicas.len() == 2 && p.isr == p.replicas));
        watch.wait_for(|i| i.version >= version).await.unwrap();
        assert!(m.image().topic("t").is_some());
        let again = m.create_topic(create_request("t", 3)).await.unwrap_err();
        assert!(matches!(again, MetadataError::TopicAlreadyExists { .. }), "{again:?}");
    }

    #[tokio::test]
    async fn given_a_fenced_leader_should_elect_another_in_sync_replica_and_refuse_its_stale_epoch() {
        let m = MemoryMetadata::new("c1", 2);
        let mut epochs = Vec::new();
        for id in 1..=2 {
            epochs.push(m.register_broker(broker(id)).await.unwrap().epoch);
        }
        m.create_topic(create_request("t", 1)).await.unwrap();
        let p = m.image().partition("t", 0).unwrap().clone();
        m.fence(p.leader).unwrap();
        let moved = m.image().partition("t", 0).unwrap().clone();
        assert_ne!(moved.leader, p.leader);
        assert_eq!(moved.leader_epoch, p.leader_epoch + 1);
        let stale = m.heartbeat(1, epochs[0] + 100).await.unwrap_err();
        assert!(matches!(stale, MetadataError::StaleBrokerEpoch { .. }), "{stale:?}");
        assert!(m.heartbeat(p.leader, epochs[(p.leader - 1) as usize]).await.unwrap(), "fenced");
    }
}
