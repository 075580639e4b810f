//! The metadata state machine's column family: one JSON value per topic and per broker, the
//! controllers' addresses, the cluster id, the image version and the applied Raft index. Writes go
//! into the caller's batch so a change and its applied index are stored atomically.
//!
//! Private to [`crate::raft_store`], which owns the database; nothing else builds these batches.

use std::sync::Arc;

use rocksdb::{ColumnFamily, DB, WriteBatch};

use vltava_metadata::error::MetadataError;
use vltava_metadata::model::{BrokerRegistration, TopicMetadata};
use vltava_metadata::state::{Delta, MetadataState};

const APPLIED: &[u8] = b"meta/applied";
const CLUSTER_ID: &[u8] = b"meta/cluster_id";
const VERSION: &[u8] = b"meta/version";
const NEXT_PRODUCER_ID: &[u8] = b"meta/next_producer_id";
const TOPIC: &str = "topic/";
const BROKER: &str = "broker/";
const CONTROLLER: &str = "controller/";

fn corrupt(what: &str) -> MetadataError {
    MetadataError::Store(format!("corrupt metadata entry {what}"))
}

fn u64_value(v: &[u8], what: &str) -> Result<u64, MetadataError> {
    Ok(u64::from_be_bytes(v.try_into().map_err(|_| corrupt(what))?))
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("metadata always serializes")
}

/// Loads the state machine and the index it was applied up to (0 for a new store).
pub fn load(db: &DB, cf: &ColumnFamily) -> Result<(MetadataState, u64), MetadataError> {
    let mut state = MetadataState::default();
    let mut applied = 0;
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (key, value) = item.map_err(crate::store_error)?;
        let key_str = String::from_utf8_lossy(&key);
        if *key == *APPLIED {
            applied = u64_value(&value, "applied")?;
        } else if *key == *VERSION {
            state.image.version = u64_value(&value, "version")?;
        } else if *key == *NEXT_PRODUCER_ID {
            state.next_producer_id = u64_value(&value, "next_producer_id")? as i64;
        } else if *key == *CLUSTER_ID {
            state.image.cluster_id = String::from_utf8_lossy(&value).into_owned();
        } else if let Some(name) = key_str.strip_prefix(TOPIC) {
            let t: TopicMetadata = serde_json::from_slice(&value).map_err(|e| corrupt(&format!("{name}: {e}")))?;
            state.image.topics.insert(t.name.clone(), Arc::new(t));
        } else if key_str.starts_with(BROKER) {
            let b: BrokerRegistration =
                serde_json::from_slice(&value).map_err(|e| corrupt(&format!("{key_str}: {e}")))?;
            state.image.brokers.insert(b.id, b);
        } else if let Some(id) = key_str.strip_prefix(CONTROLLER) {
            let id: u64 = id.parse().map_err(|_| corrupt(&key_str))?;
            state.controllers.insert(id, String::from_utf8_lossy(&value).into_owned());
        }
    }
    Ok((state, applied))
}

/// Stores the cluster id (once, at initialization).
pub fn put_cluster_id(cf: &ColumnFamily, batch: &mut WriteBatch, cluster_id: &str) {
    batch.put_cf(cf, CLUSTER_ID, cluster_id.as_bytes());
}

/// Adds a delta and the new applied index to `batch`.
pub fn put_delta(cf: &ColumnFamily, batch: &mut WriteBatch, delta: &Delta) {
    for b in &delta.brokers {
        batch.put_cf(cf, format!("{BROKER}{}", b.id), json(b));
    }
    for t in &delta.topics {
        batch.put_cf(cf, format!("{TOPIC}{}", t.name), json(t.as_ref()));
    }
    for name in &delta.deleted_topics {
        batch.delete_cf(cf, format!("{TOPIC}{name}"));
    }
    if let Some(next) = delta.next_producer_id {
        batch.put_cf(cf, NEXT_PRODUCER_ID, (next as u64).to_be_bytes());
    }
    batch.put_cf(cf, VERSION, delta.version.to_be_bytes());
}

/// Adds a controller address to `batch` (or removes it with `None`).
pub fn put_controller(cf: &ColumnFamily, batch: &mut WriteBatch, id: u64, address: Option<&str>) {
    let key = format!("{CONTROLLER}{id}");
    match address {
        Some(a) => batch.put_cf(cf, key, a.as_bytes()),
        None => batch.delete_cf(cf, key),
    }
}

/// Adds the applied index to `batch`.
pub fn put_applied(cf: &ColumnFamily, batch: &mut WriteBatch, index: u64) {
    batch.put_cf(cf, APPLIED, index.to_be_bytes());
}

/// Replaces the whole state machine (a snapshot install) in `batch`.
pub fn replace_all(
    db: &DB,
    cf: &ColumnFamily,
    batch: &mut WriteBatch,
    state: &MetadataState,
    index: u64,
) -> Result<(), MetadataError> {
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (key, _) = item.map_err(crate::store_error)?;
        batch.delete_cf(cf, key);
    }
    batch.put_cf(cf, CLUSTER_ID, state.image.cluster_id.as_bytes());
    let delta = Delta {
        version: state.image.version,
        brokers: state.image.brokers.values().cloned().collect(),
        topics: state.image.topics.values().cloned().collect(),
        deleted_topics: Vec::new(),
        next_producer_id: Some(state.next_producer_id),
    };
    put_delta(cf, batch, &delta);
    for (id, address) in &state.controllers {
        put_controller(cf, batch, *id, Some(address));
    }
    put_applied(cf, batch, index);
    Ok(())
}
