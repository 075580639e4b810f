//! RocksDB offsets store.
//!
//! Key: `group 0x00 topic 0x00 partition(i32 BE)` (group ids and topic names cannot contain
//! NUL). Value: `offset(i64 BE) commit_timestamp(i64 BE) metadata(UTF-8)`.

use std::path::Path;

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch};

use super::{CommittedOffset, OffsetStore, OffsetStoreError, PartitionOffset};

/// Durable offsets store.
pub struct RocksDbOffsetStore {
    db: DB,
}

impl RocksDbOffsetStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, OffsetStoreError> {
        std::fs::create_dir_all(dir).map_err(|e| OffsetStoreError::Db(format!("{}: {e}", dir.display())))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        Ok(Self { db: DB::open(&opts, dir).map_err(db)? })
    }
}

fn db(e: rocksdb::Error) -> OffsetStoreError {
    OffsetStoreError::Db(e.to_string())
}

fn key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + topic.len() + 6);
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

fn parse_key(k: &[u8]) -> Result<(String, String, i32), OffsetStoreError> {
    let bad = || OffsetStoreError::Corrupt(format!("key {k:?}"));
    if k.len() < 6 {
        return Err(bad());
    }
    let (names, partition) = k.split_at(k.len() - 4);
    let names = names.strip_suffix(&[0]).ok_or_else(bad)?;
    let sep = names.iter().position(|b| *b == 0).ok_or_else(bad)?;
    let group = String::from_utf8(names[..sep].to_vec()).map_err(|_| bad())?;
    let topic = String::from_utf8(names[sep + 1..].to_vec()).map_err(|_| bad())?;
    Ok((group, topic, i32::from_be_bytes(partition.try_into().map_err(|_| bad())?)))
}

fn encode(c: &CommittedOffset) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + c.metadata.len());
    v.extend_from_slice(&c.offset.to_be_bytes());
    v.extend_from_slice(&c.commit_timestamp.to_be_bytes());
    v.extend_from_slice(c.metadata.as_bytes());
    v
}

fn decode(v: &[u8]) -> Result<CommittedOffset, OffsetStoreError> {
    if v.len() < 16 {
        return Err(OffsetStoreError::Corrupt(format!("value of {} bytes", v.len())));
    }
    Ok(CommittedOffset {
        offset: i64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        commit_timestamp: i64::from_be_bytes(v[8..16].try_into().expect("8 bytes")),
        metadata: String::from_utf8_lossy(&v[16..]).into_owned(),
    })
}

impl OffsetStore for RocksDbOffsetStore {
    fn commit(&self, group: &str, offsets: &[PartitionOffset]) -> Result<(), OffsetStoreError> {
        let mut batch = WriteBatch::default();
        for p in offsets {
            batch.put(key(group, &p.topic, p.partition), encode(&p.committed));
        }
        self.db.write(batch).map_err(db)
    }

    fn fetch(&self, group: &str, topic: &str, partition: i32) -> Result<Option<CommittedOffset>, OffsetStoreError> {
        self.db.get(key(group, topic, partition)).map_err(db)?.map(|v| decode(&v)).transpose()
    }

    fn fetch_group(&self, group: &str) -> Result<Vec<PartitionOffset>, OffsetStoreError> {
        let mut prefix = group.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(&prefix, Direction::Forward)) {
            let (k, v) = item.map_err(db)?;
            if !k.starts_with(&prefix) {
                break;
            }
            let (_, topic, partition) = parse_key(&k)?;
            out.push(PartitionOffset { topic, partition, committed: decode(&v)? });
        }
        Ok(out)
    }

    fn list_groups(&self) -> Result<Vec<String>, OffsetStoreError> {
        let mut groups: Vec<String> = Vec::new();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(db)?;
            let (group, _, _) = parse_key(&k)?;
            if groups.last() != Some(&group) {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    fn delete_topic(&self, topic: &str) -> Result<(), OffsetStoreError> {
        let mut batch = WriteBatch::default();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(db)?;
            if parse_key(&k)?.1 == topic {
                batch.delete(k);
            }
        }
        self.db.write(batch).map_err(db)
    }
}
