//! [`Controller`]: one member of the controller quorum, as a [`MetadataService`].
//!
//! Writes are planned here on the active controller (validation, topic ids, placement) and
//! proposed as [`Command`]s; the state machine re-checks them at apply. A follower answers writes
//! with `NOT_CONTROLLER` naming the leader, which the gRPC layer turns into a forward.
//! Broker sessions live in the active controller's memory: heartbeats renew them without touching
//! the Raft log, and a broker whose session expires is fenced through the log (see
//! [`crate::liveness`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use raft::prelude::{ConfChange, ConfChangeType};
use tokio::sync::watch;
use vltava_proto::v1::{BrokerState, ControllerInfo, DescribeClusterResponse};

use crate::liveness::Sessions;
use crate::node::{NodeHandle, NodeSettings, QuorumStatus};
use crate::raft_store::RaftStore;
use crate::transport::Transport;
use vltava_metadata::command::Command;
use vltava_metadata::error::MetadataError;
use vltava_metadata::model::{
    AlterPartition, BrokerId, BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata,
};
use vltava_metadata::plan::{self, Plan, TopicAnswer};
use vltava_metadata::service::{MetadataService, ProducerIdBlock, Registered};
use vltava_metadata::state::Outcome;

/// Everything a controller needs to start.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// Raft settings (node id, ticks, snapshots, timeouts).
    pub node: NodeSettings,
    /// The cluster id; a data directory of another cluster is refused.
    pub cluster_id: String,
    /// The initial voters (node id to address); used the first time the data directory is created.
    pub voters: BTreeMap<u64, String>,
    /// Start as a new, non-voting member that waits to be added (`vltava controller add`).
    pub join: bool,
    /// Data directory (RocksDB).
    pub data_dir: PathBuf,
    /// Replication factor of topics created without one.
    pub default_replication_factor: i32,
    /// A broker without a heartbeat for this long is fenced.
    pub session_timeout: Duration,
    /// The brokers run in this controller's process (`vltava dev`): a registration from a new
    /// incarnation always replaces the old one, which cannot have outlived the process. (Otherwise
    /// a restarted `vltava dev` would wait for the old incarnation's session, a year there.)
    pub in_process_brokers: bool,
}

/// One controller of the quorum.
pub struct Controller {
    node: NodeHandle,
    stop: watch::Sender<bool>,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    cluster_id: String,
    default_replication_factor: i32,
    sessions: Arc<Sessions>,
    in_process_brokers: bool,
    /// How long a request waits for an election to finish (two election timeouts).
    leader_wait: Duration,
}

impl Controller {
    /// Opens the data directory and starts the Raft node and the session checker. Raft messages
    /// from peers must be fed to [`Controller::raft_inbox`] (the gRPC server does).
    pub fn start(settings: ControllerSettings) -> Result<Arc<Self>, MetadataError> {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| MetadataError::Store(format!("{}: {e}", settings.data_dir.display())))?;
        let store = RaftStore::open(&settings.data_dir)?;
        bootstrap(&store, &settings)?;
        let (transport, feedback) = Transport::new(settings.cluster_id.clone());
        let (stop, stop_rx) = watch::channel(false);
        let (node, task) = crate::node::start(
            settings.node.clone(),
            store,
            transport,
            feedback,
            crate::slog_bridge::logger(),
            stop_rx.clone(),
        )?;
        let sessions = Arc::new(Sessions::new(settings.session_timeout));
        let controller = Arc::new(Self {
            node,
            stop,
            task: parking_lot::Mutex::new(Some(task)),
            cluster_id: settings.cluster_id.clone(),
            default_replication_factor: settings.default_replication_factor.max(1),
            sessions: sessions.clone(),
            in_process_brokers: settings.in_process_brokers,
            leader_wait: settings.node.tick * (settings.node.election_ticks as u32) * 4,
        });
        tokio::spawn(crate::liveness::fence_expired(controller.node.clone(), sessions, settings.node.tick, stop_rx));
        Ok(controller)
    }

    /// Stops the Raft node and waits until its storage is closed (so the data directory can be
    /// opened again in this process).
    pub async fn stop(&self) {
        self.stop.send_replace(true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// A single-voter quorum in process, for `vltava dev` and tests: node id 1, no network.
    pub fn start_single(
        data_dir: PathBuf,
        default_replication_factor: i32,
        cluster_id: Option<String>,
    ) -> Result<Arc<Self>, MetadataError> {
        let cluster_id = match cluster_id {
            Some(c) => c,
            None => existing_cluster_id(&data_dir)?.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        };
        Self::start(ControllerSettings {
            node: NodeSettings {
                id: 1,
                tick: Duration::from_millis(100),
                election_ticks: 10,
                heartbeat_ticks: 2,
                snapshot_entries: 10_000,
                request_timeout: Duration::from_secs(10),
            },
            cluster_id,
            voters: BTreeMap::from([(1, "in-process".to_string())]),
            join: false,
            data_dir,
            default_replication_factor,
            session_timeout: Duration::from_secs(3600 * 24 * 365),
            in_process_brokers: true,
        })
    }

    /// Where peers' Raft messages go.
    pub fn raft_inbox(&self) -> &tokio::sync::mpsc::Sender<Vec<raft::prelude::Message>> {
        &self.node.raft_inbox
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The latest Raft status.
    pub fn status(&self) -> QuorumStatus {
        self.node.status.borrow().clone()
    }

    /// A watch on the Raft status.
    pub fn status_watch(&self) -> watch::Receiver<QuorumStatus> {
        self.node.status.clone()
    }

    /// Recent deltas, for metadata watchers.
    pub fn deltas(&self) -> &Arc<crate::deltas::DeltaLog> {
        &self.node.deltas
    }

    /// Fails with NOT_CONTROLLER (naming the leader when known) unless this node leads. While no
    /// leader is known (an election is running) it waits for one, up to `leader_wait`.
    async fn require_leader(&self) -> Result<(), MetadataError> {
        let mut rx = self.node.status.clone();
        let known = tokio::time::timeout(self.leader_wait, rx.wait_for(|s| s.leader_id != 0)).await;
        let status = match known {
            Ok(Ok(s)) => s.clone(),
            _ => self.status(),
        };
        if status.is_leader {
            return Ok(());
        }
        let leader = status.controllers.get(&status.leader_id).map(|a| (status.leader_id, a.clone()));
        Err(MetadataError::NotController { leader })
    }

    /// Answers a planned topic change, proposing it first when it changes something.
    async fn topic_plan(&self, plan: Plan<TopicAnswer>) -> Result<TopicAnswer, MetadataError> {
        match plan {
            Plan::Answer(answer) => Ok(answer),
            Plan::Apply(command) => {
                let outcome = self.node.propose(command).await?;
                plan::topic_outcome(outcome, self.image().version)
            }
        }
    }

    /// Waits (at most `limit`) until some controller is known to lead; returns whether one is.
    pub async fn wait_for_leader(&self, limit: Duration) -> bool {
        let mut rx = self.node.status.clone();
        matches!(tokio::time::timeout(limit, rx.wait_for(|s| s.leader_id != 0)).await, Ok(Ok(_)))
    }

    /// Waits until this controller has applied everything the quorum had committed when called
    /// (Raft read index, confirmed by a majority).
    pub async fn read_barrier(&self) -> Result<(), MetadataError> {
        self.node.read_barrier().await
    }

    /// Adds a voter (one configuration change at a time).
    pub async fn add_voter(&self, id: u64, address: String) -> Result<u64, MetadataError> {
        self.require_leader().await?;
        if id == 0 || address.is_empty() {
            return Err(MetadataError::InvalidVoterChange("a voter needs a non-zero id and an address".into()));
        }
        if self.status().voters.contains(&id) {
            return Err(MetadataError::InvalidVoterChange(format!("controller {id} is already a voter")));
        }
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::AddNode);
        cc.node_id = id;
        self.node.change_conf(cc, Some(address)).await?;
        Ok(self.status().applied)
    }

    /// Removes a voter (one configuration change at a time; never the last one).
    pub async fn remove_voter(&self, id: u64) -> Result<u64, MetadataError> {
        self.require_leader().await?;
        let voters = self.status().voters;
        if !voters.contains(&id) {
            return Err(MetadataError::InvalidVoterChange(format!("controller {id} is not a voter")));
        }
        if voters.len() == 1 {
            return Err(MetadataError::InvalidVoterChange("the last voter cannot be removed".into()));
        }
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::RemoveNode);
        cc.node_id = id;
        self.node.change_conf(cc, None).await?;
        Ok(self.status().applied)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The cluster id stored in `data_dir`, if it holds a controller's data.
pub fn existing_cluster_id(data_dir: &std::path::Path) -> Result<Option<String>, MetadataError> {
    if !data_dir.join("CURRENT").exists() {
        return Ok(None);
    }
    let store = RaftStore::open(data_dir)?;
    let id = store.applied().read().state.image.cluster_id.clone();
    Ok(Some(id).filter(|s| !s.is_empty()))
}

/// First start: records the cluster id and the initial voters. Later starts: checks the cluster id.
fn bootstrap(store: &RaftStore, settings: &ControllerSettings) -> Result<(), MetadataError> {
    let stored = store.applied().read().state.image.cluster_id.clone();
    if !stored.is_empty() {
        if stored != settings.cluster_id {
            return Err(MetadataError::InconsistentClusterId { ours: stored, theirs: settings.cluster_id.clone() });
        }
        return Ok(());
    }
    if !store.is_empty() {
        return Err(MetadataError::Store("the data directory has Raft state but no cluster id".into()));
    }
    if !settings.join && !settings.voters.contains_key(&settings.node.id) {
        return Err(MetadataError::InvalidVoterChange(format!(
            "node {} is not among the initial voters {:?}; start it with join = true to add it later",
            settings.node.id,
            settings.voters.keys().collect::<Vec<_>>()
        )));
    }
    store.bootstrap(&settings.cluster_id, &settings.voters, !settings.join)?;
    tracing::info!(cluster_id = %settings.cluster_id, node = settings.node.id, join = settings.join, "controller data directory initialized");
    Ok(())
}

#[async_trait::async_trait]
impl MetadataService for Controller {
    async fn create_topic(&self, request: CreateTopic) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        self.require_leader().await?;
        let plan = plan::create_topic(&self.image(), &request, self.default_replication_factor)?;
        let applied = matches!(plan, Plan::Apply(_));
        let result = self.topic_plan(plan).await?;
        if applied {
            tracing::info!(topic = %request.name, partitions = request.partitions, "topic created");
        }
        Ok(result)
    }

    async fn delete_topic(&self, name: &str) -> Result<u64, MetadataError> {
        self.require_leader().await?;
        let command = plan::delete_topic(&self.image(), name)?;
        self.node.propose(command).await?;
        tracing::info!(topic = %name, "topic deleted");
        Ok(self.image().version)
    }

    async fn create_partitions(
        &self,
        topic: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        self.require_leader().await?;
        let plan = plan::create_partitions(&self.image(), topic, total, validate_only)?;
        self.topic_plan(plan).await
    }

    async fn alter_configs(
        &self,
        topic: &str,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        self.require_leader().await?;
        let plan = plan::alter_configs(&self.image(), topic, set, delete, validate_only)?;
        self.topic_plan(plan).await
    }

    async fn register_broker(&self, registration: BrokerRegistration) -> Result<Registered, MetadataError> {
        self.require_leader().await?;
        if let Some(existing) = self.image().brokers.get(&registration.id)
            && !self.in_process_brokers
            && !existing.fenced
            && existing.incarnation != registration.incarnation
            && self.sessions.is_alive(registration.id, existing.epoch)
        {
            return Err(MetadataError::DuplicateBrokerRegistration {
                id: registration.id,
                incarnation: existing.incarnation.clone(),
            });
        }
        let id = registration.id;
        match self.node.propose(Command::RegisterBroker(registration)).await? {
            Outcome::Registered { epoch } => {
                self.sessions.renew(id, epoch);
                tracing::info!(broker = id, epoch, "broker registered");
                Ok(Registered { epoch, version: self.image().version })
            }
            other => Err(plan::unexpected(other)),
        }
    }

    async fn heartbeat(&self, broker: BrokerId, epoch: i64) -> Result<bool, MetadataError> {
        self.require_leader().await?;
        let image = self.image();
        let registered = image.brokers.get(&broker).ok_or(MetadataError::BrokerNotRegistered { id: broker })?;
        if registered.epoch != epoch {
            return Err(MetadataError::StaleBrokerEpoch { id: broker, expected: registered.epoch, got: epoch });
        }
        if registered.fenced {
            return Ok(true);
        }
        self.sessions.renew(broker, epoch);
        Ok(false)
    }

    async fn controlled_shutdown(&self, broker: BrokerId, epoch: i64) -> Result<u64, MetadataError> {
        self.require_leader().await?;
        self.node.propose(Command::ControlledShutdown { id: broker, epoch }).await?;
        self.sessions.remove(broker);
        tracing::info!(broker, "controlled shutdown: leaderships moved");
        Ok(self.image().version)
    }

    async fn allocate_producer_ids(&self, broker: BrokerId, epoch: i64) -> Result<ProducerIdBlock, MetadataError> {
        self.require_leader().await?;
        let outcome = self.node.propose(Command::AllocateProducerIds { broker, broker_epoch: epoch }).await?;
        plan::producer_ids_outcome(outcome)
    }

    async fn alter_partition(&self, request: AlterPartition) -> Result<(PartitionState, u64), MetadataError> {
        self.require_leader().await?;
        let (topic, partition, sender) = (request.topic.clone(), request.partition, request.broker_id);
        match plan::alter_partition(&self.image(), request) {
            Plan::Answer(answer) => answer,
            Plan::Apply(command) => {
                let outcome = self.node.propose(command).await?;
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
        self.require_leader().await?;
        let command = plan::reassign_partition(&self.image(), topic, partition, target.clone())?;
        let outcome = self.node.propose(command).await?;
        plan::reassign_outcome(outcome, &target, topic)
    }

    async fn describe_cluster(&self) -> Result<DescribeClusterResponse, MetadataError> {
        let status = self.status();
        let image = self.image();
        let mut ids: Vec<u64> = status.controllers.keys().copied().collect();
        ids.extend(status.voters.iter().chain(&status.learners).filter(|id| !status.controllers.contains_key(id)));
        ids.sort_unstable();
        ids.dedup();
        let controllers = ids
            .into_iter()
            .map(|id| ControllerInfo {
                id,
                address: status.controllers.get(&id).cloned().unwrap_or_default(),
                leader: id == status.leader_id,
                match_index: status.matched.get(&id).copied().unwrap_or(0),
                voter: status.voters.contains(&id),
            })
            .collect();
        Ok(DescribeClusterResponse {
            cluster_id: self.cluster_id.clone(),
            answered_by: status.id,
            leader_id: status.leader_id,
            term: status.term,
            commit_index: status.commit,
            applied_index: status.applied,
            metadata_version: image.version,
            controllers,
            brokers: image
                .brokers
                .values()
                .map(vltava_metadata::convert::broker_to_proto)
                .collect::<Vec<BrokerState>>(),
        })
    }

    fn image(&self) -> Arc<ClusterImage> {
        self.node.image.borrow().clone()
    }

    fn watch(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.node.image.clone()
    }
}
