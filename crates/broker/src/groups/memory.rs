//! In-memory offsets store, for tests.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use super::{CommittedOffset, OffsetStore, OffsetStoreError, PartitionOffset};

type Key = (String, String, i32);

/// Offsets kept in a map; lost when dropped.
#[derive(Default)]
pub struct MemoryOffsetStore {
    offsets: Mutex<BTreeMap<Key, CommittedOffset>>,
}

impl OffsetStore for MemoryOffsetStore {
    fn commit(&self, group: &str, offsets: &[PartitionOffset]) -> Result<(), OffsetStoreError> {
        let mut map = self.offsets.lock();
        for p in offsets {
            map.insert((group.into(), p.topic.clone(), p.partition), p.committed.clone());
        }
        Ok(())
    }

    fn fetch(&self, group: &str, topic: &str, partition: i32) -> Result<Option<CommittedOffset>, OffsetStoreError> {
        Ok(self.offsets.lock().get(&(group.into(), topic.into(), partition)).cloned())
    }

    fn fetch_group(&self, group: &str) -> Result<Vec<PartitionOffset>, OffsetStoreError> {
        Ok(self
            .offsets
            .lock()
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), c)| PartitionOffset { topic: t.clone(), partition: *p, committed: c.clone() })
            .collect())
    }

    fn list_groups(&self) -> Result<Vec<String>, OffsetStoreError> {
        let mut groups: Vec<String> = self.offsets.lock().keys().map(|(g, _, _)| g.clone()).collect();
        groups.dedup();
        Ok(groups)
    }

    fn delete_topic(&self, topic: &str) -> Result<(), OffsetStoreError> {
        self.offsets.lock().retain(|(_, t, _), _| t != topic);
        Ok(())
    }
}
