//! GroupService.ConsumerGroupHeartbeat: the wire form of a heartbeat, decided by the group's
//! coordinator shard on this broker (see `heartbeat` for the decisions).

use vltava_common::names::validate_group_id;
use vltava_proto::v1::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, PartitionSet, TopicPartitions as WireTopic,
};

use super::assignor::TopicPartitions;
use super::heartbeat::HeartbeatRequest;
use crate::broker::Broker;
use crate::error::BrokerError;

/// How much sooner a member that has not reached its target heartbeats.
const CONVERGING_SPEEDUP: u32 = 5;
/// The shortest interval a converging member is given.
const MIN_CONVERGING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Decides the heartbeat on this broker, which must coordinate the group; `client_host` is the
/// caller's address (for `DescribeGroups`).
///
/// # Errors
///
/// `INVALID_GROUP_ID`, `NOT_COORDINATOR`, `COORDINATOR_LOAD_IN_PROGRESS`, the group's refusal
/// (`UNKNOWN_MEMBER_ID`, `FENCED_MEMBER_EPOCH`, ...), or a write failure.
pub async fn handle(
    broker: &Broker,
    req: ConsumerGroupHeartbeatRequest,
    client_host: String,
) -> Result<ConsumerGroupHeartbeatResponse, BrokerError> {
    validate_group_id(&req.group_id)?;
    let request = HeartbeatRequest {
        member_id: req.member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id,
        rack: req.rack,
        rebalance_timeout_ms: (req.rebalance_timeout_ms != 0).then_some(req.rebalance_timeout_ms),
        subscribed_topics: req.subscription.as_ref().map(|s| s.topics.clone()),
        subscribed_regex: req.subscription.map(|s| s.pattern),
        server_assignor: (!req.server_assignor.is_empty()).then_some(req.server_assignor),
        owned: req.owned.map(from_wire),
        client_id: req.client_id,
        client_host,
    };
    let image = broker.replicas.image();
    let decision = broker.groups.heartbeat(&image, &req.group_id, request).await?;
    // A member still converging on its target heartbeats five times as often, so a rebalance
    // takes a few short intervals rather than a few full ones.
    let mut interval = broker.groups.config().heartbeat_interval;
    if decision.converging {
        interval = (interval / CONVERGING_SPEEDUP).max(MIN_CONVERGING_INTERVAL).min(interval);
    }
    Ok(ConsumerGroupHeartbeatResponse {
        member_id: decision.member_id,
        member_epoch: decision.member_epoch,
        heartbeat_interval_ms: interval.as_millis().min(i32::MAX as u128) as i32,
        assignment: decision.assignment.map(to_wire),
    })
}

/// Partitions from their wire form.
pub fn from_wire(set: PartitionSet) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for t in set.topics {
        out.entry(t.topic).or_default().extend(t.partitions);
    }
    out.retain(|_, ps| !ps.is_empty());
    out
}

/// Partitions in their wire form.
pub fn to_wire(parts: TopicPartitions) -> PartitionSet {
    PartitionSet {
        topics: parts
            .into_iter()
            .map(|(topic, ps)| WireTopic { topic, partitions: ps.into_iter().collect() })
            .collect(),
    }
}
