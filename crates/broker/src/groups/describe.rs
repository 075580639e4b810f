//! GroupService.DescribeGroups: a group's state, members and, per partition, committed offset,
//! log end offset and lag, answered by the group's coordinator.
//!
//! A classic group (Kafka clients' JoinGroup protocol) is described from the classic
//! coordinator: its state and generation, and the members' subscriptions and assignments read
//! from the consumer protocol's bytes.
//!
//! Log end offsets come from `partition_offsets` (local, or asked of the leaders); a leader
//! that cannot be reached leaves its partitions' log end offset and lag at -1.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use vltava_common::names::validate_group_id;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupDescription, MemberDescription, PartitionLag, Subscription,
};

use super::classic_groups::ClassicSummary;
use super::consumer_group::{ConsumerGroup, GroupState};
use super::consumer_protocol::{assigned_partitions, subscribed_topics};
use super::heartbeat_rpc::to_wire;
use super::partition_offsets::{self, LATEST};
use super::shard_state::GroupOffsets;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Describes each requested group; a group this broker does not coordinate (or that does not
/// exist) gets its error code in its description.
///
/// # Errors
///
/// None of its own: per-group failures are reported in the response.
pub async fn handle(broker: &Broker, req: DescribeGroupsRequest) -> Result<DescribeGroupsResponse, BrokerError> {
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for group in req.group_ids {
        let described = describe(broker, &group).await;
        groups.push(described.unwrap_or_else(|e| {
            let e = WireError::from(e);
            GroupDescription {
                group_id: group,
                error_code: e.code as i32,
                error_message: e.message,
                ..Default::default()
            }
        }));
    }
    Ok(DescribeGroupsResponse { groups })
}

async fn describe(broker: &Broker, group: &str) -> Result<GroupDescription, BrokerError> {
    validate_group_id(group)?;
    let image = broker.replicas.image();
    let found = broker.groups.describe(&image, group).await?;
    let classic = broker.groups.classic.describe(group);
    if found.is_none() && classic.is_none() {
        return Err(BrokerError::Refused(WireError::new(
            ErrorCode::GroupIdNotFound,
            format!("group {group} has neither members nor committed offsets"),
        )));
    }
    let (g, offsets) = found.unwrap_or_else(|| (ConsumerGroup::new(group), GroupOffsets::default()));
    let owners = match &classic {
        Some(c) => classic_owners(c),
        None => owners(&g),
    };
    let mut keys: BTreeSet<(String, i32)> = offsets.keys().cloned().collect();
    keys.extend(owners.keys().cloned());
    let ends = partition_offsets::offsets_at(broker.config.broker_id, &broker.replicas, &image, &keys, LATEST).await;
    Ok(GroupDescription {
        group_id: group.to_string(),
        error_code: ErrorCode::None as i32,
        error_message: String::new(),
        state: classic.as_ref().map_or(state_name(g.state()), |c| c.state.name()).to_string(),
        group_epoch: classic.as_ref().map_or(g.epoch, |c| c.generation),
        assignment_epoch: classic.as_ref().map_or(g.target_epoch, |c| c.generation),
        coordinator_id: broker.config.broker_id,
        members: classic.as_ref().map_or_else(|| members(&g), classic_members),
        partitions: partitions(keys, &offsets, &owners, &ends),
    })
}

/// Kafka's name of the state (as `kafka-consumer-groups --describe --state` prints it).
pub fn state_name(state: GroupState) -> &'static str {
    match state {
        GroupState::Empty => "Empty",
        GroupState::Assigning => "Assigning",
        GroupState::Reconciling => "Reconciling",
        GroupState::Stable => "Stable",
    }
}

fn members(g: &ConsumerGroup) -> Vec<MemberDescription> {
    g.members
        .values()
        .map(|m| MemberDescription {
            member_id: m.id.clone(),
            instance_id: m.meta.instance_id.clone(),
            client_id: m.meta.client_id.clone(),
            client_host: m.meta.client_host.clone(),
            rack: m.meta.rack.clone(),
            member_epoch: m.epoch,
            subscription: Some(Subscription {
                topics: m.meta.subscribed_topics.clone(),
                pattern: m.meta.subscribed_regex.clone().unwrap_or_default(),
            }),
            assignment: Some(to_wire(m.assigned.clone())),
            target: Some(to_wire(g.target.get(&m.id).cloned().unwrap_or_default())),
            server_assignor: m.meta.server_assignor.clone().unwrap_or_default(),
        })
        .collect()
}

/// A classic group's members, their subscriptions and assignments read from the consumer
/// protocol's bytes (the generation stands for the member epoch).
fn classic_members(c: &ClassicSummary) -> Vec<MemberDescription> {
    c.members
        .iter()
        .map(|m| {
            let assigned = to_wire(assigned_partitions(&m.assignment));
            MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rack: None,
                member_epoch: c.generation,
                subscription: Some(Subscription { topics: subscribed_topics(&m.metadata), pattern: String::new() }),
                assignment: Some(assigned.clone()),
                target: Some(assigned),
                server_assignor: c.protocol.clone(),
            }
        })
        .collect()
}

/// The owner of every partition a classic group's assignment gives a member.
fn classic_owners(c: &ClassicSummary) -> BTreeMap<(String, i32), String> {
    let mut owners = BTreeMap::new();
    for m in &c.members {
        for (topic, ps) in assigned_partitions(&m.assignment) {
            for p in ps {
                owners.insert((topic.clone(), p), m.id.clone());
            }
        }
    }
    owners
}

/// The owner of every partition a member owns (or is still revoking).
fn owners(g: &ConsumerGroup) -> BTreeMap<(String, i32), String> {
    let mut owners = BTreeMap::new();
    for m in g.members.values() {
        for parts in [&m.assigned, &m.pending_revocation] {
            for (topic, ps) in parts {
                for p in ps {
                    owners.insert((topic.clone(), *p), m.id.clone());
                }
            }
        }
    }
    owners
}

fn partitions(
    keys: BTreeSet<(String, i32)>,
    offsets: &GroupOffsets,
    owners: &BTreeMap<(String, i32), String>,
    ends: &HashMap<(String, i32), i64>,
) -> Vec<PartitionLag> {
    keys.into_iter()
        .map(|key| {
            let committed = offsets.get(&key);
            let committed_offset = committed.map_or(-1, |o| o.offset);
            let log_end_offset = ends.get(&key).copied().unwrap_or(-1);
            let lag = if committed_offset >= 0 && log_end_offset >= 0 {
                (log_end_offset - committed_offset).max(0)
            } else {
                -1
            };
            PartitionLag {
                member_id: owners.get(&key).cloned().unwrap_or_default(),
                metadata: committed.map(|o| o.metadata.clone()).unwrap_or_default(),
                topic: key.0,
                partition: key.1,
                committed_offset,
                log_end_offset,
                lag,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::records::OffsetValue;

    #[test]
    fn lag_is_end_minus_committed_and_unknown_when_either_is_missing() {
        let mut offsets = GroupOffsets::new();
        let committed = |offset| OffsetValue { offset, leader_epoch: -1, metadata: "m".into(), commit_timestamp: 0 };
        offsets.insert(("t".into(), 0), committed(5));
        offsets.insert(("t".into(), 1), committed(9));
        let mut owners = BTreeMap::new();
        owners.insert(("t".to_string(), 2), "member-a".to_string());
        let ends: HashMap<(String, i32), i64> = [(("t".to_string(), 0), 12), (("t".to_string(), 2), 3)].into();
        let keys: BTreeSet<(String, i32)> = [("t".to_string(), 0), ("t".to_string(), 1), ("t".to_string(), 2)].into();
        let rows = partitions(keys, &offsets, &owners, &ends);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].committed_offset, rows[0].log_end_offset, rows[0].lag), (5, 12, 7));
        assert_eq!(rows[0].metadata, "m");
        assert_eq!((rows[1].committed_offset, rows[1].log_end_offset, rows[1].lag), (9, -1, -1));
        assert_eq!((rows[2].committed_offset, rows[2].lag, rows[2].member_id.as_str()), (-1, -1, "member-a"));
    }
}
