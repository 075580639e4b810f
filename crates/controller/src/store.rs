//! The metadata state kept in RocksDB: one JSON value per topic and per broker, plus the cluster
//! id and the image version. Every change is one synced write batch, so a crash leaves either the
//! old or the new state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rocksdb::{DB, Options, WriteBatch, WriteOptions};

use crate::error::MetadataError;
use crate::model::{BrokerRegistration, ClusterImage, TopicMetadata};

const CLUSTER_ID: &[u8] = b"meta/cluster_id";
const VERSION: &[u8] = b"meta/version";
const TOPIC_PREFIX: &str = "topic/";
const BROKER_PREFIX: &str = "broker/";

/// A change to apply atomically.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace a topic.
    PutTopic(Arc<TopicMetadata>),
    /// Remove a topic.
    DeleteTopic(String),
    /// Insert or replace a broker registration.
    PutBroker(BrokerRegistration),
}

/// RocksDB-backed metadata store.
pub struct MetaStore {
    db: DB,
}

impl MetaStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, MetadataError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir)?;
        Ok(Self { db })
    }

    /// Loads the whole image; a new store gets `new_cluster_id` and version 0.
    pub fn load(&self, new_cluster_id: impl FnOnce() -> String) -> Result<ClusterImage, MetadataError> {
        let cluster_id = match self.db.get(CLUSTER_ID)? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => {
                let id = new_cluster_id();
                self.db.put_opt(CLUSTER_ID, id.as_bytes(), &synced())?;
                id
            }
        };
        let version = match self.db.get(VERSION)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into().map_err(|_| corrupt("version"))?),
            None => 0,
        };
        let mut topics = BTreeMap::new();
        let mut brokers = BTreeMap::new();
        for item in self.db.iterator(rocksdb::IteratorMode::Start) {
            let (key, value) = item?;
            let key = String::from_utf8_lossy(&key);
            if key.starts_with(TOPIC_PREFIX) {
                let t: TopicMetadata = serde_json::from_slice(&value).map_err(|e| corrupt(&format!("{key}: {e}")))?;
                topics.insert(t.name.clone(), Arc::new(t));
            } else if key.starts_with(BROKER_PREFIX) {
                let b: BrokerRegistration =
                    serde_json::from_slice(&value).map_err(|e| corrupt(&format!("{key}: {e}")))?;
                brokers.insert(b.id, b);
            }
        }
        Ok(ClusterImage { version, cluster_id, brokers, topics })
    }

    /// Applies `changes` and records `version`, atomically and durably.
    pub fn apply(&self, version: u64, changes: &[Change]) -> Result<(), MetadataError> {
        let mut batch = WriteBatch::default();
        for change in changes {
            match change {
                Change::PutTopic(t) => {
                    let v = serde_json::to_vec(t.as_ref()).map_err(|e| MetadataError::Store(e.to_string()))?;
                    batch.put(format!("{TOPIC_PREFIX}{}", t.name), v);
                }
                Change::DeleteTopic(name) => batch.delete(format!("{TOPIC_PREFIX}{name}")),
                Change::PutBroker(b) => {
                    let v = serde_json::to_vec(b).map_err(|e| MetadataError::Store(e.to_string()))?;
                    batch.put(format!("{BROKER_PREFIX}{}", b.id), v);
                }
            }
        }
        batch.put(VERSION, version.to_be_bytes());
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }
}

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

fn corrupt(what: &str) -> MetadataError {
    MetadataError::Store(format!("corrupt metadata entry {what}"))
}
