//! The records of the `__consumer_offsets` topic: committed offsets and consumer-group state.
//!
//! Every change a group coordinator makes is one record appended to the group's partition of
//! `__consumer_offsets`; a new coordinator rebuilds the groups by replaying them. The layout is
//! Kafka's (KIP-848's coordinator records): a key starts with an `i16` *type* that says what it
//! names, a value starts with an `i16` *version* so the format can evolve, and a record without a
//! value (a tombstone) deletes what its key names (compaction then drops both).
//!
//! | key type | key fields | value |
//! | --- | --- | --- |
//! | 1 `Offset` | group, topic, partition | [`OffsetValue`] |
//! | 3 `Group` | group | [`GroupValue::Group`]: the group epoch |
//! | 5 `Member` | group, member | [`MemberValue`]: subscription, instance id, rack, timeouts |
//! | 6 `TargetEpoch` | group | [`GroupValue::TargetEpoch`]: the epoch of the target assignment |
//! | 7 `Target` | group, member | [`GroupValue::Target`]: the member's target partitions |
//! | 8 `Current` | group, member | [`CurrentValue`]: the member's epoch and owned partitions |
//!
//! Encoding: integers big-endian; a string is an `i16` length (-1: none) and UTF-8 bytes; a list
//! is an `i32` count and its items; partitions are a list of (topic, list of `i32`). Decoding
//! refuses anything short, long, unknown or not UTF-8 with a [`GroupRecordError`].

use bytes::{BufMut, Bytes, BytesMut};

use super::assignor::TopicPartitions;
use crate::coordinator::codec::{
    CodecError, done, get_count, get_i8, get_i16, get_i32, get_i64, get_opt, get_partitions, get_string, put_opt,
    put_partitions, put_str,
};

/// Type of an offset commit key (Kafka's `OffsetCommitKey`, version 1).
const KEY_OFFSET: i16 = 1;
/// Type of a group metadata key (`ConsumerGroupMetadataKey`).
const KEY_GROUP: i16 = 3;
/// Type of a member metadata key (`ConsumerGroupMemberMetadataKey`).
const KEY_MEMBER: i16 = 5;
/// Type of a target assignment metadata key (`ConsumerGroupTargetAssignmentMetadataKey`).
const KEY_TARGET_EPOCH: i16 = 6;
/// Type of a member's target assignment key (`ConsumerGroupTargetAssignmentMemberKey`).
const KEY_TARGET: i16 = 7;
/// Type of a member's current assignment key (`ConsumerGroupCurrentMemberAssignmentKey`).
const KEY_CURRENT: i16 = 8;
/// The value version this code writes (and the only one it reads so far).
const VALUE_VERSION: i16 = 0;

impl From<CodecError> for GroupRecordError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Truncated(what) => GroupRecordError::Truncated(what),
            CodecError::Trailing(n) => GroupRecordError::Trailing(n),
            CodecError::Invalid(what) => GroupRecordError::Invalid(what),
        }
    }
}

/// Why a `__consumer_offsets` record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupRecordError {
    /// The bytes end before the field they should hold.
    #[error("truncated group record: {0} missing")]
    Truncated(&'static str),
    /// Bytes follow the last field.
    #[error("{0} bytes after the end of a group record")]
    Trailing(usize),
    /// The key's type is not one this version knows.
    #[error("unknown group record key type {0}")]
    UnknownKeyType(i16),
    /// The value's version is newer than this version reads.
    #[error("unsupported version {version} of a group record value of key type {key_type}")]
    UnknownValueVersion {
        /// The key type.
        key_type: i16,
        /// The value version.
        version: i16,
    },
    /// A field that must be present is null, negative or not UTF-8.
    #[error("invalid group record field {0}")]
    Invalid(&'static str),
}

/// What a record's key names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    /// A group's committed offset of one partition.
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A consumer group's epoch.
    Group {
        /// Group id.
        group: String,
    },
    /// A member's subscription and settings.
    Member {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// The epoch of a group's target assignment.
    TargetEpoch {
        /// Group id.
        group: String,
    },
    /// A member's target partitions.
    Target {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// A member's current epoch and owned partitions.
    Current {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
}

impl GroupKey {
    /// The group the key belongs to (records of one group always share a partition).
    pub fn group(&self) -> &str {
        match self {
            Self::Offset { group, .. }
            | Self::Group { group }
            | Self::Member { group, .. }
            | Self::TargetEpoch { group }
            | Self::Target { group, .. }
            | Self::Current { group, .. } => group,
        }
    }

    fn key_type(&self) -> i16 {
        match self {
            Self::Offset { .. } => KEY_OFFSET,
            Self::Group { .. } => KEY_GROUP,
            Self::Member { .. } => KEY_MEMBER,
            Self::TargetEpoch { .. } => KEY_TARGET_EPOCH,
            Self::Target { .. } => KEY_TARGET,
            Self::Current { .. } => KEY_CURRENT,
        }
    }

    /// The key's bytes.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(self.key_type());
        match self {
            Self::Offset { group, topic, partition } => {
                put_str(&mut b, group);
                put_str(&mut b, topic);
                b.put_i32(*partition);
            }
            Self::Group { group } | Self::TargetEpoch { group } => put_str(&mut b, group),
            Self::Member { group, member } | Self::Target { group, member } | Self::Current { group, member } => {
                put_str(&mut b, group);
                put_str(&mut b, member);
            }
        }
        b.freeze()
    }

    /// Decodes a key.
    ///
    /// # Errors
    ///
    /// [`GroupRecordError`] for anything but a whole key of a known type.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, GroupRecordError> {
        let buf = &mut bytes;
        let key_type = get_i16(buf, "key type")?;
        let group = get_string(buf, "group")?;
        let key = match key_type {
            KEY_OFFSET => {
                let topic = get_string(buf, "topic")?;
                let partition = get_i32(buf, "partition")?;
                if partition < 0 {
                    return Err(GroupRecordError::Invalid("partition"));
                }
                Self::Offset { group, topic, partition }
            }
            KEY_GROUP => Self::Group { group },
            KEY_TARGET_EPOCH => Self::TargetEpoch { group },
            KEY_MEMBER => Self::Member { group, member: get_string(buf, "member")? },
            KEY_TARGET => Self::Target { group, member: get_string(buf, "member")? },
            KEY_CURRENT => Self::Current { group, member: get_string(buf, "member")? },
            other => return Err(GroupRecordError::UnknownKeyType(other)),
        };
        done(buf)?;
        Ok(key)
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The next offset the group reads.
    pub offset: i64,
    /// The leader epoch of the last consumed record (-1: unknown).
    pub leader_epoch: i32,
    /// Free-form metadata from the committer.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_timestamp: i64,
}

/// A member's subscription and settings, as its heartbeats last gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberValue {
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Rack of the member's host.
    pub rack: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topics: Vec<String>,
    /// Subscribed topic pattern.
    pub subscribed_regex: Option<String>,
    /// How long the member may take to revoke partitions.
    pub rebalance_timeout_ms: i32,
    /// The assignor the member asked for.
    pub server_assignor: Option<String>,
}

/// A member's reconciliation state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentValue {
    /// The member's epoch.
    pub member_epoch: i32,
    /// Its epoch before the last bump (commits carrying it are still accepted).
    pub previous_member_epoch: i32,
    /// Its reconciliation state (see the group state machine).
    pub state: i8,
    /// The partitions it owns.
    pub assigned: TopicPartitions,
    /// Partitions it must give up before its next epoch.
    pub pending_revocation: TopicPartitions,
}

/// What a record's value holds; which variant goes with which key is fixed by the key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupValue {
    /// For [`GroupKey::Offset`].
    Offset(OffsetValue),
    /// For [`GroupKey::Group`]: the group epoch.
    Group {
        /// Bumped by every change of membership or subscriptions.
        epoch: i32,
    },
    /// For [`GroupKey::Member`].
    Member(MemberValue),
    /// For [`GroupKey::TargetEpoch`]: the group epoch the target assignment was computed at.
    TargetEpoch {
        /// The assignment epoch.
        epoch: i32,
    },
    /// For [`GroupKey::Target`].
    Target(TopicPartitions),
    /// For [`GroupKey::Current`].
    Current(CurrentValue),
}

impl GroupValue {
    /// The value's bytes.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(VALUE_VERSION);
        match self {
            Self::Offset(v) => {
                b.put_i64(v.offset);
                b.put_i32(v.leader_epoch);
                put_str(&mut b, &v.metadata);
                b.put_i64(v.commit_timestamp);
            }
            Self::Group { epoch } | Self::TargetEpoch { epoch } => b.put_i32(*epoch),
            Self::Member(m) => {
                put_opt(&mut b, m.instance_id.as_deref());
                put_opt(&mut b, m.rack.as_deref());
                put_str(&mut b, &m.client_id);
                put_str(&mut b, &m.client_host);
                b.put_i32(m.subscribed_topics.len() as i32);
                for t in &m.subscribed_topics {
                    put_str(&mut b, t);
                }
                put_opt(&mut b, m.subscribed_regex.as_deref());
                b.put_i32(m.rebalance_timeout_ms);
                put_opt(&mut b, m.server_assignor.as_deref());
            }
            Self::Target(parts) => put_partitions(&mut b, parts),
            Self::Current(c) => {
                b.put_i32(c.member_epoch);
                b.put_i32(c.previous_member_epoch);
                b.put_i8(c.state);
                put_partitions(&mut b, &c.assigned);
                put_partitions(&mut b, &c.pending_revocation);
            }
        }
        b.freeze()
    }

    /// Decodes the value of a record whose key is `key`.
    ///
    /// # Errors
    ///
    /// [`GroupRecordError`] for anything but a whole value of a known version.
    pub fn decode(key: &GroupKey, mut bytes: &[u8]) -> Result<Self, GroupRecordError> {
        let buf = &mut bytes;
        let version = get_i16(buf, "value version")?;
        if version != VALUE_VERSION {
            return Err(GroupRecordError::UnknownValueVersion { key_type: key.key_type(), version });
        }
        let value = match key {
            GroupKey::Offset { .. } => Self::Offset(OffsetValue {
                offset: get_i64(buf, "offset")?,
                leader_epoch: get_i32(buf, "leader epoch")?,
                metadata: get_string(buf, "metadata")?,
                commit_timestamp: get_i64(buf, "commit timestamp")?,
            }),
            GroupKey::Group { .. } => Self::Group { epoch: get_i32(buf, "group epoch")? },
            GroupKey::TargetEpoch { .. } => Self::TargetEpoch { epoch: get_i32(buf, "assignment epoch")? },
            GroupKey::Member { .. } => {
                let instance_id = get_opt(buf, "instance id")?;
                let rack = get_opt(buf, "rack")?;
                let client_id = get_string(buf, "client id")?;
                let client_host = get_string(buf, "client host")?;
                let count = get_count(buf, "subscribed topics")?;
                let subscribed_topics =
                    (0..count).map(|_| get_string(buf, "subscribed topic")).collect::<Result<_, _>>()?;
                Self::Member(MemberValue {
                    instance_id,
                    rack,
                    client_id,
                    client_host,
                    subscribed_topics,
                    subscribed_regex: get_opt(buf, "subscribed regex")?,
                    rebalance_timeout_ms: get_i32(buf, "rebalance timeout")?,
                    server_assignor: get_opt(buf, "server assignor")?,
                })
            }
            GroupKey::Target { .. } => Self::Target(get_partitions(buf)?),
            GroupKey::Current { .. } => Self::Current(CurrentValue {
                member_epoch: get_i32(buf, "member epoch")?,
                previous_member_epoch: get_i32(buf, "previous member epoch")?,
                state: get_i8(buf, "member state")?,
                assigned: get_partitions(buf)?,
                pending_revocation: get_partitions(buf)?,
            }),
        };
        done(buf)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parts(list: &[(&str, &[i32])]) -> TopicPartitions {
        list.iter().map(|(t, ps)| (t.to_string(), ps.iter().copied().collect())).collect()
    }

    fn samples() -> Vec<(GroupKey, GroupValue)> {
        let g = || "orders-app".to_string();
        let m = || "m-1".to_string();
        vec![
            (
                GroupKey::Offset { group: g(), topic: "orders".into(), partition: 7 },
                GroupValue::Offset(OffsetValue {
                    offset: 42,
                    leader_epoch: 3,
                    metadata: "né".into(),
                    commit_timestamp: 1_700_000_000_000,
                }),
            ),
            (GroupKey::Group { group: g() }, GroupValue::Group { epoch: 12 }),
            (
                GroupKey::Member { group: g(), member: m() },
                GroupValue::Member(MemberValue {
                    instance_id: Some("host-a".into()),
                    rack: None,
                    client_id: "vltava-cli".into(),
                    client_host: "/127.0.0.1".into(),
                    subscribed_topics: vec!["orders".into(), "audit".into()],
                    subscribed_regex: Some("^ord.*".into()),
                    rebalance_timeout_ms: 30_000,
                    server_assignor: None,
                }),
            ),
            (GroupKey::TargetEpoch { group: g() }, GroupValue::TargetEpoch { epoch: 12 }),
            (GroupKey::Target { group: g(), member: m() }, GroupValue::Target(parts(&[("orders", &[0, 2, 4])]))),
            (
                GroupKey::Current { group: g(), member: m() },
                GroupValue::Current(CurrentValue {
                    member_epoch: 12,
                    previous_member_epoch: 11,
                    state: 1,
                    assigned: parts(&[("orders", &[0, 2]), ("audit", &[])]),
                    pending_revocation: parts(&[("orders", &[5])]),
                }),
            ),
        ]
    }

    #[test]
    fn every_record_kind_round_trips() {
        for (key, value) in samples() {
            let k = key.encode();
            let v = value.encode();
            let decoded_key = GroupKey::decode(&k).unwrap();
            assert_eq!(decoded_key, key);
            assert_eq!(decoded_key.group(), "orders-app");
            assert_eq!(GroupValue::decode(&decoded_key, &v).unwrap(), value);
        }
    }

    #[test]
    fn an_offset_key_has_kafkas_layout() {
        let k = GroupKey::Offset { group: "g".into(), topic: "t".into(), partition: 2 }.encode();
        assert_eq!(&k[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2]);
    }

    #[test]
    fn every_truncation_and_every_extension_is_refused() {
        for (key, value) in samples() {
            let k = key.encode();
            let v = value.encode();
            for cut in 0..k.len() {
                assert!(GroupKey::decode(&k[..cut]).is_err(), "{key:?} cut at {cut}");
            }
            for cut in 0..v.len() {
                assert!(GroupValue::decode(&key, &v[..cut]).is_err(), "{value:?} cut at {cut}");
            }
            let mut longer = v.to_vec();
            longer.push(0);
            assert_eq!(GroupValue::decode(&key, &longer), Err(GroupRecordError::Trailing(1)));
        }
    }

    #[test]
    fn unknown_types_versions_and_bad_fields_are_named() {
        assert_eq!(GroupKey::decode(&[0, 9, 0, 1, b'g']), Err(GroupRecordError::UnknownKeyType(9)));
        let key = GroupKey::Group { group: "g".into() };
        assert_eq!(
            GroupValue::decode(&key, &[0, 1, 0, 0, 0, 1]),
            Err(GroupRecordError::UnknownValueVersion { key_type: 3, version: 1 })
        );
        assert_eq!(GroupKey::decode(&[0, 3, 0xff, 0xff]), Err(GroupRecordError::Invalid("group")));
        assert_eq!(GroupKey::decode(&[0, 3, 0, 1, 0xff]), Err(GroupRecordError::Invalid("group")));
        let huge_count = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        let target = GroupKey::Target { group: "g".into(), member: "m".into() };
        assert_eq!(GroupValue::decode(&target, &huge_count), Err(GroupRecordError::Invalid("topic count")));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(key) = GroupKey::decode(&bytes) {
                prop_assert_eq!(GroupKey::decode(&key.encode()).unwrap(), key.clone());
                let _ = GroupValue::decode(&key, &bytes);
            }
        }

        #[test]
        fn current_assignments_round_trip(
            epoch in any::<i32>(),
            assigned in proptest::collection::btree_map("[a-z]{1,8}", proptest::collection::btree_set(0i32..1000, 0..8), 0..4),
        ) {
            let key = GroupKey::Current { group: "g".into(), member: "m".into() };
            let value = GroupValue::Current(CurrentValue {
                member_epoch: epoch,
                previous_member_epoch: epoch.wrapping_sub(1),
                state: 0,
                assigned: assigned.clone(),
                pending_revocation: TopicPartitions::new(),
            });
            prop_assert_eq!(GroupValue::decode(&key, &value.encode()).unwrap(), value);
        }
    }
}
