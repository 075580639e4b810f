//! One consumer group's state as its coordinator holds it (Kafka 4's KIP-848 model), and the
//! only way it changes: [`ConsumerGroup::replay`] of a `__consumer_offsets` record.
//!
//! The coordinator decides a change (see `heartbeat`), appends its records to the group's
//! partition with `acks=all`, and only then replays them; a new coordinator replays the same
//! records from the log. So what members were told is always what a successor rebuilds.
//!
//! - The **group epoch** is bumped by every change of membership or subscription.
//! - The **target assignment** is what the assignor computed at [`ConsumerGroup::target_epoch`];
//!   it lags the group epoch until the next heartbeat recomputes it.
//! - Each member converges on its target at its own pace: its **current assignment** (what it
//!   owns, at its **member epoch**) first gives up the partitions it must lose
//!   ([`MemberState::UnrevokedPartitions`]), then takes the ones others have released
//!   ([`MemberState::UnreleasedPartitions`] while some are still held).

use std::collections::BTreeMap;

use super::assignor::TopicPartitions;
use super::records::{CurrentValue, GroupKey, GroupValue, MemberValue};

/// Where a member is in converging on its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// It owns its target (at the target epoch).
    #[default]
    Stable,
    /// It must acknowledge the revocation of partitions before it gets a new epoch.
    UnrevokedPartitions,
    /// It has its new epoch but waits for partitions other members still hold.
    UnreleasedPartitions,
}

impl MemberState {
    /// The byte stored in the member's current-assignment record.
    pub fn code(self) -> i8 {
        match self {
            Self::Stable => 0,
            Self::UnrevokedPartitions => 1,
            Self::UnreleasedPartitions => 2,
        }
    }

    /// The state stored as `code` (unknown codes read as stable: the next heartbeat recomputes).
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => Self::UnrevokedPartitions,
            2 => Self::UnreleasedPartitions,
            _ => Self::Stable,
        }
    }
}

/// The member epoch of a static member that left and may come back (Kafka's
/// `LEAVE_GROUP_STATIC_MEMBER_EPOCH`): it keeps its partitions until its session expires.
pub const STATIC_LEFT_EPOCH: i32 = -2;

/// One member of a consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: String,
    /// Subscription and settings.
    pub meta: MemberValue,
    /// Its epoch (0 before its first assignment; [`STATIC_LEFT_EPOCH`] once a static member left).
    pub epoch: i32,
    /// Its epoch before the last bump.
    pub previous_epoch: i32,
    /// Where it is in converging on its target.
    pub state: MemberState,
    /// The partitions it owns.
    pub assigned: TopicPartitions,
    /// Partitions it must give up.
    pub pending_revocation: TopicPartitions,
}

impl Member {
    /// The record of its current assignment.
    pub fn current_value(&self) -> CurrentValue {
        CurrentValue {
            member_epoch: self.epoch,
            previous_member_epoch: self.previous_epoch,
            state: self.state.code(),
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }
}

/// A consumer group (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// Group id.
    pub id: String,
    /// The group epoch.
    pub epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// The group epoch the target assignment was computed at.
    pub target_epoch: i32,
    /// Each member's target partitions.
    pub target: BTreeMap<String, TopicPartitions>,
}

/// The group's place in Kafka's consumer group life cycle (as `DescribeGroups` reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// The target assignment is behind the group epoch.
    Assigning,
    /// Some member has not reached its target yet.
    Reconciling,
    /// Every member owns its target.
    Stable,
}

impl ConsumerGroup {
    /// An empty group.
    pub fn new(id: &str) -> Self {
        Self { id: id.to_string(), ..Self::default() }
    }

    /// Where the group is in its life cycle.
    pub fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.target_epoch < self.epoch {
            GroupState::Assigning
        } else if self.members.values().any(|m| m.epoch != self.target_epoch || m.state != MemberState::Stable) {
            GroupState::Reconciling
        } else {
            GroupState::Stable
        }
    }

    /// The member with `group.instance.id` `instance`, if any.
    pub fn static_member(&self, instance: &str) -> Option<&Member> {
        self.members.values().find(|m| m.meta.instance_id.as_deref() == Some(instance))
    }

    /// Whether `topic`-`partition` is owned (or still being revoked) by a member other than
    /// `except`.
    pub fn owned_by_other(&self, except: &str, topic: &str, partition: i32) -> bool {
        self.members.values().filter(|m| m.id != except).any(|m| {
            m.assigned.get(topic).is_some_and(|ps| ps.contains(&partition))
                || m.pending_revocation.get(topic).is_some_and(|ps| ps.contains(&partition))
        })
    }

    /// Applies one record of this group (a `None` value is a tombstone). Offset records are not
    /// group state and are ignored here.
    pub fn replay(&mut self, key: &GroupKey, value: Option<&GroupValue>) {
        match (key, value) {
            (GroupKey::Group { .. }, Some(GroupValue::Group { epoch })) => self.epoch = *epoch,
            (GroupKey::Group { .. }, None) => {
                self.epoch = 0;
                self.members.clear();
                self.target.clear();
                self.target_epoch = 0;
            }
            (GroupKey::Member { member, .. }, Some(GroupValue::Member(meta))) => {
                let m = self
                    .members
                    .entry(member.clone())
                    .or_insert_with(|| Member { id: member.clone(), ..Member::default() });
                m.meta = meta.clone();
            }
            (GroupKey::Member { member, .. }, None) => {
                self.members.remove(member);
            }
            (GroupKey::TargetEpoch { .. }, Some(GroupValue::TargetEpoch { epoch })) => self.target_epoch = *epoch,
            (GroupKey::TargetEpoch { .. }, None) => self.target_epoch = 0,
            (GroupKey::Target { member, .. }, Some(GroupValue::Target(parts))) => {
                self.target.insert(member.clone(), parts.clone());
            }
            (GroupKey::Target { member, .. }, None) => {
                self.target.remove(member);
            }
            (GroupKey::Current { member, .. }, Some(GroupValue::Current(c))) => {
                // A member's current assignment is written after its subscription; if it came
                // alone (a log cut by compaction), the member still exists.
                let m = self
                    .members
                    .entry(member.clone())
                    .or_insert_with(|| Member { id: member.clone(), ..Member::default() });
                m.epoch = c.member_epoch;
                m.previous_epoch = c.previous_member_epoch;
                m.state = MemberState::from_code(c.state);
                m.assigned = c.assigned.clone();
                m.pending_revocation = c.pending_revocation.clone();
            }
            (GroupKey::Current { member, .. }, None) => {
                if let Some(m) = self.members.get_mut(member) {
                    m.epoch = 0;
                    m.previous_epoch = 0;
                    m.state = MemberState::Stable;
                    m.assigned.clear();
                    m.pending_revocation.clear();
                }
            }
            (GroupKey::Offset { .. }, _) => {}
            (key, Some(value)) => {
                tracing::warn!(?key, ?value, "ignoring a group record whose value does not match its key");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, &[i32])]) -> TopicPartitions {
        list.iter().map(|(t, ps)| (t.to_string(), ps.iter().copied().collect())).collect()
    }

    #[test]
    fn replaying_records_builds_members_targets_and_epochs() {
        let mut g = ConsumerGroup::new("g");
        assert_eq!(g.state(), GroupState::Empty);
        let member = |m: &str| GroupKey::Member { group: "g".into(), member: m.into() };
        let meta = MemberValue { subscribed_topics: vec!["t".into()], ..MemberValue::default() };
        g.replay(&member("a"), Some(&GroupValue::Member(meta.clone())));
        g.replay(&GroupKey::Group { group: "g".into() }, Some(&GroupValue::Group { epoch: 1 }));
        assert_eq!(g.state(), GroupState::Assigning);
        g.replay(
            &GroupKey::Target { group: "g".into(), member: "a".into() },
            Some(&GroupValue::Target(parts(&[("t", &[0, 1])]))),
        );
        g.replay(&GroupKey::TargetEpoch { group: "g".into() }, Some(&GroupValue::TargetEpoch { epoch: 1 }));
        assert_eq!(g.state(), GroupState::Reconciling);
        let current = CurrentValue {
            member_epoch: 1,
            previous_member_epoch: 0,
            state: 0,
            assigned: parts(&[("t", &[0, 1])]),
            pending_revocation: TopicPartitions::new(),
        };
        g.replay(&GroupKey::Current { group: "g".into(), member: "a".into() }, Some(&GroupValue::Current(current)));
        assert_eq!(g.state(), GroupState::Stable);
        assert!(g.owned_by_other("b", "t", 1));
        assert!(!g.owned_by_other("a", "t", 1));
        assert_eq!(g.members["a"].meta, meta);

        g.replay(&GroupKey::Current { group: "g".into(), member: "a".into() }, None);
        assert!(g.members["a"].assigned.is_empty());
        g.replay(&member("a"), None);
        assert_eq!(g.state(), GroupState::Empty);
        g.replay(&GroupKey::Group { group: "g".into() }, None);
        assert_eq!(g, ConsumerGroup::new("g"));
    }

    #[test]
    fn member_states_round_trip_through_their_codes() {
        for s in [MemberState::Stable, MemberState::UnrevokedPartitions, MemberState::UnreleasedPartitions] {
            assert_eq!(MemberState::from_code(s.code()), s);
        }
        assert_eq!(MemberState::from_code(99), MemberState::Stable);
    }
}
