//! The classic group protocol's handlers (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), served
//! to Kafka clients by the Kafka listener, on the group's coordinator (`NOT_COORDINATOR`
//! elsewhere). Offsets are committed through the same coordinator as every other commit,
//! after [`check_commit`] validated the member's generation.
//!
//! JoinGroup and SyncGroup change the group at once ([`join`], [`sync`]) and answer later
//! ([`Joining::outcome`], [`Syncing::outcome`]), so a connection can apply its requests in
//! order and still wait for the rebalance beside its next requests.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use vltava_common::names::validate_group_id;
use vltava_common::{ErrorCode, WireError};

use super::classic::{JoinOutcome, JoinRequest, JoinStep, SyncStep};
use crate::broker::Broker;

/// How much longer than the join phase (or a session) a request may wait for its answer.
const GRACE: Duration = Duration::from_secs(5);

/// Checks the group may take classic members here; returns its `__consumer_offsets` partition.
async fn coordinate(broker: &Broker, group: &str) -> Result<i32, WireError> {
    validate_group_id(group)?;
    let image = broker.replicas.image();
    let (partition, consumer_members) = broker.groups.coordinate(&image, group).await?;
    if consumer_members {
        return Err(WireError::new(
            ErrorCode::InconsistentGroupProtocol,
            format!("group {group} has members of the consumer protocol (KIP-848): use another group id"),
        ));
    }
    Ok(partition)
}

/// A JoinGroup applied to its group, waiting for the join phase to complete. An error comes
/// with the member id to report (`MEMBER_ID_REQUIRED` carries the one to join with).
pub enum Joining {
    /// Answered already.
    Done(Result<JoinOutcome, (WireError, String)>),
    /// Waiting for the rebalance.
    Waiting {
        /// The answer.
        rx: oneshot::Receiver<Result<JoinOutcome, WireError>>,
        /// The longest wait (the group's join phase, plus grace).
        wait: Duration,
        /// The member id to report on a timeout.
        member_id: String,
        /// The group.
        group: String,
    },
}

impl Joining {
    /// The JoinGroup's answer.
    pub async fn outcome(self) -> Result<JoinOutcome, (WireError, String)> {
        match self {
            Joining::Done(r) => r,
            Joining::Waiting { rx, wait, member_id, group } => match tokio::time::timeout(wait, rx).await {
                Ok(Ok(outcome)) => outcome.map_err(|e| (e, member_id)),
                Ok(Err(_)) => Err((not_coordinator(&group), member_id)),
                Err(_) => Err((rebalancing("the rebalance did not complete in time"), member_id)),
            },
        }
    }
}

/// JoinGroup: applies the join to the group now.
pub async fn join(broker: &Broker, group: &str, req: JoinRequest) -> Joining {
    let member_id = req.member_id.clone();
    let partition = match coordinate(broker, group).await {
        Ok(p) => p,
        Err(e) => return Joining::Done(Err((e, member_id))),
    };
    let own = req.rebalance_timeout;
    let client_id = req.client_id.clone();
    let limits = broker.groups.classic.limits;
    let now = Instant::now();
    let (step, deadline) = broker.groups.classic.with(group, partition, |g| {
        let step = g.join(req, now, limits, || format!("{client_id}-{}", uuid::Uuid::new_v4()));
        (step, g.join_deadline())
    });
    match step {
        JoinStep::Now(r) => Joining::Done(r),
        JoinStep::Wait(rx) => {
            let phase = deadline.map_or(own, |d| d.saturating_duration_since(now)).max(own);
            Joining::Waiting { rx, wait: phase + GRACE, member_id, group: group.to_string() }
        }
    }
}

/// A SyncGroup applied to its group, waiting for the leader's assignment.
pub enum Syncing {
    /// Answered already.
    Done(Result<Bytes, WireError>),
    /// Waiting for the leader.
    Waiting {
        /// The answer.
        rx: oneshot::Receiver<Result<Bytes, WireError>>,
        /// The longest wait (the member's session, plus grace).
        wait: Duration,
        /// The group.
        group: String,
    },
}

impl Syncing {
    /// The member's assignment.
    pub async fn outcome(self) -> Result<Bytes, WireError> {
        match self {
            Syncing::Done(r) => r,
            Syncing::Waiting { rx, wait, group } => match tokio::time::timeout(wait, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(not_coordinator(&group)),
                Err(_) => Err(rebalancing("the leader sent no assignment in time")),
            },
        }
    }
}

/// The identity of a classic member in a request: its id, its `group.instance.id` and the
/// generation it believes in.
#[derive(Debug, Clone, Copy)]
pub struct MemberRef<'a> {
    /// Member id.
    pub id: &'a str,
    /// `group.instance.id`, for static members.
    pub instance: Option<&'a str>,
    /// Generation.
    pub generation: i32,
}

/// SyncGroup: applies the sync now (the leader's hands out the assignments).
pub async fn sync(
    broker: &Broker,
    group: &str,
    member: MemberRef<'_>,
    protocol: (Option<&str>, Option<&str>),
    assignments: Vec<(String, Bytes)>,
) -> Syncing {
    if let Err(e) = coordinate(broker, group).await {
        return Syncing::Done(Err(e));
    }
    let step = broker.groups.classic.existing(group, |g| {
        let session = g.members.get(member.id).map(|m| m.session_timeout);
        let step = match g.check_instance(member.id, member.instance) {
            Ok(()) => g.sync(member.id, member.generation, protocol, assignments, Instant::now()),
            Err(e) => SyncStep::Now(Err(e)),
        };
        (step, session)
    });
    match step {
        None => Syncing::Done(Err(unknown_member(group, member.id))),
        Some((SyncStep::Now(r), _)) => Syncing::Done(r),
        Some((SyncStep::Wait(rx), session)) => {
            Syncing::Waiting { rx, wait: session.unwrap_or(Duration::from_secs(30)) + GRACE, group: group.to_string() }
        }
    }
}

/// Heartbeat of a classic member.
pub async fn heartbeat(broker: &Broker, group: &str, member: MemberRef<'_>) -> Result<(), WireError> {
    coordinate(broker, group).await?;
    broker
        .groups
        .classic
        .existing(group, |g| {
            g.check_instance(member.id, member.instance)?;
            g.heartbeat(member.id, member.generation, Instant::now())
        })
        .unwrap_or_else(|| Err(unknown_member(group, member.id)))
}

/// LeaveGroup: each member (by id, or by `group.instance.id` when the id is empty) leaves.
pub async fn leave(
    broker: &Broker,
    group: &str,
    members: Vec<(String, Option<String>)>,
) -> Result<Vec<(String, Result<(), WireError>)>, WireError> {
    coordinate(broker, group).await?;
    let now = Instant::now();
    Ok(members
        .into_iter()
        .map(|(id, instance)| {
            let outcome = broker.groups.classic.existing(group, |g| {
                let id = match (&instance, id.is_empty()) {
                    (Some(instance), true) => g.static_member(instance).unwrap_or_default().to_string(),
                    _ => {
                        g.check_instance(&id, instance.as_deref())?;
                        id.clone()
                    }
                };
                g.leave(&id, now).map(|()| id)
            });
            match outcome {
                Some(Ok(id)) => (id, Ok(())),
                Some(Err(e)) => (id, Err(e)),
                None => (id.clone(), Err(unknown_member(group, &id))),
            }
        })
        .collect())
}

/// Checks a commit of a classic member (generation -1 and no member id: a consumer outside
/// the group's membership, allowed while the group has no classic members, as in Kafka).
/// `transactional` commits (TxnOffsetCommit) are checked by member and generation only.
pub fn check_commit(broker: &Broker, group: &str, member: MemberRef<'_>, transactional: bool) -> Result<(), WireError> {
    let outside = member.id.is_empty() && member.generation < 0;
    let checked = broker.groups.classic.existing(group, |g| {
        if outside {
            return match g.members.is_empty() {
                true => Ok(()),
                false => Err(WireError::new(
                    ErrorCode::UnknownMemberId,
                    format!("group {group} has members: commit as one of them (member id and generation)"),
                )),
            };
        }
        g.check_instance(member.id, member.instance)?;
        g.check_commit(member.id, member.generation, transactional, Instant::now())
    });
    match checked {
        Some(r) => r,
        None if outside => Ok(()),
        None => Err(unknown_member(group, member.id)),
    }
}

fn unknown_member(group: &str, member_id: &str) -> WireError {
    WireError::new(ErrorCode::UnknownMemberId, format!("member {member_id} is not in group {group}"))
}

fn rebalancing(why: &str) -> WireError {
    WireError::new(ErrorCode::RebalanceInProgress, why)
}

fn not_coordinator(group: &str) -> WireError {
    WireError::new(ErrorCode::NotCoordinator, format!("this broker stopped coordinating group {group}: find it again"))
}
