//! The classic group protocol's handlers (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), served
//! to Kafka clients by the Kafka listener, on the group's coordinator (`NOT_COORDINATOR`
//! elsewhere). Offsets are committed through the same coordinator as every other commit,
//! after [`check_commit`] validated the member's generation.

use std::time::{Duration, Instant};

use bytes::Bytes;
use vltava_common::names::validate_group_id;
use vltava_common::{ErrorCode, WireError};

use super::classic::{JoinOutcome, JoinRequest, JoinStep, SyncStep};
use crate::broker::Broker;

/// How much longer than the member's rebalance timeout a join may wait for its answer.
const JOIN_GRACE: Duration = Duration::from_secs(5);

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

/// JoinGroup: answers once the group's join phase completes. An error comes with the member id
/// to report (`MEMBER_ID_REQUIRED` carries the one to join with).
pub async fn join(broker: &Broker, group: &str, req: JoinRequest) -> Result<JoinOutcome, (WireError, String)> {
    let member_id = req.member_id.clone();
    let partition = coordinate(broker, group).await.map_err(|e| (e, member_id.clone()))?;
    let wait = req.rebalance_timeout + JOIN_GRACE;
    let client_id = req.client_id.clone();
    let limits = broker.groups.classic.limits;
    let step = broker.groups.classic.with(group, partition, |g| {
        g.join(req, Instant::now(), limits, || format!("{client_id}-{}", uuid::Uuid::new_v4()))
    });
    match step {
        JoinStep::Now(r) => r,
        JoinStep::Wait(rx) => match tokio::time::timeout(wait, rx).await {
            Ok(Ok(outcome)) => outcome.map_err(|e| (e, member_id)),
            Ok(Err(_)) => Err((not_coordinator(group), member_id)),
            Err(_) => Err((
                WireError::new(ErrorCode::RebalanceInProgress, "the rebalance did not complete in time"),
                member_id,
            )),
        },
    }
}

/// SyncGroup: the member's assignment, once the leader sent the generation's assignments.
pub async fn sync(
    broker: &Broker,
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> Result<Bytes, WireError> {
    coordinate(broker, group).await?;
    let step = broker
        .groups
        .classic
        .existing(group, |g| g.sync(member_id, generation, assignments, Instant::now()))
        .ok_or_else(|| unknown_member(group, member_id))?;
    match step {
        SyncStep::Now(r) => r,
        SyncStep::Wait(rx) => {
            let session =
                broker.groups.classic.existing(group, |g| g.members.get(member_id).map(|m| m.session_timeout));
            let wait = session.flatten().unwrap_or(Duration::from_secs(30)) + JOIN_GRACE;
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(not_coordinator(group)),
                Err(_) => Err(WireError::new(ErrorCode::RebalanceInProgress, "the leader sent no assignment in time")),
            }
        }
    }
}

/// Heartbeat of a classic member.
pub async fn heartbeat(broker: &Broker, group: &str, member_id: &str, generation: i32) -> Result<(), WireError> {
    coordinate(broker, group).await?;
    broker
        .groups
        .classic
        .existing(group, |g| g.heartbeat(member_id, generation, Instant::now()))
        .unwrap_or_else(|| Err(unknown_member(group, member_id)))
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
                    _ => id.clone(),
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

/// Checks a commit of a classic member (`generation` -1 and no member id: a consumer outside
/// the group's membership, allowed while the group has no classic members, as in Kafka).
pub fn check_commit(broker: &Broker, group: &str, member_id: &str, generation: i32) -> Result<(), WireError> {
    let checked = broker.groups.classic.existing(group, |g| {
        if member_id.is_empty() && generation < 0 {
            return match g.members.is_empty() {
                true => Ok(()),
                false => Err(WireError::new(
                    ErrorCode::UnknownMemberId,
                    format!("group {group} has members: commit as one of them (member id and generation)"),
                )),
            };
        }
        g.check_commit(member_id, generation)
    });
    match checked {
        Some(r) => r,
        None if member_id.is_empty() && generation < 0 => Ok(()),
        None => Err(unknown_member(group, member_id)),
    }
}

fn unknown_member(group: &str, member_id: &str) -> WireError {
    WireError::new(ErrorCode::UnknownMemberId, format!("member {member_id} is not in group {group}"))
}

fn not_coordinator(group: &str) -> WireError {
    WireError::new(ErrorCode::NotCoordinator, format!("this broker stopped coordinating group {group}: find it again"))
}
