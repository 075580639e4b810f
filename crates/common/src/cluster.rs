//! [`ClusterView`]: a cluster as its clients route by it (brokers, topics and the leader of each
//! partition), built from an `AdminService.Metadata` answer.
//!
//! One type for the two metadata caches: the Rust SDK's (`vltava-client`, merged topic by topic as
//! its producers and consumers ask) and the gateway's (whole snapshots, refreshed or pushed by the
//! controllers). Connections stay with their owners: this holds addresses, not channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use vltava_proto::v1::{ErrorCode, MetadataResponse};

/// One topic's partitions and their leaders, as last learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// The leader's broker id of each partition, by partition number (-1: no leader).
    pub leaders: Vec<i32>,
    /// When this was learned.
    pub fetched: Instant,
}

impl TopicLayout {
    /// The layout of a topic whose partitions are given as `(partition, leader)` pairs. Partitions
    /// are numbered `0..n` for the `n` given; one numbered outside that range is ignored, and a
    /// number that is missing has no leader.
    pub fn new(partitions: impl IntoIterator<Item = (i32, i32)>, fetched: Instant) -> Self {
        let given: Vec<(i32, i32)> = partitions.into_iter().collect();
        let mut leaders = vec![-1; given.len()];
        for (partition, leader) in given {
            if let Some(slot) = usize::try_from(partition).ok().and_then(|i| leaders.get_mut(i)) {
                *slot = leader;
            }
        }
        Self { leaders, fetched }
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.leaders.len()).unwrap_or(i32::MAX)
    }

    /// The leader's broker id of `partition`, when the topic has that partition and it has a
    /// leader.
    pub fn leader(&self, partition: i32) -> Option<i32> {
        let leader = *self.leaders.get(usize::try_from(partition).ok()?)?;
        (leader >= 0).then_some(leader)
    }
}

/// Brokers and topics of one cluster, as last learned.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Broker id → the address clients connect to.
    pub brokers: HashMap<i32, String>,
    /// Topic name → its partitions' leaders.
    pub topics: HashMap<String, Arc<TopicLayout>>,
}

impl ClusterView {
    /// The view a `Metadata` answer describes (every topic stamped as learned now).
    pub fn from_metadata(response: MetadataResponse) -> Self {
        let now = Instant::now();
        let brokers = response.brokers.into_iter().map(|b| (b.id, b.address)).collect();
        let topics = response
            .topics
            .into_iter()
            .map(|t| {
                let layout = TopicLayout::new(t.partitions.iter().map(|p| (p.partition, p.leader)), now);
                (t.name, Arc::new(layout))
            })
            .collect();
        Self { brokers, topics }
    }

    /// Takes in a newer (possibly partial) view: its brokers are added or readdressed, its topics
    /// replace what was known of them; brokers and topics it does not mention are kept.
    pub fn merge(&mut self, newer: ClusterView) {
        self.brokers.extend(newer.brokers);
        self.topics.extend(newer.topics);
    }

    /// The layout of `topic`, if known.
    pub fn topic(&self, topic: &str) -> Option<&Arc<TopicLayout>> {
        self.topics.get(topic)
    }

    /// Number of partitions of `topic` (0 when the topic is unknown).
    pub fn partition_count(&self, topic: &str) -> i32 {
        self.topics.get(topic).map_or(0, |t| t.partition_count())
    }

    /// Number of partitions of all known topics.
    pub fn partitions(&self) -> usize {
        self.topics.values().map(|t| t.leaders.len()).sum()
    }

    /// Whether the partition exists in this view.
    pub fn has_partition(&self, topic: &str, partition: i32) -> bool {
        (0..self.partition_count(topic)).contains(&partition)
    }

    /// The leader's broker id of a partition, when the partition and its leader are known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topics.get(topic)?.leader(partition)
    }

    /// Address of the leader of a partition, when the partition, its leader and the leader's
    /// address are known.
    pub fn leader_address(&self, topic: &str, partition: i32) -> Option<&str> {
        self.brokers.get(&self.leader(topic, partition)?).map(String::as_str)
    }

    /// Why a partition cannot be routed: `LEADER_NOT_AVAILABLE` for a known partition without a
    /// reachable leader, else `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn unroutable_code(&self, topic: &str, partition: i32) -> ErrorCode {
        if self.has_partition(topic, partition) {
            ErrorCode::LeaderNotAvailable
        } else {
            ErrorCode::UnknownTopicOrPartition
        }
    }
}

#[cfg(test)]
mod tests {
    use vltava_proto::v1::{BrokerInfo, PartitionDescription, TopicDescription};

    use super::*;

    fn topic(name: &str, leaders: &[i32]) -> TopicDescription {
        let partitions = leaders
            .iter()
            .enumerate()
            .map(|(p, &leader)| PartitionDescription { partition: p as i32, leader, ..Default::default() })
            .collect();
        TopicDescription { name: name.into(), partitions, ..Default::default() }
    }

    fn broker(id: i32, address: &str) -> BrokerInfo {
        BrokerInfo { id, address: address.into(), ..Default::default() }
    }

    #[test]
    fn a_metadata_answer_routes_partitions_to_their_leaders_addresses() {
        let view = ClusterView::from_metadata(MetadataResponse {
            brokers: vec![broker(1, "a:1"), broker(2, "b:2")],
            topics: vec![topic("t", &[1, 2, -1]), topic("u", &[3])],
            cluster_id: "c".into(),
        });
        assert_eq!((view.partition_count("t"), view.partition_count("nope"), view.partitions()), (3, 0, 4));
        assert_eq!(view.leader_address("t", 0), Some("a:1"));
        assert_eq!(view.leader_address("t", 1), Some("b:2"));
        assert_eq!((view.leader("t", 2), view.leader_address("t", 2)), (None, None), "no leader");
        assert_eq!((view.leader("u", 0), view.leader_address("u", 0)), (Some(3), None), "leader's address unknown");
        assert_eq!(view.unroutable_code("t", 2), ErrorCode::LeaderNotAvailable);
        assert_eq!(view.unroutable_code("t", 3), ErrorCode::UnknownTopicOrPartition);
        assert_eq!(view.unroutable_code("nope", 0), ErrorCode::UnknownTopicOrPartition);
        assert!(view.has_partition("t", 2) && !view.has_partition("t", -1));
    }

    #[test]
    fn partitions_are_placed_by_number_and_stray_numbers_are_ignored() {
        let layout = TopicLayout::new([(1, 7), (0, 6), (5, 9)], Instant::now());
        assert_eq!(layout.leaders, vec![6, 7, -1]);
        assert_eq!((layout.leader(1), layout.leader(2), layout.leader(-1)), (Some(7), None, None));
    }

    #[test]
    fn merging_readdresses_brokers_replaces_topics_and_keeps_the_rest() {
        let mut view = ClusterView::from_metadata(MetadataResponse {
            brokers: vec![broker(1, "a:1"), broker(2, "b:2")],
            topics: vec![topic("t", &[1]), topic("u", &[2])],
            cluster_id: String::new(),
        });
        view.merge(ClusterView::from_metadata(MetadataResponse {
            brokers: vec![broker(2, "b:3")],
            topics: vec![topic("t", &[2, 2])],
            cluster_id: String::new(),
        }));
        assert_eq!(view.brokers.get(&1).map(String::as_str), Some("a:1"));
        assert_eq!(view.leader_address("t", 1), Some("b:3"));
        assert_eq!((view.partition_count("t"), view.partition_count("u")), (2, 1));
    }
}
