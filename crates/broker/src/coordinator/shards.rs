//! The shards of one internal topic that this broker leads: opened (and loaded in the
//! background) when it becomes a partition's leader, closed when it stops, looked up by key.
//! The group coordinator (`__consumer_offsets`) and the transaction coordinator
//! (`__transaction_state`) each hold one [`Shards`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use vltava_common::{ErrorCode, WireError};
use vltava_metadata::ClusterImage;

use super::placement;
use super::shard::{Shard, ShardState, Status};
use crate::error::BrokerError;
use crate::replica_manager::ReplicaManager;

/// How long a call waits for its shard to finish loading before it answers
/// `COORDINATOR_LOAD_IN_PROGRESS`.
pub const LOAD_WAIT: Duration = Duration::from_secs(5);

/// The led shards of one internal topic (see the module documentation).
pub struct Shards<S> {
    topic: &'static str,
    broker_id: i32,
    write_timeout: Duration,
    shards: RwLock<HashMap<i32, Arc<Shard<S>>>>,
}

impl<S: ShardState> Shards<S> {
    /// No shard yet; call [`Shards::sync`] after every metadata image.
    pub fn new(topic: &'static str, broker_id: i32, write_timeout: Duration) -> Self {
        Self { topic, broker_id, write_timeout, shards: RwLock::new(HashMap::new()) }
    }

    /// The internal topic's name.
    pub fn topic(&self) -> &'static str {
        self.topic
    }

    /// Opens a shard for every partition of the topic this broker now leads (loading it in the
    /// background) and closes the shards of partitions it no longer leads (or leads in a newer
    /// epoch). Returns the shards it opened.
    pub fn sync(&self, replicas: &ReplicaManager) -> Vec<Arc<Shard<S>>> {
        let mut led = HashMap::new();
        for part in replicas.all().into_iter().filter(|p| p.topic() == self.topic) {
            let state = part.leader_state();
            if state.leader == self.broker_id {
                led.insert(part.index(), (part, state.leader_epoch));
            }
        }
        let mut shards = self.shards.write();
        shards.retain(|p, shard| {
            let keep = led.get(p).is_some_and(|(_, epoch)| *epoch == shard.leader_epoch());
            if !keep {
                shard.close();
                tracing::info!(topic = self.topic, partition = p, "no longer coordinating this partition");
            }
            keep
        });
        let mut opened = Vec::new();
        for (p, (part, epoch)) in led {
            if shards.contains_key(&p) {
                continue;
            }
            let shard = Shard::new(part, epoch, self.write_timeout);
            shards.insert(p, shard.clone());
            opened.push(shard.clone());
            let topic = self.topic;
            tokio::spawn(async move {
                if let Err(e) = shard.load().await {
                    tracing::warn!(topic, partition = p, error = %e, "loading a coordinator partition failed");
                    shard.close();
                }
            });
        }
        opened
    }

    /// Waits until every shard opened so far has loaded (or closed), up to `timeout`; returns
    /// whether all of them are active.
    pub async fn wait_loaded(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut all = true;
        for shard in self.all() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            all &= shard.wait_loaded(left).await == Status::Active;
        }
        all
    }

    /// Closes every shard (shutdown).
    pub fn close_all(&self) {
        for (_, shard) in self.shards.write().drain() {
            shard.close();
        }
    }

    /// Every shard, whatever its status.
    pub fn all(&self) -> Vec<Arc<Shard<S>>> {
        self.shards.read().values().cloned().collect()
    }

    /// The shard of partition `partition`, if this broker leads it.
    pub fn by_partition(&self, partition: i32) -> Option<Arc<Shard<S>>> {
        self.shards.read().get(&partition).cloned()
    }

    /// The shards that serve.
    pub fn active(&self) -> Vec<Arc<Shard<S>>> {
        self.shards.read().values().filter(|s| s.status() == Status::Active).cloned().collect()
    }

    /// The partition of the topic that holds `key`.
    ///
    /// # Errors
    ///
    /// `COORDINATOR_NOT_AVAILABLE` while the topic does not exist.
    pub fn partition_for(&self, image: &ClusterImage, key: &str) -> Result<i32, BrokerError> {
        match image.topic(self.topic) {
            Some(t) if !t.partitions.is_empty() => Ok(placement::partition_for(key, t.partitions.len() as i32)),
            _ => Err(BrokerError::Refused(WireError::new(
                ErrorCode::CoordinatorNotAvailable,
                format!("{} does not exist yet: find the coordinator first", self.topic),
            ))),
        }
    }

    /// The shard holding `key`; one still loading is waited for (up to [`LOAD_WAIT`]), so that
    /// clients rarely see `COORDINATOR_LOAD_IN_PROGRESS`.
    ///
    /// # Errors
    ///
    /// `COORDINATOR_NOT_AVAILABLE` without the topic, `NOT_COORDINATOR` when this broker does
    /// not lead the key's partition.
    pub async fn get(&self, image: &ClusterImage, key: &str) -> Result<Arc<Shard<S>>, BrokerError> {
        let partition = self.partition_for(image, key)?;
        let shard = self
            .shards
            .read()
            .get(&partition)
            .cloned()
            .ok_or_else(|| BrokerError::NotCoordinator { topic: self.topic.into(), partition })?;
        if shard.status() == Status::Loading {
            shard.wait_loaded(LOAD_WAIT).await;
        }
        Ok(shard)
    }
}
