//! A classic consumer group: Kafka's JoinGroup / SyncGroup / Heartbeat / LeaveGroup protocol
//! with client-side assignors, which librdkafka, kafka-python and the Java client still use by
//! default. The coordinator only gathers the members, elects a leader and hands out the
//! assignment the leader computed.
//!
//! States, as Kafka names them: `Empty` → (a join) `PreparingRebalance` → (every member joined,
//! or the rebalance timeout passed) `CompletingRebalance` → (the leader's SyncGroup) `Stable` →
//! (a join, a leave, a session expiry) `PreparingRebalance`. Each completed join bumps the
//! generation; heartbeats and commits of another generation are `ILLEGAL_GENERATION`.
//!
//! JoinGroup and SyncGroup wait: a request parks a oneshot sender in its member, and whatever
//! completes the phase (the last join, the leader's sync, [`ClassicGroup::tick`]) answers them
//! all. Times are passed in, so the machine is tested without a clock.
//!
//! Membership lives in the coordinator's memory (committed offsets are durable in
//! `__consumer_offsets`): after a coordinator moves, members get `UNKNOWN_MEMBER_ID` and join
//! again, which is one rebalance.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use vltava_common::{ErrorCode, WireError};

/// A classic group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    /// No members.
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl ClassicState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
        }
    }
}

/// A JoinGroup as the coordinator needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The member id, empty on a first join.
    pub member_id: String,
    /// `group.instance.id` (static membership), if any.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// The protocol type (`consumer` for consumers).
    pub protocol_type: String,
    /// The assignors the member supports, in preference order, with its metadata for each.
    pub protocols: Vec<(String, Bytes)>,
    /// Its session timeout.
    pub session_timeout: Duration,
    /// Its rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Whether a first join must come back with the member id it is given (JoinGroup v4+,
    /// KIP-394), so that a member that never learns its id leaves no trace.
    pub require_known_member_id: bool,
}

/// What a completed join tells one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The new generation.
    pub generation: i32,
    /// The protocol type.
    pub protocol_type: String,
    /// The chosen assignor.
    pub protocol: String,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// For the leader only: every member with its instance id and metadata for the chosen
    /// assignor.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// A join's answer: now, or once the rebalance completes.
pub enum JoinStep {
    /// Answered now (an error, or `MEMBER_ID_REQUIRED` with the id to use).
    Now(Result<JoinOutcome, (WireError, String)>),
    /// Answered when the join phase completes.
    Wait(oneshot::Receiver<Result<JoinOutcome, WireError>>),
}

/// A sync's answer: the member's assignment, now or once the leader sent it.
pub enum SyncStep {
    /// Answered now.
    Now(Result<Bytes, WireError>),
    /// Answered when the leader's assignment arrives.
    Wait(oneshot::Receiver<Result<Bytes, WireError>>),
}

/// One member of a classic group.
#[derive(Debug)]
pub struct ClassicMember {
    /// Member id.
    pub id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Assignors in preference order, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Its assignment in the current generation (empty until the leader's sync).
    pub assignment: Bytes,
    /// When it was last heard from.
    pub last_seen: Instant,
    join_waiter: Option<oneshot::Sender<Result<JoinOutcome, WireError>>>,
    sync_waiter: Option<oneshot::Sender<Result<Bytes, WireError>>>,
}

impl ClassicMember {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// Timing limits from the broker's configuration.
#[derive(Debug, Clone, Copy)]
pub struct ClassicLimits {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout: Duration,
}

/// A classic group (see the module documentation).
#[derive(Debug)]
pub struct ClassicGroup {
    /// Group id.
    pub id: String,
    /// Its `__consumer_offsets` partition.
    pub partition: i32,
    /// Where it is in its life cycle.
    pub state: ClassicState,
    /// Bumped by every completed join.
    pub generation: i32,
    /// Its members' protocol type.
    pub protocol_type: String,
    /// The assignor chosen in this generation.
    pub protocol: String,
    /// The leader's member id.
    pub leader: String,
    /// Members by id.
    pub members: BTreeMap<String, ClassicMember>,
    /// Member ids handed out by `MEMBER_ID_REQUIRED` and not used yet: until when they are
    /// kept (their session timeout). A join phase waits for them too, as Kafka's does.
    pending: BTreeMap<String, Instant>,
    /// A first rebalance completes no sooner than this (`group.initial.rebalance.delay.ms`).
    not_before: Option<Instant>,
    /// The join phase ends at this moment whoever has joined (the rebalance timeout).
    deadline: Option<Instant>,
}

fn refused(code: ErrorCode, message: impl Into<String>) -> WireError {
    WireError::new(code, message)
}

impl ClassicGroup {
    /// An empty group on `__consumer_offsets` partition `partition`.
    pub fn new(id: &str, partition: i32) -> Self {
        Self {
            id: id.to_string(),
            partition,
            state: ClassicState::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: String::new(),
            leader: String::new(),
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            not_before: None,
            deadline: None,
        }
    }

    /// Handles a JoinGroup; `new_id` makes a member id for a first join.
    pub fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        limits: ClassicLimits,
        new_id: impl FnOnce() -> String,
    ) -> JoinStep {
        if req.session_timeout < limits.min_session_timeout || req.session_timeout > limits.max_session_timeout {
            let e = refused(
                ErrorCode::InvalidSessionTimeout,
                format!(
                    "session timeout {:?} is outside {:?}..={:?} (group.min/max.session.timeout.ms)",
                    req.session_timeout, limits.min_session_timeout, limits.max_session_timeout
                ),
            );
            return JoinStep::Now(Err((e, req.member_id)));
        }
        if !self.members.is_empty() && req.protocol_type != self.protocol_type {
            let e = refused(
                ErrorCode::InconsistentGroupProtocol,
                format!("group {} has protocol type {:?}, not {:?}", self.id, self.protocol_type, req.protocol_type),
            );
            return JoinStep::Now(Err((e, req.member_id)));
        }
        let shared = self.candidates(Some(&req.protocols));
        if req.protocols.is_empty() || (!self.members.is_empty() && shared.is_empty()) {
            let e = refused(ErrorCode::InconsistentGroupProtocol, "no assignor in common with the group's members");
            return JoinStep::Now(Err((e, req.member_id)));
        }
        // Static membership (KIP-345): an instance id names one member; a new incarnation
        // (joining without a member id) takes the old one's place, fencing it.
        let known_instance = req.instance_id.as_deref().and_then(|i| self.static_member(i)).map(str::to_string);
        if let Some(old) = &known_instance
            && !req.member_id.is_empty()
            && req.member_id != *old
        {
            let e = refused(ErrorCode::FencedInstanceId, format!("instance {:?} is member {old} now", req.instance_id));
            return JoinStep::Now(Err((e, req.member_id)));
        }
        let member_id = if let (Some(old), true) = (&known_instance, req.member_id.is_empty()) {
            self.replace_static(old, new_id(), now)
        } else if req.member_id.is_empty() {
            let id = new_id();
            if req.require_known_member_id && req.instance_id.is_none() {
                self.pending.insert(id.clone(), now + req.session_timeout);
                let e = refused(ErrorCode::MemberIdRequired, "join again with the member id given");
                return JoinStep::Now(Err((e, id)));
            }
            id
        } else if self.members.contains_key(&req.member_id) || self.pending.remove(&req.member_id).is_some() {
            req.member_id.clone()
        } else {
            let e =
                refused(ErrorCode::UnknownMemberId, format!("member {} is not in group {}", req.member_id, self.id));
            return JoinStep::Now(Err((e, req.member_id)));
        };
        let (tx, rx) = oneshot::channel();
        let known = self.members.get_mut(&member_id);
        let changed = match known {
            Some(m) => {
                let changed = m.protocols != req.protocols;
                m.protocols = req.protocols;
                m.session_timeout = req.session_timeout;
                m.rebalance_timeout = req.rebalance_timeout;
                m.last_seen = now;
                m.join_waiter = Some(tx);
                changed
            }
            None => {
                self.members.insert(
                    member_id.clone(),
                    ClassicMember {
                        id: member_id.clone(),
                        instance_id: req.instance_id,
                        client_id: req.client_id,
                        client_host: req.client_host,
                        session_timeout: req.session_timeout,
                        rebalance_timeout: req.rebalance_timeout,
                        protocols: req.protocols,
                        assignment: Bytes::new(),
                        last_seen: now,
                        join_waiter: Some(tx),
                        sync_waiter: None,
                    },
                );
                true
            }
        };
        self.protocol_type = req.protocol_type;
        match self.state {
            ClassicState::Empty => {
                self.prepare_rebalance(now);
                self.not_before = Some(now + limits.initial_rebalance_delay);
            }
            ClassicState::PreparingRebalance => {
                // A new member during a first rebalance's delay gets the others a little more time.
                if let Some(not_before) = self.not_before.as_mut() {
                    *not_before =
                        (now + limits.initial_rebalance_delay).min(self.deadline.unwrap_or(now)).max(*not_before);
                }
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                // A member that rejoins unchanged gets the current generation back (it lost the
                // answer); a changed member, or the leader of a stable group, starts a rebalance.
                let leader = member_id == self.leader && self.state == ClassicState::Stable;
                if changed || leader {
                    self.prepare_rebalance(now);
                } else if let Some(m) = self.members.get_mut(&member_id)
                    && let Some(w) = m.join_waiter.take()
                {
                    let _ = w.send(Ok(self.outcome_for(&member_id)));
                }
            }
        }
        self.maybe_complete_join(now);
        JoinStep::Wait(rx)
    }

    /// A static member's new incarnation takes `old`'s place under `new_id`: same protocols and
    /// assignment; the old incarnation's waiting requests are answered `FENCED_INSTANCE_ID`.
    fn replace_static(&mut self, old: &str, new_id: String, now: Instant) -> String {
        let mut m = self.members.remove(old).expect("a static member of this group");
        let fenced = || refused(ErrorCode::FencedInstanceId, "a newer incarnation of this instance joined");
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(Err(fenced()));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(Err(fenced()));
        }
        m.id = new_id.clone();
        m.last_seen = now;
        if self.leader == old {
            self.leader = new_id.clone();
        }
        self.members.insert(new_id.clone(), m);
        new_id
    }

    /// Checks `member_id` is the member of `instance_id`, when a static member sends one.
    pub fn check_instance(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), WireError> {
        match instance_id.and_then(|i| self.static_member(i)) {
            Some(id) if id != member_id => Err(refused(
                ErrorCode::FencedInstanceId,
                format!("instance {instance_id:?} is member {id}, not {member_id}"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the group holds nothing: no member and no member id handed out.
    pub fn is_idle(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    /// When the current join phase ends whoever has joined, if one is under way.
    pub fn join_deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.state == ClassicState::PreparingRebalance)
    }

    /// Handles a SyncGroup: the leader's carries every member's assignment. A protocol type or
    /// name given (version 5) must be the group's.
    pub fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> SyncStep {
        if let Err(e) = self.check_member(member_id, generation) {
            return SyncStep::Now(Err(e));
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| t != self.protocol_type) || protocol_name.is_some_and(|n| n != self.protocol) {
            let e = refused(ErrorCode::InconsistentGroupProtocol, "the protocol is not the group's");
            return SyncStep::Now(Err(e));
        }
        match self.state {
            ClassicState::Empty | ClassicState::PreparingRebalance => {
                SyncStep::Now(Err(refused(ErrorCode::RebalanceInProgress, "the group is rebalancing: join again")))
            }
            ClassicState::Stable => {
                let m = self.members.get_mut(member_id).expect("checked above");
                m.last_seen = now;
                SyncStep::Now(Ok(m.assignment.clone()))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(member_id).expect("checked above");
                m.last_seen = now;
                m.sync_waiter = Some(tx);
                if member_id == self.leader {
                    let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(Ok(m.assignment.clone()));
                        }
                    }
                    self.state = ClassicState::Stable;
                }
                SyncStep::Wait(rx)
            }
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(&mut self, member_id: &str, generation: i32, now: Instant) -> Result<(), WireError> {
        self.check_member(member_id, generation)?;
        self.members.get_mut(member_id).expect("checked above").last_seen = now;
        if self.state == ClassicState::PreparingRebalance {
            return Err(refused(ErrorCode::RebalanceInProgress, "the group is rebalancing: join again"));
        }
        Ok(())
    }

    /// Checks a member may commit at `generation` and counts the commit as a heartbeat. As in
    /// Kafka, a commit of the current generation is taken while the group prepares a rebalance
    /// (members commit what they processed before they rejoin), not while it completes one
    /// (before SyncGroup, the new generation owns nothing yet); a transactional commit is checked
    /// by member and generation only.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        generation: i32,
        transactional: bool,
        now: Instant,
    ) -> Result<(), WireError> {
        self.check_member(member_id, generation)?;
        self.members.get_mut(member_id).expect("checked above").last_seen = now;
        if !transactional && self.state == ClassicState::CompletingRebalance {
            return Err(refused(
                ErrorCode::RebalanceInProgress,
                "the group is completing a rebalance: commit after SyncGroup",
            ));
        }
        Ok(())
    }

    fn check_member(&self, member_id: &str, generation: i32) -> Result<(), WireError> {
        if !self.members.contains_key(member_id) {
            return Err(refused(ErrorCode::UnknownMemberId, format!("member {member_id} is not in group {}", self.id)));
        }
        if generation != self.generation {
            return Err(refused(
                ErrorCode::IllegalGeneration,
                format!("generation {generation} is not the group's current {}", self.generation),
            ));
        }
        Ok(())
    }

    /// Removes a member that leaves (LeaveGroup); a rebalance follows if others remain.
    pub fn leave(&mut self, member_id: &str, now: Instant) -> Result<(), WireError> {
        if self.pending.remove(member_id).is_some() {
            self.maybe_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(member_id) {
            return Err(refused(ErrorCode::UnknownMemberId, format!("member {member_id} is not in group {}", self.id)));
        }
        self.remove(member_id, now);
        Ok(())
    }

    /// The member id of the member with `group.instance.id` `instance`.
    pub fn static_member(&self, instance: &str) -> Option<&str> {
        self.members.values().find(|m| m.instance_id.as_deref() == Some(instance)).map(|m| m.id.as_str())
    }

    /// Expires members whose session lapsed (members waiting in a join are alive until the join
    /// phase ends), ends join phases whose time is up, and forgets unused member ids.
    pub fn tick(&mut self, now: Instant) {
        let waiting_join = self.state == ClassicState::PreparingRebalance;
        let lapsed: Vec<String> = self
            .members
            .values()
            .filter(|m| !(waiting_join && m.join_waiter.is_some()) && m.last_seen + m.session_timeout < now)
            .map(|m| m.id.clone())
            .collect();
        for id in lapsed {
            tracing::info!(group = %self.id, member = %id, "classic group member's session expired");
            self.remove(&id, now);
        }
        self.pending.retain(|_, until| now < *until);
        self.maybe_complete_join(now);
    }

    fn remove(&mut self, member_id: &str, now: Instant) {
        if let Some(mut m) = self.members.remove(member_id) {
            let gone = || refused(ErrorCode::UnknownMemberId, "the member left the group");
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(Err(gone()));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(Err(gone()));
            }
        }
        if self.members.is_empty() {
            self.become_empty();
        } else if self.state != ClassicState::PreparingRebalance {
            self.prepare_rebalance(now);
        } else {
            self.maybe_complete_join(now);
        }
    }

    fn become_empty(&mut self) {
        if self.state != ClassicState::Empty {
            self.generation += 1;
        }
        self.state = ClassicState::Empty;
        self.protocol.clear();
        self.leader.clear();
        self.not_before = None;
        self.deadline = None;
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        for m in self.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(Err(refused(ErrorCode::RebalanceInProgress, "the group is rebalancing: join again")));
            }
        }
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.state = ClassicState::PreparingRebalance;
        self.deadline = Some(now + timeout);
        self.not_before = None;
    }

    /// The assignors every member (and `with`, a joining member's) supports, in the first
    /// member's order.
    fn candidates(&self, with: Option<&Vec<(String, Bytes)>>) -> Vec<String> {
        let mut lists = self.members.values().map(|m| &m.protocols).chain(with);
        let Some(first) = lists.next() else { return Vec::new() };
        let mut out: Vec<String> = first.iter().map(|(n, _)| n.clone()).collect();
        for l in lists {
            out.retain(|n| l.iter().any(|(m, _)| m == n));
        }
        out
    }

    /// What the current generation tells `member_id` (the leader also gets every member).
    fn outcome_for(&self, member_id: &str) -> JoinOutcome {
        let members = match member_id == self.leader {
            true => self
                .members
                .values()
                .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&self.protocol)))
                .collect(),
            false => Vec::new(),
        };
        JoinOutcome {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Ends the join phase when every member has joined (and a first rebalance's delay is over)
    /// or the rebalance timeout passed; members that did not join are removed.
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != ClassicState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some()) && self.pending.is_empty();
        let delayed = self.not_before.is_some_and(|t| now < t);
        let timed_out = self.deadline.is_some_and(|t| now >= t);
        if !(timed_out || (all_joined && !delayed)) {
            return;
        }
        self.members.retain(|_, m| m.join_waiter.is_some());
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        self.generation += 1;
        // Each member votes for its most preferred assignor among those all support.
        let candidates = self.candidates(None);
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        self.protocol = candidates.iter().find(|c| votes.get(c.as_str()) == Some(&best)).cloned().unwrap_or_default();
        if !self.members.contains_key(&self.leader) {
            self.leader = self.members.keys().next().cloned().unwrap_or_default();
        }
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let outcome = self.outcome_for(&id);
            let m = self.members.get_mut(&id).expect("listed above");
            m.assignment = Bytes::new();
            m.last_seen = now;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(Ok(outcome));
            }
        }
        self.state = ClassicState::CompletingRebalance;
        self.not_before = None;
        self.deadline = None;
    }
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;
