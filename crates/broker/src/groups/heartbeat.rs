//! The coordinator's decisions for one `ConsumerGroupHeartbeat` (Kafka 4's KIP-848 protocol),
//! a member's removal, and the fencing of offset commits.
//!
//! [`heartbeat`] is a pure function of the group, the request and the partition counts of the
//! cluster's topics. It returns the records to append (in order) and the answer to send once
//! they are durable; the caller replays the records into the group after the append. Each step
//! replays what it emits into a scratch copy, so later steps see earlier ones:
//!
//! 1. validate the member and its epoch (join with epoch 0, leave with -1, a static member's
//!    temporary leave with -2; a static member rejoining replaces its old incarnation and keeps
//!    its partitions, with no rebalance);
//! 2. record a changed subscription, bumping the group epoch;
//! 3. bump the group epoch as well when the subscribed topics' partitions no longer match a
//!    current target assignment (a topic created, grown or deleted);
//! 4. when the target assignment is behind the group epoch, compute a new one with the assignor;
//! 5. move the member one step towards its target: revoke first (its epoch stays until it
//!    acknowledges by no longer reporting the revoked partitions), then take the target's
//!    partitions that no other member still owns, at the target epoch.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use vltava_common::{ErrorCode, WireError};

use super::assignor::{self, GroupSpec, MemberSpec, TopicPartitions};
use super::consumer_group::{ConsumerGroup, Member, MemberState, STATIC_LEFT_EPOCH};
use super::records::{GroupKey, GroupValue, MemberValue};

/// A record to append: a key and a value, or a tombstone.
pub type Record = (GroupKey, Option<GroupValue>);

/// Member epoch of a member leaving for good.
pub const LEAVE_EPOCH: i32 = -1;

/// Why the coordinator refused a heartbeat or an offset commit (Kafka's error, by name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The member id is not (or no longer) in the group.
    #[error("member {member} is not in group {group}")]
    UnknownMemberId {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// The member's epoch is not one the coordinator gave it: it must rejoin with epoch 0.
    #[error("member {member} sent epoch {sent}, its epoch is {current}: rejoin")]
    FencedMemberEpoch {
        /// Member id.
        member: String,
        /// The epoch it sent.
        sent: i32,
        /// Its epoch.
        current: i32,
    },
    /// A commit carried an old member epoch: refresh it with a heartbeat and retry.
    #[error("member {member} committed at epoch {sent}, its epoch is {current}")]
    StaleMemberEpoch {
        /// Member id.
        member: String,
        /// The epoch it sent.
        sent: i32,
        /// Its epoch.
        current: i32,
    },
    /// Another member now holds this `group.instance.id`.
    #[error("group.instance.id {instance} belongs to another member now")]
    FencedInstanceId {
        /// The instance id.
        instance: String,
    },
    /// No server-side assignor has this name.
    #[error("unsupported assignor {0:?} (uniform, range)")]
    UnsupportedAssignor(String),
    /// The subscription pattern does not compile.
    #[error("invalid subscription pattern {pattern:?}: {reason}")]
    InvalidRegularExpression {
        /// The pattern.
        pattern: String,
        /// Why it does not compile.
        reason: String,
    },
    /// A commit names a partition the member does not own at its epoch.
    #[error("member {member} does not own {topic}-{partition}")]
    NotAssigned {
        /// Member id.
        member: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// The request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
}

impl From<GroupError> for WireError {
    /// Kafka's error for it. `NotAssigned` has no Kafka counterpart: the closest,
    /// `ILLEGAL_GENERATION`, says the commit is not valid for the member's generation.
    fn from(e: GroupError) -> Self {
        let code = match &e {
            GroupError::UnknownMemberId { .. } => ErrorCode::UnknownMemberId,
            GroupError::FencedMemberEpoch { .. } => ErrorCode::FencedMemberEpoch,
            GroupError::StaleMemberEpoch { .. } => ErrorCode::StaleMemberEpoch,
            GroupError::FencedInstanceId { .. } => ErrorCode::FencedInstanceId,
            GroupError::UnsupportedAssignor(_) => ErrorCode::UnsupportedAssignor,
            GroupError::InvalidRegularExpression { .. } => ErrorCode::InvalidRegularExpression,
            GroupError::NotAssigned { .. } => ErrorCode::IllegalGeneration,
            GroupError::InvalidRequest(_) => ErrorCode::InvalidRequest,
        };
        WireError::new(code, e.to_string())
    }
}

/// A `ConsumerGroupHeartbeat` as the coordinator reads it. `None` fields are unchanged since the
/// member's previous heartbeat (a joining member must send its subscription).
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    /// Member id (empty on a first join: the coordinator picks one).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member's temporary leave, else its epoch.
    pub member_epoch: i32,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Rack of the member's host.
    pub rack: Option<String>,
    /// How long it may take to revoke partitions.
    pub rebalance_timeout_ms: Option<i32>,
    /// Subscribed topic names.
    pub subscribed_topics: Option<Vec<String>>,
    /// Subscription pattern (empty string: none).
    pub subscribed_regex: Option<String>,
    /// Server-side assignor (empty string: the default).
    pub server_assignor: Option<String>,
    /// The partitions the member owns now.
    pub owned: Option<TopicPartitions>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
}

/// What to append and, once it is durable, what to answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatDecision {
    /// Records to append, in order (empty: nothing changed).
    pub records: Vec<Record>,
    /// The member's id.
    pub member_id: String,
    /// The member's epoch (-1 or -2 after a leave).
    pub member_epoch: i32,
    /// The member's assignment, when it must (re)learn it.
    pub assignment: Option<TopicPartitions>,
    /// The member has not reached its target yet (it must revoke partitions, or waits for
    /// partitions others still hold): it should heartbeat again soon.
    pub converging: bool,
}

/// Decides a heartbeat (see the module documentation). `topics` holds the partition count of
/// every topic of the cluster; `new_member_id` names a joining member that sent none.
///
/// # Errors
///
/// A [`GroupError`] naming what is wrong; nothing is to be appended then.
pub fn heartbeat(
    group: &ConsumerGroup,
    req: &HeartbeatRequest,
    topics: &BTreeMap<String, i32>,
    new_member_id: impl FnOnce() -> String,
) -> Result<HeartbeatDecision, GroupError> {
    validate_settings(req)?;
    let mut scratch = Scratch { group: group.clone(), records: Vec::new() };
    let member_id = match req.member_epoch {
        0 => scratch.join(req, new_member_id)?,
        LEAVE_EPOCH | STATIC_LEFT_EPOCH => {
            let member = scratch.existing(req)?.id.clone();
            if req.member_epoch == STATIC_LEFT_EPOCH && req.instance_id.is_some() {
                let mut left = scratch.group.members[&member].clone();
                left.previous_epoch = left.epoch;
                left.epoch = STATIC_LEFT_EPOCH;
                scratch.emit(current_key(group, &member), Some(GroupValue::Current(left.current_value())));
            } else {
                scratch.remove(&member);
            }
            return Ok(HeartbeatDecision {
                records: scratch.records,
                member_id: member,
                member_epoch: req.member_epoch,
                assignment: None,
                converging: false,
            });
        }
        epoch if epoch > 0 => {
            let member = scratch.existing(req)?.clone();
            check_epoch(&member, epoch, req.owned.as_ref())?;
            member.id
        }
        other => return Err(GroupError::InvalidRequest(format!("member epoch {other} is not valid"))),
    };
    scratch.update_subscription(&member_id, req);
    let subscriptions = scratch.resolved_subscriptions(topics);
    let target_current = scratch.group.target_epoch == scratch.group.epoch;
    if target_current && !target_covers(&scratch.group, &subscriptions, topics) {
        scratch.bump_epoch();
    }
    if scratch.group.target_epoch < scratch.group.epoch {
        scratch.compute_target(&subscriptions, topics)?;
    }
    let before = scratch.group.members[&member_id].clone();
    let after = reconcile(&scratch.group, &before, req.owned.as_ref());
    if after != before {
        scratch.emit(current_key(group, &member_id), Some(GroupValue::Current(after.current_value())));
    }
    let resend = req.member_epoch == 0 || after != before || req.owned.as_ref().is_some_and(|o| *o != after.assigned);
    Ok(HeartbeatDecision {
        records: scratch.records,
        member_id,
        member_epoch: after.epoch,
        assignment: resend.then(|| after.assigned.clone()),
        converging: after.state != MemberState::Stable,
    })
}

/// The records that remove `member` (a session or rebalance timeout, or a leave): its
/// assignment, target and subscription go and the group epoch is bumped, so the next heartbeat
/// reassigns its partitions. Empty if it is not a member.
pub fn remove_member(group: &ConsumerGroup, member: &str) -> Vec<Record> {
    if !group.members.contains_key(member) {
        return Vec::new();
    }
    let mut scratch = Scratch { group: group.clone(), records: Vec::new() };
    scratch.remove(member);
    scratch.records
}

/// Checks that `member` at `epoch` may commit an offset of `topic`-`partition`. A commit with no
/// member id (a consumer using `assign()`; its epoch is ignored) is accepted only while the
/// group has no members.
///
/// # Errors
///
/// [`GroupError::UnknownMemberId`], [`GroupError::StaleMemberEpoch`] or
/// [`GroupError::NotAssigned`].
pub fn validate_commit(
    group: &ConsumerGroup,
    member: &str,
    epoch: i32,
    topic: &str,
    partition: i32,
) -> Result<(), GroupError> {
    if member.is_empty() && group.members.is_empty() {
        return Ok(());
    }
    let m = group
        .members
        .get(member)
        .ok_or_else(|| GroupError::UnknownMemberId { group: group.id.clone(), member: member.to_string() })?;
    if epoch != m.epoch {
        return Err(GroupError::StaleMemberEpoch { member: member.to_string(), sent: epoch, current: m.epoch });
    }
    let owns = |parts: &TopicPartitions| parts.get(topic).is_some_and(|ps| ps.contains(&partition));
    if owns(&m.assigned) || owns(&m.pending_revocation) {
        Ok(())
    } else {
        Err(GroupError::NotAssigned { member: member.to_string(), topic: topic.to_string(), partition })
    }
}

fn validate_settings(req: &HeartbeatRequest) -> Result<(), GroupError> {
    if let Some(name) = req.server_assignor.as_deref().filter(|n| !n.is_empty())
        && assignor::by_name(name).is_none()
    {
        return Err(GroupError::UnsupportedAssignor(name.to_string()));
    }
    if let Some(pattern) = req.subscribed_regex.as_deref().filter(|p| !p.is_empty()) {
        compile(pattern)?;
    }
    if req.rebalance_timeout_ms.is_some_and(|t| t <= 0) {
        return Err(GroupError::InvalidRequest("rebalance timeout must be positive".into()));
    }
    if req.instance_id.as_deref().is_some_and(str::is_empty) {
        return Err(GroupError::InvalidRequest("group.instance.id must not be empty".into()));
    }
    Ok(())
}

fn compile(pattern: &str) -> Result<Regex, GroupError> {
    // Anchored, as Kafka's Java patterns match whole topic names.
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| GroupError::InvalidRegularExpression { pattern: pattern.to_string(), reason: e.to_string() })
}

/// A member may send its epoch, or its previous epoch when the answer that moved it on was
/// lost (then it must not report partitions it no longer owns).
fn check_epoch(member: &Member, sent: i32, owned: Option<&TopicPartitions>) -> Result<(), GroupError> {
    let lost_answer = sent == member.previous_epoch && owned.is_some_and(|o| is_subset(o, &member.assigned));
    if sent == member.epoch || lost_answer {
        Ok(())
    } else {
        Err(GroupError::FencedMemberEpoch { member: member.id.clone(), sent, current: member.epoch })
    }
}

fn current_key(group: &ConsumerGroup, member: &str) -> GroupKey {
    GroupKey::Current { group: group.id.clone(), member: member.to_string() }
}

/// The group as the decision goes on, and the records emitted so far.
struct Scratch {
    group: ConsumerGroup,
    records: Vec<Record>,
}

impl Scratch {
    fn emit(&mut self, key: GroupKey, value: Option<GroupValue>) {
        self.group.replay(&key, value.as_ref());
        self.records.push((key, value));
    }

    fn bump_epoch(&mut self) {
        let epoch = self.group.epoch + 1;
        self.emit(GroupKey::Group { group: self.group.id.clone() }, Some(GroupValue::Group { epoch }));
    }

    fn existing(&self, req: &HeartbeatRequest) -> Result<&Member, GroupError> {
        if let Some(instance) = req.instance_id.as_deref()
            && self.group.static_member(instance).is_some_and(|m| m.id != req.member_id)
        {
            return Err(GroupError::FencedInstanceId { instance: instance.to_string() });
        }
        self.group
            .members
            .get(&req.member_id)
            .ok_or_else(|| GroupError::UnknownMemberId { group: self.group.id.clone(), member: req.member_id.clone() })
    }

    fn join(&mut self, req: &HeartbeatRequest, new_member_id: impl FnOnce() -> String) -> Result<String, GroupError> {
        let id = if req.member_id.is_empty() { new_member_id() } else { req.member_id.clone() };
        if self.group.members.contains_key(&id) {
            return Ok(id);
        }
        let subscribes = req.subscribed_topics.as_ref().is_some_and(|t| !t.is_empty())
            || req.subscribed_regex.as_deref().is_some_and(|r| !r.is_empty());
        if !subscribes {
            return Err(GroupError::InvalidRequest("a joining member must subscribe to topics or a pattern".into()));
        }
        let replaced = req.instance_id.as_deref().and_then(|i| self.group.static_member(i)).cloned();
        if let Some(old) = replaced {
            // The same static member, restarted: it takes over its old incarnation's
            // subscription, target and partitions at the same epoch, so nothing moves.
            let group = self.group.id.clone();
            let target = self.group.target.get(&old.id).cloned();
            let mut epoch = old.epoch;
            if epoch == STATIC_LEFT_EPOCH {
                epoch = old.previous_epoch.max(0);
            }
            self.remove_records_only(&old.id);
            self.emit(
                GroupKey::Member { group: group.clone(), member: id.clone() },
                Some(GroupValue::Member(old.meta.clone())),
            );
            if let Some(target) = target {
                self.emit(
                    GroupKey::Target { group: group.clone(), member: id.clone() },
                    Some(GroupValue::Target(target)),
                );
            }
            let current = Member { id: id.clone(), epoch, ..old };
            self.emit(
                GroupKey::Current { group, member: id.clone() },
                Some(GroupValue::Current(current.current_value())),
            );
        }
        Ok(id)
    }

    fn update_subscription(&mut self, member: &str, req: &HeartbeatRequest) {
        let existing = self.group.members.get(member);
        let old = existing.map(|m| m.meta.clone()).unwrap_or_default();
        let mut meta = MemberValue {
            instance_id: req.instance_id.clone().or(old.instance_id.clone()),
            rack: req.rack.clone().or(old.rack.clone()),
            client_id: if req.client_id.is_empty() { old.client_id.clone() } else { req.client_id.clone() },
            client_host: if req.client_host.is_empty() { old.client_host.clone() } else { req.client_host.clone() },
            subscribed_topics: req.subscribed_topics.clone().unwrap_or(old.subscribed_topics.clone()),
            subscribed_regex: req
                .subscribed_regex
                .clone()
                .map(|r| Some(r).filter(|r| !r.is_empty()))
                .unwrap_or(old.subscribed_regex.clone()),
            rebalance_timeout_ms: req.rebalance_timeout_ms.unwrap_or(old.rebalance_timeout_ms),
            server_assignor: req
                .server_assignor
                .clone()
                .map(|a| Some(a).filter(|a| !a.is_empty()))
                .unwrap_or(old.server_assignor.clone()),
        };
        meta.subscribed_topics.sort();
        meta.subscribed_topics.dedup();
        if existing.is_some() && meta == old {
            return;
        }
        let rebalance = existing.is_none()
            || meta.subscribed_topics != old.subscribed_topics
            || meta.subscribed_regex != old.subscribed_regex
            || meta.server_assignor != old.server_assignor
            || meta.rack != old.rack;
        let key = GroupKey::Member { group: self.group.id.clone(), member: member.to_string() };
        self.emit(key, Some(GroupValue::Member(meta)));
        if rebalance {
            self.bump_epoch();
        }
    }

    /// Each member's subscribed topics that exist (a pattern never matches internal topics).
    fn resolved_subscriptions(&self, topics: &BTreeMap<String, i32>) -> BTreeMap<String, BTreeSet<String>> {
        self.group
            .members
            .values()
            .map(|m| {
                let mut subscribed: BTreeSet<String> =
                    m.meta.subscribed_topics.iter().filter(|t| topics.contains_key(*t)).cloned().collect();
                if let Some(re) = m.meta.subscribed_regex.as_deref().and_then(|p| compile(p).ok()) {
                    subscribed.extend(topics.keys().filter(|t| !t.starts_with("__") && re.is_match(t)).cloned());
                }
                (m.id.clone(), subscribed)
            })
            .collect()
    }

    fn compute_target(
        &mut self,
        subscriptions: &BTreeMap<String, BTreeSet<String>>,
        topics: &BTreeMap<String, i32>,
    ) -> Result<(), GroupError> {
        let name = self.group.members.values().find_map(|m| m.meta.server_assignor.clone()).unwrap_or_default();
        let assignor = assignor::by_name(&name).ok_or_else(|| GroupError::UnsupportedAssignor(name.clone()))?;
        let spec = GroupSpec {
            members: self
                .group
                .members
                .values()
                .map(|m| {
                    let spec = MemberSpec {
                        subscribed: subscriptions[&m.id].clone(),
                        rack: m.meta.rack.clone(),
                        owned: self.group.target.get(&m.id).cloned().unwrap_or_default(),
                    };
                    (m.id.clone(), spec)
                })
                .collect(),
            topics: subscriptions.values().flatten().filter_map(|t| topics.get(t).map(|n| (t.clone(), *n))).collect(),
        };
        let group = self.group.id.clone();
        for (member, parts) in assignor.assign(&spec) {
            let parts = normalized(parts);
            if self.group.target.get(&member) != Some(&parts) {
                let key = GroupKey::Target { group: group.clone(), member };
                self.emit(key, Some(GroupValue::Target(parts)));
            }
        }
        let epoch = self.group.epoch;
        self.emit(GroupKey::TargetEpoch { group }, Some(GroupValue::TargetEpoch { epoch }));
        Ok(())
    }

    fn remove_records_only(&mut self, member: &str) {
        let group = self.group.id.clone();
        self.emit(GroupKey::Current { group: group.clone(), member: member.to_string() }, None);
        if self.group.target.contains_key(member) {
            self.emit(GroupKey::Target { group: group.clone(), member: member.to_string() }, None);
        }
        self.emit(GroupKey::Member { group, member: member.to_string() }, None);
    }

    fn remove(&mut self, member: &str) {
        self.remove_records_only(member);
        self.bump_epoch();
    }
}

/// Whether the target assignment holds exactly the partitions of the members' subscribed topics
/// (else topics were created, grown or deleted since it was computed).
fn target_covers(
    group: &ConsumerGroup,
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    topics: &BTreeMap<String, i32>,
) -> bool {
    let wanted: BTreeSet<(&str, i32)> = subscriptions
        .values()
        .flatten()
        .flat_map(|t| (0..topics.get(t).copied().unwrap_or(0)).map(move |p| (t.as_str(), p)))
        .collect();
    let targeted: BTreeSet<(&str, i32)> = group
        .target
        .values()
        .flat_map(|tp| tp.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t.as_str(), *p))))
        .collect();
    wanted == targeted
}

/// The member one step closer to its target (see the module documentation).
fn reconcile(group: &ConsumerGroup, member: &Member, owned: Option<&TopicPartitions>) -> Member {
    let target = group.target.get(&member.id).cloned().unwrap_or_default();
    let mut next = member.clone();
    if next.epoch == STATIC_LEFT_EPOCH {
        next.epoch = next.previous_epoch.max(0);
    }
    if next.state == MemberState::UnrevokedPartitions
        && owned.is_some_and(|o| intersection(o, &next.pending_revocation).is_empty())
    {
        next.pending_revocation.clear();
    }
    let revoke = difference(&next.assigned, &target);
    if !revoke.is_empty() || !next.pending_revocation.is_empty() {
        next.assigned = intersection(&next.assigned, &target);
        next.pending_revocation = union(&next.pending_revocation, &revoke);
        next.state = MemberState::UnrevokedPartitions;
        return next;
    }
    let mut assigned = next.assigned.clone();
    for (topic, parts) in &target {
        for p in parts {
            if !group.owned_by_other(&member.id, topic, *p) {
                assigned.entry(topic.clone()).or_default().insert(*p);
            }
        }
    }
    if next.epoch != group.target_epoch {
        next.previous_epoch = next.epoch;
        next.epoch = group.target_epoch;
    }
    next.assigned = normalized(assigned);
    next.state = if next.assigned == target { MemberState::Stable } else { MemberState::UnreleasedPartitions };
    next
}

fn normalized(parts: TopicPartitions) -> TopicPartitions {
    parts.into_iter().filter(|(_, ps)| !ps.is_empty()).collect()
}

fn pairs(parts: &TopicPartitions) -> BTreeSet<(String, i32)> {
    parts.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p))).collect()
}

fn from_pairs(pairs: impl IntoIterator<Item = (String, i32)>) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for (t, p) in pairs {
        out.entry(t).or_default().insert(p);
    }
    out
}

fn difference(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    from_pairs(pairs(a).difference(&pairs(b)).cloned())
}

fn intersection(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    from_pairs(pairs(a).intersection(&pairs(b)).cloned())
}

fn union(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    from_pairs(pairs(a).union(&pairs(b)).cloned())
}

fn is_subset(a: &TopicPartitions, b: &TopicPartitions) -> bool {
    pairs(a).is_subset(&pairs(b))
}

#[cfg(test)]
#[path = "heartbeat_tests.rs"]
mod tests;
