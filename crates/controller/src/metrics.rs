//! The controller's metrics (see docs/observability.md for the Prometheus names).
//!
//! Leader elections are counted by the node that leads the quorum when it applies the change, so
//! summing the counter over every controller counts each election once. Raft term, commit and
//! applied index, leadership, live brokers and offline partitions are gauges read from the
//! running controller at collection time ([`crate::gauges::observe`]).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use opentelemetry::metrics::Counter;
use vltava_common::metrics::RpcMetricsLayer;

use vltava_metadata::command::Command;
use vltava_metadata::model::TopicMetadata;
use vltava_metadata::state::Delta;

/// Instrumentation scope, and prefix of every controller metric name.
pub const SCOPE: &str = "vltava.controller";

static LEADER_ELECTIONS: LazyLock<Counter<u64>> = LazyLock::new(|| {
    opentelemetry::global::meter(SCOPE)
        .u64_counter("vltava.controller.leader_elections")
        .with_unit("{election}")
        .with_description("Partition leader changes to a live leader, applied while this controller led the quorum")
        .build()
});

/// Whether applying `command` may move partition leaders (only then are leaders compared).
pub fn may_elect(command: &Command) -> bool {
    matches!(
        command,
        Command::RegisterBroker(_)
            | Command::FenceBroker { .. }
            | Command::ControlledShutdown { .. }
            | Command::AlterPartition(_)
            | Command::ReassignPartition { .. }
    )
}

/// Counts the leader elections in `delta` (see [`leader_elections`]).
pub fn count_leader_elections(before: &BTreeMap<String, Arc<TopicMetadata>>, delta: &Delta) {
    let elections = leader_elections(before, delta);
    if elections > 0 {
        LEADER_ELECTIONS.add(elections, &[]);
    }
}

/// The partitions whose leader `delta` changed to a new (live) leader, compared with the topics
/// as they were before it. New topics elect nothing.
pub fn leader_elections(before: &BTreeMap<String, Arc<TopicMetadata>>, delta: &Delta) -> u64 {
    let mut elections = 0u64;
    for topic in &delta.topics {
        let Some(old) = before.get(&topic.name).filter(|old| old.id == topic.id) else { continue };
        for (p, was) in topic.partitions.iter().zip(&old.partitions) {
            if p.leader != -1 && p.leader != was.leader {
                elections += 1;
            }
        }
    }
    elections
}

/// Request count and latency of every gRPC call the controller answers.
pub fn rpc_layer() -> RpcMetricsLayer {
    RpcMetricsLayer::global(SCOPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vltava_metadata::model::PartitionState;

    fn topic(id: &str, leaders: &[i32]) -> Arc<TopicMetadata> {
        let partitions = leaders
            .iter()
            .enumerate()
            .map(|(i, l)| PartitionState {
                partition: i as i32,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
                leader: *l,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: vec![],
                removing_replicas: vec![],
            })
            .collect();
        Arc::new(TopicMetadata { name: "t".into(), id: id.into(), partitions, configs: BTreeMap::new() })
    }

    #[test]
    fn only_moves_to_a_live_leader_of_an_existing_topic_are_elections() {
        let before = BTreeMap::from([("t".to_string(), topic("a", &[1, 2, 3, 1]))]);
        let delta = Delta { version: 9, topics: vec![topic("a", &[2, 2, -1, 3])], ..Delta::default() };
        assert_eq!(leader_elections(&before, &delta), 2, "0: 1→2 and 3: 1→3; 2 went offline");
        let recreated = Delta { version: 9, topics: vec![topic("b", &[2, 3, 1, 2])], ..Delta::default() };
        assert_eq!(leader_elections(&before, &recreated), 0, "a new topic elects nothing");
    }
}
