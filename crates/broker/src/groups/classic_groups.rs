//! The classic groups ([`ClassicGroup`]) of the `__consumer_offsets` partitions this broker
//! leads, kept in memory beside the KIP-848 groups of the same shards, and the clock that
//! drives their timeouts ([`ClassicGroups::tick`], every [`TICK`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::classic::{ClassicGroup, ClassicLimits, ClassicState};
use crate::config::GroupCoordinatorConfig;

/// How often join phases, sessions and first-rebalance delays are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// A classic group as listed and described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicSummary {
    /// Group id.
    pub id: String,
    /// State.
    pub state: ClassicState,
    /// Generation.
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// The chosen assignor.
    pub protocol: String,
    /// The leader.
    pub leader: String,
    /// Members: id, instance id, client id, host, metadata, assignment.
    pub members: Vec<ClassicMemberSummary>,
}

/// One member of a [`ClassicSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberSummary {
    /// Member id.
    pub id: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Its metadata for the chosen assignor (a consumer's subscription).
    pub metadata: bytes::Bytes,
    /// Its assignment (for consumers, a `ConsumerProtocolAssignment`).
    pub assignment: bytes::Bytes,
}

/// Every classic group this broker coordinates.
pub struct ClassicGroups {
    groups: Mutex<HashMap<String, ClassicGroup>>,
    /// Timing limits.
    pub limits: ClassicLimits,
}

impl ClassicGroups {
    /// No group yet.
    pub fn new(config: &GroupCoordinatorConfig) -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            limits: ClassicLimits {
                initial_rebalance_delay: config.initial_rebalance_delay,
                min_session_timeout: config.min_session_timeout,
                max_session_timeout: config.max_session_timeout,
            },
        }
    }

    /// Runs `f` on `group` (on `__consumer_offsets` partition `partition`), created empty if new.
    pub fn with<R>(&self, group: &str, partition: i32, f: impl FnOnce(&mut ClassicGroup) -> R) -> R {
        let mut groups = self.groups.lock();
        f(groups.entry(group.to_string()).or_insert_with(|| ClassicGroup::new(group, partition)))
    }

    /// Runs `f` on `group` if it exists.
    pub fn existing<R>(&self, group: &str, f: impl FnOnce(&mut ClassicGroup) -> R) -> Option<R> {
        self.groups.lock().get_mut(group).map(f)
    }

    /// Whether `group` is a classic group with members.
    pub fn has_members(&self, group: &str) -> bool {
        self.groups.lock().get(group).is_some_and(|g| !g.members.is_empty())
    }

    /// Forgets `group` if it has no members (a deleted group).
    pub fn forget_if_empty(&self, group: &str) {
        let mut groups = self.groups.lock();
        if groups.get(group).is_some_and(ClassicGroup::is_idle) {
            groups.remove(group);
        }
    }

    /// Drops the groups of partitions this broker no longer leads; their waiting members get
    /// their answer from the new coordinator after looking it up again.
    pub fn retain_partitions(&self, led: impl Fn(i32) -> bool) {
        self.groups.lock().retain(|_, g| led(g.partition));
    }

    /// Advances every group's clock (sessions, join phases); forgets empty groups.
    pub fn tick(&self, now: Instant) {
        let mut groups = self.groups.lock();
        for g in groups.values_mut() {
            g.tick(now);
        }
        groups.retain(|_, g| g.state != ClassicState::Empty || !g.is_idle());
    }

    /// Ids of the classic groups with members.
    pub fn ids(&self) -> Vec<String> {
        self.groups.lock().values().filter(|g| !g.members.is_empty()).map(|g| g.id.clone()).collect()
    }

    /// `group` as described, if it is a classic group with members.
    pub fn describe(&self, group: &str) -> Option<ClassicSummary> {
        let groups = self.groups.lock();
        let g = groups.get(group).filter(|g| !g.members.is_empty())?;
        Some(ClassicSummary {
            id: g.id.clone(),
            state: g.state,
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            leader: g.leader.clone(),
            members: g
                .members
                .values()
                .map(|m| ClassicMemberSummary {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == g.protocol)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }
}
