//! The partitions this broker hosts, kept in step with the cluster image.
//!
//! Every new image is applied in order: partitions assigned to this broker are opened (or
//! updated with new leadership and configs), partitions no longer assigned, or whose topic was
//! deleted (or re-created under a new id), are closed and deleted. Each partition directory holds
//! a `partition.metadata` file naming its topic id, as Kafka's does, so a topic re-created while
//! the broker was down is never confused with the old one. The data directory's high watermark
//! checkpoint ([`HighWatermarkCheckpoint`]) is read when a partition opens and rewritten by
//! [`ReplicaManager::checkpoint_high_watermarks`] from the values held in memory, so its fsync
//! never holds a log lock.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use vltava_metadata::ClusterImage;
use vltava_storage::checkpoint::{
    LEGACY_HIGH_WATERMARK_FILE, read_legacy_high_watermark, remove_legacy_high_watermark,
};
use vltava_storage::partition_metadata::{is_partition_dir, read_topic_id, write_topic_id};
use vltava_storage::{HighWatermarkCheckpoint, LogConfig};

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::log_config;
use crate::partition::{Partition, PartitionSpec};

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
    high_watermarks: HighWatermarkCheckpoint,
    /// Partition directories still holding an earlier version's `high-watermark` file, removed
    /// once the data directory's checkpoint holds their value.
    legacy_high_watermarks: Mutex<Vec<PathBuf>>,
}

impl ReplicaManager {
    /// An empty manager (loading the data directory's high watermark checkpoint); call
    /// [`ReplicaManager::apply_image`] to open partitions.
    ///
    /// # Errors
    ///
    /// I/O errors creating the data directory or reading its checkpoint.
    pub fn new(config: &BrokerConfig) -> Result<Self, BrokerError> {
        let logs_dir = config.logs_dir();
        Ok(Self {
            broker_id: config.broker_id,
            high_watermarks: HighWatermarkCheckpoint::open(&logs_dir)?,
            legacy_high_watermarks: Mutex::new(Vec::new()),
            logs_dir,
            defaults: config.log.clone(),
            default_min_isr: config.min_insync_replicas,
            partitions: RwLock::new(HashMap::new()),
            image: RwLock::new(Arc::new(ClusterImage::default())),
            applied: watch::channel(0).0,
        })
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
                        let high_watermark = match read_topic_id(&dir) {
                            Some(id) if id == topic.id => self.recovered_high_watermark(&topic.name, p.partition, &dir),
                            Some(_) => {
                                tracing::info!(dir = %dir.display(), "log belongs to a deleted topic of the same name: removing it");
                                remove_dir(&dir)?;
                                None
                            }
                            None => None,
                        };
                        let spec = PartitionSpec {
                            topic: &topic.name,
                            topic_id: &topic.id,
                            broker_id: self.broker_id,
                            config: config.clone(),
                            min_insync_replicas: min_isr,
                            high_watermark,
                        };
                        let part = Partition::open(&dir, p, spec)?;
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
            if is_partition_dir(&path) && !hosted.contains(&path) {
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

    /// Rewrites the data directory's high watermark checkpoint (blocking; skipped when no value
    /// changed) from the high watermarks held in memory: no log lock is taken, so appends go on
    /// during its fsync. Entries of partitions not hosted right now but whose directory is still
    /// on disk (not opened yet at startup) are kept. Returns whether the file was written.
    ///
    /// # Errors
    ///
    /// I/O errors writing the checkpoint (the previous file stays whole).
    pub fn checkpoint_high_watermarks(&self) -> Result<bool, BrokerError> {
        let mut entries: BTreeMap<(String, i32), i64> =
            self.partitions.read().iter().map(|(key, part)| (key.clone(), part.high_watermark())).collect();
        for (key, hw) in self.high_watermarks.entries() {
            if !entries.contains_key(&key) && is_partition_dir(&self.partition_dir(&key.0, key.1)) {
                entries.insert(key, hw);
            }
        }
        let written = self.high_watermarks.write(entries)?;
        let legacy = std::mem::take(&mut *self.legacy_high_watermarks.lock());
        for dir in legacy {
            remove_legacy_high_watermark(&dir)?;
        }
        Ok(written)
    }

    /// The high watermark recorded for a partition whose directory survived: the data
    /// directory's checkpoint, else (first start after an upgrade) the partition's legacy file.
    fn recovered_high_watermark(&self, topic: &str, partition: i32, dir: &Path) -> Option<i64> {
        let legacy = dir.join(LEGACY_HIGH_WATERMARK_FILE).exists();
        if legacy {
            self.legacy_high_watermarks.lock().push(dir.to_path_buf());
        }
        self.high_watermarks
            .get(topic, partition)
            .or_else(|| if legacy { read_legacy_high_watermark(dir) } else { None })
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.logs_dir.join(format!("{topic}-{partition}"))
    }
}

fn remove_dir(dir: &Path) -> Result<(), BrokerError> {
    std::fs::remove_dir_all(dir)
        .map_err(|e| BrokerError::Storage(vltava_storage::StorageError::Io { path: dir.to_path_buf(), source: e }))
}
