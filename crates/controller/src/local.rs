//! A single-node metadata service over [`MetaStore`], for `vltava dev`.
//!
//! Every write is applied to RocksDB first, then published as a new [`ClusterImage`]. The Raft
//! controller quorum provides the same [`MetadataService`] for multi-node clusters.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::MetadataError;
use crate::model::{BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata};
use crate::service::MetadataService;
use crate::store::{Change, MetaStore};
use crate::{placement, topic_config};

/// Most partitions one topic may have.
pub const MAX_PARTITIONS: i32 = 100_000;

/// Single-node metadata service persisted in RocksDB.
pub struct LocalMetadata {
    store: MetaStore,
    /// Serialises writers; readers use the watch channel.
    write_lock: Mutex<()>,
    tx: watch::Sender<Arc<ClusterImage>>,
    default_replication_factor: i32,
}

impl LocalMetadata {
    /// Opens the store under `dir` and loads the current image.
    pub fn open(dir: &Path, default_replication_factor: i32) -> Result<Self, MetadataError> {
        let store = MetaStore::open(dir)?;
        let image = store.load(|| uuid::Uuid::new_v4().simple().to_string())?;
        tracing::info!(cluster_id = %image.cluster_id, topics = image.topics.len(), version = image.version, "metadata loaded");
        let (tx, _) = watch::channel(Arc::new(image));
        Ok(Self {
            store,
            write_lock: Mutex::new(()),
            tx,
            default_replication_factor: default_replication_factor.max(1),
        })
    }

    /// Applies `f`'s changes to the current image under the write lock, persists them, publishes.
    fn commit(
        &self,
        f: impl FnOnce(&ClusterImage) -> Result<Vec<Change>, MetadataError>,
    ) -> Result<Arc<ClusterImage>, MetadataError> {
        let _guard = self.write_lock.lock();
        let current = self.tx.borrow().clone();
        let changes = f(&current)?;
        let mut next = (*current).clone();
        next.version += 1;
        for change in &changes {
            match change {
                Change::PutTopic(t) => {
                    next.topics.insert(t.name.clone(), t.clone());
                }
                Change::DeleteTopic(name) => {
                    next.topics.remove(name);
                }
                Change::PutBroker(b) => {
                    next.brokers.insert(b.id, b.clone());
                }
            }
        }
        self.store.apply(next.version, &changes)?;
        let next = Arc::new(next);
        self.tx.send_replace(next.clone());
        Ok(next)
    }
}

/// Validates a create request against `image` and builds the topic it describes.
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
    let brokers: Vec<_> = image.brokers.keys().copied().collect();
    if rf < 1 || rf as usize > brokers.len() {
        return Err(MetadataError::InvalidReplicationFactor { requested: rf, available: brokers.len() });
    }
    topic_config::validate(&request.configs)?;
    if let Some(min_isr) = request.configs.get("min.insync.replicas")
        && min_isr.parse::<i32>().unwrap_or(1) > rf
    {
        return Err(MetadataError::InvalidConfig {
            key: "min.insync.replicas".into(),
            value: min_isr.clone(),
            reason: format!("larger than the replication factor {rf}"),
        });
    }
    let assignment = placement::assign(&brokers, request.partitions as usize, rf as usize, image.topics.len());
    let partitions = assignment
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| PartitionState {
            partition: i as i32,
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        })
        .collect();
    Ok(TopicMetadata {
        name: request.name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        partitions,
        configs: request.configs.clone(),
    })
}

#[async_trait::async_trait]
impl MetadataService for LocalMetadata {
    async fn create_topic(&self, request: CreateTopic) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        if request.validate_only {
            let image = self.image();
            let topic = build_topic(&image, &request, self.default_replication_factor)?;
            return Ok((Arc::new(topic), image.version));
        }
        let mut created = None;
        let image = self.commit(|image| {
            let topic = Arc::new(build_topic(image, &request, self.default_replication_factor)?);
            created = Some(topic.clone());
            Ok(vec![Change::PutTopic(topic)])
        })?;
        let topic = created.expect("commit succeeded, so the topic was built");
        tracing::info!(topic = %topic.name, partitions = topic.partitions.len(), "topic created");
        Ok((topic, image.version))
    }

    async fn delete_topic(&self, name: &str) -> Result<u64, MetadataError> {
        let image = self.commit(|image| {
            if !image.topics.contains_key(name) {
                return Err(MetadataError::UnknownTopic { name: name.to_string() });
            }
            Ok(vec![Change::DeleteTopic(name.to_string())])
        })?;
        tracing::info!(topic = %name, "topic deleted");
        Ok(image.version)
    }

    async fn register_broker(&self, registration: BrokerRegistration) -> Result<u64, MetadataError> {
        if self.image().brokers.get(&registration.id) == Some(&registration) {
            return Ok(self.image().version);
        }
        Ok(self.commit(|_| Ok(vec![Change::PutBroker(registration)]))?.version)
    }

    fn image(&self) -> Arc<ClusterImage> {
        self.tx.borrow().clone()
    }

    fn watch(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.tx.subscribe()
    }
}

/// Convenience for tests and tools: a create request with defaults.
pub fn create_request(name: &str, partitions: i32) -> CreateTopic {
    CreateTopic { name: name.into(), partitions, replication_factor: 0, configs: BTreeMap::new(), validate_only: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: i32) -> BrokerRegistration {
        BrokerRegistration { id, address: format!("127.0.0.1:{}", 9000 + id), rack: None }
    }

    #[tokio::test]
    async fn topics_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let meta = LocalMetadata::open(dir.path(), 1).unwrap();
            meta.register_broker(broker(1)).await.unwrap();
            meta.create_topic(create_request("orders", 3)).await.unwrap();
            meta.create_topic(create_request("gone", 1)).await.unwrap();
            meta.delete_topic("gone").await.unwrap();
            meta.image().cluster_id.clone()
        };
        let meta = LocalMetadata::open(dir.path(), 1).unwrap();
        let image = meta.image();
        assert_eq!(image.cluster_id, id);
        assert_eq!(image.version, 4);
        assert_eq!(image.topics.keys().collect::<Vec<_>>(), vec!["orders"]);
        let orders = image.topic("orders").unwrap();
        assert_eq!(orders.partitions.len(), 3);
        assert!(orders.partitions.iter().all(|p| p.leader == 1 && p.isr == vec![1]));
    }

    #[tokio::test]
    async fn bad_requests_are_rejected_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let meta = LocalMetadata::open(dir.path(), 1).unwrap();
        meta.register_broker(broker(1)).await.unwrap();
        meta.create_topic(create_request("t", 1)).await.unwrap();
        let before = meta.image().version;
        let mut r = create_request("t", 1);
        assert!(matches!(meta.create_topic(r.clone()).await, Err(MetadataError::TopicAlreadyExists { .. })));
        r.name = "u".into();
        r.partitions = 0;
        assert!(matches!(meta.create_topic(r.clone()).await, Err(MetadataError::InvalidPartitions { .. })));
        r.partitions = 1;
        r.replication_factor = 3;
        assert!(matches!(meta.create_topic(r.clone()).await, Err(MetadataError::InvalidReplicationFactor { .. })));
        r.replication_factor = 1;
        r.configs.insert("nope".into(), "1".into());
        assert!(matches!(meta.create_topic(r.clone()).await, Err(MetadataError::InvalidConfig { .. })));
        assert!(matches!(meta.create_topic(create_request("a b", 1)).await, Err(MetadataError::InvalidTopic(_))));
        assert!(matches!(meta.delete_topic("missing").await, Err(MetadataError::UnknownTopic { .. })));
        assert_eq!(meta.image().version, before);
    }

    #[tokio::test]
    async fn watchers_see_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let meta = LocalMetadata::open(dir.path(), 1).unwrap();
        let mut rx = meta.watch();
        meta.register_broker(broker(1)).await.unwrap();
        meta.create_topic(create_request("t", 2)).await.unwrap();
        rx.changed().await.unwrap();
        assert!(rx.borrow_and_update().topic("t").is_some());
    }
}
