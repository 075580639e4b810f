//! Consumer-group offsets.
//!
//! [`OffsetStore`] is the narrow storage trait; [`RocksDbOffsetStore`] keeps offsets durable
//! across restarts and [`MemoryOffsetStore`] serves tests. [`service`] holds the RPC handlers;
//! [`assignor`] the server-side partition assignors (`uniform`, `range`) of group membership;
//! [`records`] the versioned records of the `__consumer_offsets` topic; [`consumer_group`] a
//! group's state, rebuilt by replaying those records; [`heartbeat`] the coordinator's decisions
//! (KIP-848 membership, incremental reconciliation, commit fencing); [`shard_state`] the groups
//! and offsets of one `__consumer_offsets` partition, as a coordinator shard holds them.
//!
//! Durability: commits go to RocksDB's write-ahead log without an fsync per commit, so a killed
//! process (kill -9) loses nothing; a power loss may lose the last commits, like an unflushed
//! Kafka offsets topic would.

pub mod assignor;
pub mod consumer_group;
pub mod coordinator;
pub mod find_coordinator;
pub mod heartbeat;
pub mod heartbeat_rpc;
mod memory;
pub mod records;
mod rocks;
pub mod service;
pub mod shard_state;

pub use memory::MemoryOffsetStore;
pub use rocks::RocksDbOffsetStore;

/// A committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// Free-form metadata from the committer.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_timestamp: i64,
}

/// One partition's committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed position.
    pub committed: CommittedOffset,
}

/// Why the offsets store failed.
#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    /// The database failed.
    #[error("offsets database: {0}")]
    Db(String),
    /// A stored value could not be decoded.
    #[error("corrupt offset entry: {0}")]
    Corrupt(String),
}

/// Where committed offsets live.
pub trait OffsetStore: Send + Sync + 'static {
    /// Commits positions for a group, atomically.
    fn commit(&self, group: &str, offsets: &[PartitionOffset]) -> Result<(), OffsetStoreError>;
    /// The group's committed position of one partition.
    fn fetch(&self, group: &str, topic: &str, partition: i32) -> Result<Option<CommittedOffset>, OffsetStoreError>;
    /// Every committed position of a group, sorted by topic and partition.
    fn fetch_group(&self, group: &str) -> Result<Vec<PartitionOffset>, OffsetStoreError>;
    /// Every group with committed offsets, sorted.
    fn list_groups(&self) -> Result<Vec<String>, OffsetStoreError>;
    /// Forgets every group's offsets of a deleted topic.
    fn delete_topic(&self, topic: &str) -> Result<(), OffsetStoreError>;
}

#[cfg(test)]
mod scenarios {
    //! The same scenarios run against every store.
    use super::*;

    fn po(topic: &str, partition: i32, offset: i64) -> PartitionOffset {
        PartitionOffset {
            topic: topic.into(),
            partition,
            committed: CommittedOffset { offset, metadata: format!("m{offset}"), commit_timestamp: 1 },
        }
    }

    pub(super) fn commit_fetch_list_delete(store: &dyn OffsetStore) {
        assert_eq!(store.fetch("g", "t", 0).unwrap(), None);
        store.commit("g", &[po("t", 0, 5), po("t", 1, 7), po("u", 0, 1)]).unwrap();
        store.commit("g", &[po("t", 0, 9)]).unwrap();
        store.commit("h", &[po("t", 0, 2)]).unwrap();
        assert_eq!(store.fetch("g", "t", 0).unwrap().unwrap().offset, 9);
        assert_eq!(store.fetch("g", "t", 0).unwrap().unwrap().metadata, "m9");
        let all: Vec<_> = store
            .fetch_group("g")
            .unwrap()
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.committed.offset))
            .collect();
        assert_eq!(all, vec![("t".into(), 0, 9), ("t".into(), 1, 7), ("u".into(), 0, 1)]);
        assert_eq!(store.list_groups().unwrap(), vec!["g".to_string(), "h".to_string()]);
        store.delete_topic("t").unwrap();
        assert_eq!(store.fetch("g", "t", 1).unwrap(), None);
        assert_eq!(store.fetch_group("g").unwrap().len(), 1);
        assert_eq!(store.list_groups().unwrap(), vec!["g".to_string()]);
    }

    #[test]
    fn memory_store_commits_fetches_lists_and_deletes() {
        commit_fetch_list_delete(&MemoryOffsetStore::default());
    }

    #[test]
    fn rocksdb_store_commits_fetches_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        commit_fetch_list_delete(&RocksDbOffsetStore::open(dir.path()).unwrap());
    }

    #[test]
    fn rocksdb_store_keeps_offsets_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        RocksDbOffsetStore::open(dir.path()).unwrap().commit("g", &[po("t", 3, 42)]).unwrap();
        let store = RocksDbOffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.fetch("g", "t", 3).unwrap().unwrap().offset, 42);
    }
}
