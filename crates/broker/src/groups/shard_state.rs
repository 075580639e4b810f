//! What a group coordinator holds for one `__consumer_offsets` partition: the consumer groups
//! that hash to it and their committed offsets, rebuilt by replaying the partition's records.

use std::collections::BTreeMap;

use super::consumer_group::ConsumerGroup;
use super::records::{GroupKey, GroupValue, OffsetValue};
use crate::coordinator::shard::ShardState;

/// A group's committed offsets by (topic, partition).
pub type GroupOffsets = BTreeMap<(String, i32), OffsetValue>;

/// The groups and offsets of one `__consumer_offsets` partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupShardState {
    /// Consumer groups by id (a group exists while it has an epoch record).
    pub groups: BTreeMap<String, ConsumerGroup>,
    /// Committed offsets by group.
    pub offsets: BTreeMap<String, GroupOffsets>,
    /// Offsets committed inside open transactions (`TxnOffsetCommit`), by producer id: applied
    /// when the transaction commits, dropped when it aborts.
    pub pending: BTreeMap<i64, Vec<(GroupKey, Option<GroupValue>)>>,
}

impl GroupShardState {
    /// The group, or an empty one of that id.
    pub fn group(&self, id: &str) -> ConsumerGroup {
        self.groups.get(id).cloned().unwrap_or_else(|| ConsumerGroup::new(id))
    }

    /// Applies a decoded record.
    pub fn apply(&mut self, key: &GroupKey, value: Option<&GroupValue>) {
        match (key, value) {
            (GroupKey::Offset { group, topic, partition }, Some(GroupValue::Offset(v))) => {
                self.offsets.entry(group.clone()).or_default().insert((topic.clone(), *partition), v.clone());
            }
            (GroupKey::Offset { group, topic, partition }, None) => {
                if let Some(offsets) = self.offsets.get_mut(group) {
                    offsets.remove(&(topic.clone(), *partition));
                    if offsets.is_empty() {
                        self.offsets.remove(group);
                    }
                }
            }
            (GroupKey::Group { group }, None) => {
                self.groups.remove(group);
            }
            (key, value) => {
                let id = key.group();
                let group = self.groups.entry(id.to_string()).or_insert_with(|| ConsumerGroup::new(id));
                group.replay(key, value);
            }
        }
    }
}

fn decode(key: &[u8], value: Option<&[u8]>) -> Result<(GroupKey, Option<GroupValue>), String> {
    let key = GroupKey::decode(key).map_err(|e| e.to_string())?;
    let value = value.map(|v| GroupValue::decode(&key, v)).transpose().map_err(|e| e.to_string())?;
    Ok((key, value))
}

impl ShardState for GroupShardState {
    fn replay(&mut self, _offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let (key, value) = decode(key, value)?;
        self.apply(&key, value.as_ref());
        Ok(())
    }

    fn replay_transactional(
        &mut self,
        producer_id: i64,
        _offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), String> {
        let (key, value) = decode(key, value)?;
        if !matches!(key, GroupKey::Offset { .. }) {
            return Err(format!("a transaction may only commit offsets, not {key:?}"));
        }
        self.pending.entry(producer_id).or_default().push((key, value));
        Ok(())
    }

    fn replay_marker(&mut self, producer_id: i64, commit: bool) {
        let Some(records) = self.pending.remove(&producer_id) else { return };
        if commit {
            for (key, value) in records {
                self.apply(&key, value.as_ref());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(state: &mut GroupShardState, key: GroupKey, value: Option<GroupValue>) {
        let v = value.as_ref().map(GroupValue::encode);
        state.replay(0, &key.encode(), v.as_deref()).unwrap();
    }

    #[test]
    fn offsets_and_groups_are_rebuilt_from_encoded_records_and_tombstones() {
        let mut s = GroupShardState::default();
        let offset = |o| {
            Some(GroupValue::Offset(OffsetValue {
                offset: o,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 1,
            }))
        };
        let key = |p| GroupKey::Offset { group: "g".into(), topic: "t".into(), partition: p };
        replay(&mut s, key(0), offset(5));
        replay(&mut s, key(1), offset(7));
        replay(&mut s, key(0), offset(9));
        assert_eq!(s.offsets["g"][&("t".to_string(), 0)].offset, 9);
        replay(&mut s, key(0), None);
        replay(&mut s, key(1), None);
        assert!(s.offsets.is_empty(), "a group whose offsets are all deleted is gone");

        replay(&mut s, GroupKey::Group { group: "g".into() }, Some(GroupValue::Group { epoch: 3 }));
        assert_eq!(s.group("g").epoch, 3);
        replay(&mut s, GroupKey::Group { group: "g".into() }, None);
        assert!(s.groups.is_empty());
        assert_eq!(s.group("g"), ConsumerGroup::new("g"));
    }

    #[test]
    fn transactional_offsets_apply_on_commit_and_vanish_on_abort() {
        let mut s = GroupShardState::default();
        let key = |p| GroupKey::Offset { group: "g".into(), topic: "t".into(), partition: p }.encode();
        let value = |o| {
            GroupValue::Offset(OffsetValue {
                offset: o,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 1,
            })
            .encode()
        };
        s.replay_transactional(7, 0, &key(0), Some(&value(5))).unwrap();
        s.replay_transactional(8, 1, &key(1), Some(&value(6))).unwrap();
        assert!(s.offsets.is_empty(), "pending until the marker");
        s.replay_marker(7, true);
        s.replay_marker(8, false);
        assert_eq!(s.offsets["g"][&("t".to_string(), 0)].offset, 5);
        assert!(!s.offsets["g"].contains_key(&("t".to_string(), 1)));
        assert!(s.pending.is_empty());
        let group_key = GroupKey::Group { group: "g".into() }.encode();
        assert!(s.replay_transactional(7, 2, &group_key, None).is_err(), "only offsets are transactional");
    }

    #[test]
    fn unreadable_records_are_reported_not_applied() {
        let mut s = GroupShardState::default();
        assert!(s.replay(0, &[0, 42], None).is_err());
        let key = GroupKey::Group { group: "g".into() }.encode();
        assert!(s.replay(0, &key, Some(&[0, 7])).is_err());
        assert_eq!(s, GroupShardState::default());
    }
}
