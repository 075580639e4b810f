//! The partitions this broker hosts, kept in step with the cluster image.
//!
//! Every new image is applied in order: partitions assigned to this broker are opened (or
//! updated with new leadership and configs), partitions no longer assigned, or whose topic was
//! deleted (or re-created under a new id), are closed and deleted. Each partition directory holds
//! a `partition.metadata` file naming its topic id, as Kafka's does, so a topic re-created while
//! the broker was down is never confused with the old one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;
use vltava_metadata::ClusterImage;
use vltava_storage::LogConfig;

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::log_config;
use crate::partition::Partition;

const PARTITION_METADATA: &str = "partition.metadata";

type Key = (String, i32);

/// The partitions hosted by this broker.
pub struct ReplicaManager {
    broker_id: i32,
    logs_dir: PathBuf,
    defaults: LogConfig,
    default_min_isr: i32,
    partitions: RwLock<HashMap<Key, Arc<Partition>>>,
    image: RwLock<Arc<ClusterImage>>,
    applied: watch::Sender<u64>,
}

impl ReplicaManager {
    /// An empty manager; call [`ReplicaManager::apply_image`] to open partitions.
    pub fn new(config: &BrokerConfig) -> Self {
        Self {
            broker_id: config.broker_id,
            logs_dir: config.logs_dir(),
            defaults: config.log.clone(),
            default_min_isr: config.min_insync_replicas,
            partitions: RwLock::new(HashMap::new()),
            image: RwLock::new(Arc::new(ClusterImage::default())),
            applied: watch::channel(0).0,
        }
    }

    /// This broker's id.
    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The last applied image.
    pub fn image(&self) -> Arc<ClusterImage> {
        self.image.read().clone()
    }

    /// Applies an image (blocking: opens and deletes logs). Images older than the applied one are ignored.
    pub fn apply_image(&self, image: Arc<ClusterImage>) -> Result<(), BrokerError> {
        if image.version < *self.applied.borrow() {
            return Ok(());
        }
        let mut wanted: HashMap<Key, ()> = HashMap::new();
        for topic in image.topics.values() {
            let config = log_config::for_topic(&self.defaults, &topic.configs);
            let min_isr = log_config::min_insync_replicas(self.default_min_isr, &topic.configs);
            for p in topic.partitions.iter().filter(|p| p.replicas.contains(&self.broker_id)) {
                let key = (topic.name.clone(), p.partition);
                wanted.insert(key.clone(), ());
                let existing = self.partitions.read().get(&key).cloned();
                match existing {
                    Some(part) if part.topic_id() == topic.id => {
                        part.update(p, config.clone(), min_isr)?;
                    }
                    other => {
                        if let Some(old) = other {
                            tracing::info!(topic = %topic.name, partition = p.partition, "topic re-created: deleting the old log");
                            self.partitions.write().remove(&key);
                            old.delete_blocking()?;
                        }
                        let dir = self.partition_dir(&topic.name, p.partition);
                        if read_topic_id(&dir).is_some_and(|id| id != topic.id) {
                            tracing::info!(dir = %dir.display(), "log belongs to a deleted topic of the same name: removing it");
                            remove_dir(&dir)?;
                        }
                        let part =
                            Partition::open(&dir, &topic.name, p, &topic.id, self.broker_id, config.clone(), min_isr)?;
                        write_topic_id(&dir, &topic.id)?;
                        self.partitions.write().insert(key, Arc::new(part));
                    }
                }
            }
        }
        let gone: Vec<(Key, Arc<Partition>)> = self
            .partitions
            .read()
            .iter()
            .filter(|(k, _)| !wanted.contains_key(*k))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        for (key, part) in gone {
            tracing::info!(topic = %key.0, partition = key.1, "partition no longer hosted here: deleting its log");
            self.partitions.write().remove(&key);
            part.delete_blocking()?;
        }
        let version = image.version;
        *self.image.write() = image;
        self.applied.send_replace(version);
        Ok(())
    }

    /// Removes partition directories that no partition in the applied image owns (left behind by
    /// deletions while the broker was down). Call after the first image was applied.
    pub fn remove_stray_logs(&self) -> Result<(), BrokerError> {
        let Ok(entries) = std::fs::read_dir(&self.logs_dir) else { return Ok(()) };
        let hosted: Vec<PathBuf> = self.partitions.read().keys().map(|(t, p)| self.partition_dir(t, *p)).collect();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && path.join(PARTITION_METADATA).exists() && !hosted.contains(&path) {
                tracing::info!(dir = %path.display(), "removing the log of a partition this broker no longer hosts");
                remove_dir(&path)?;
            }
        }
        Ok(())
    }

    /// Waits until an image of at least `version` was applied, up to `timeout`.
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|v| *v >= version)).await.is_ok_and(|r| r.is_ok())
    }

    /// The hosted partition, or why there is none.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, BrokerError> {
        if let Some(p) = self.partitions.read().get(&(topic.to_string(), partition)) {
            return Ok(p.clone());
        }
        match self.image().partition(topic, partition) {
            Some(state) => Err(BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                broker: self.broker_id,
                leader: state.leader,
            }),
            None => Err(BrokerError::UnknownTopicOrPartition { topic: topic.into(), partition }),
        }
    }

    /// The hosted partition, if this broker leads it.
    pub fn leader_partition(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, BrokerError> {
        let p = self.partition(topic, partition)?;
        p.ensure_leader()?;
        Ok(p)
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Closes every log cleanly (blocking).
    pub fn close_all_blocking(&self) {
        for part in self.partitions.write().drain().map(|(_, p)| p) {
            if let Err(e) = part.close_blocking() {
                tracing::error!(topic = part.topic(), partition = part.index(), error = %e, "closing log failed");
            }
        }
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.logs_dir.join(format!("{topic}-{partition}"))
    }
}

fn read_topic_id(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines().find_map(|l| l.strip_prefix("topic_id: ")).map(|s| s.trim().to_string())
}

fn write_topic_id(dir: &Path, topic_id: &str) -> Result<(), BrokerError> {
    let path = dir.join(PARTITION_METADATA);
    if read_topic_id(dir).as_deref() == Some(topic_id) {
        return Ok(());
    }
    let tmp = dir.join(format!("{PARTITION_METADATA}.tmp"));
    let io =
        |e: std::io::Error| BrokerError::Storage(vltava_storage::StorageError::Io { path: path.clone(), source: e });
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n")).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

fn remove_dir(dir: &Path) -> Result<(), BrokerError> {
    std::fs::remove_dir_all(dir)
        .map_err(|e| BrokerError::Storage(vltava_storage::StorageError::Io { path: dir.to_path_buf(), source: e }))
}
