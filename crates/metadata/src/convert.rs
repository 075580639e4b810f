//! Conversions between the metadata model and its protobuf form.

use std::sync::Arc;

use vltava_proto::v1 as pb;

use crate::model::{BrokerRegistration, PartitionState, TopicMetadata};
use crate::state::Delta;

/// A broker as sent to watchers.
pub fn broker_to_proto(b: &BrokerRegistration) -> pb::BrokerState {
    pb::BrokerState {
        id: b.id,
        address: b.address.clone(),
        rack: b.rack.clone().unwrap_or_default(),
        epoch: b.epoch,
        fenced: b.fenced,
        incarnation_id: b.incarnation.clone(),
        kafka_address: b.kafka_address.clone(),
    }
}

/// A broker as received by a watcher.
pub fn broker_from_proto(b: pb::BrokerState) -> BrokerRegistration {
    BrokerRegistration {
        id: b.id,
        address: b.address,
        rack: Some(b.rack).filter(|r| !r.is_empty()),
        kafka_address: b.kafka_address,
        incarnation: b.incarnation_id,
        epoch: b.epoch,
        fenced: b.fenced,
    }
}

/// A partition as sent to watchers.
pub fn partition_to_proto(p: &PartitionState) -> pb::PartitionState {
    pb::PartitionState {
        partition: p.partition,
        replicas: p.replicas.clone(),
        isr: p.isr.clone(),
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        adding_replicas: p.adding_replicas.clone(),
        removing_replicas: p.removing_replicas.clone(),
    }
}

/// A partition as received by a watcher.
pub fn partition_from_proto(p: pb::PartitionState) -> PartitionState {
    PartitionState {
        partition: p.partition,
        replicas: p.replicas,
        isr: p.isr,
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        adding_replicas: p.adding_replicas,
        removing_replicas: p.removing_replicas,
    }
}

/// A topic as sent to watchers.
pub fn topic_to_proto(t: &TopicMetadata) -> pb::TopicState {
    pb::TopicState {
        name: t.name.clone(),
        id: t.id.clone(),
        partitions: t.partitions.iter().map(partition_to_proto).collect(),
        configs: t.configs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

/// A topic as received by a watcher.
pub fn topic_from_proto(t: pb::TopicState) -> TopicMetadata {
    TopicMetadata {
        name: t.name,
        id: t.id,
        partitions: t.partitions.into_iter().map(partition_from_proto).collect(),
        configs: t.configs.into_iter().collect(),
    }
}

/// A delta as a metadata update.
pub fn delta_to_proto(d: &Delta, cluster_id: &str) -> pb::MetadataUpdate {
    pb::MetadataUpdate {
        version: d.version,
        full: false,
        cluster_id: cluster_id.to_string(),
        brokers: d.brokers.iter().map(broker_to_proto).collect(),
        topics: d.topics.iter().map(|t| topic_to_proto(t)).collect(),
        deleted_topics: d.deleted_topics.clone(),
    }
}

/// A metadata update as a delta.
pub fn delta_from_proto(u: pb::MetadataUpdate) -> Delta {
    Delta {
        version: u.version,
        brokers: u.brokers.into_iter().map(broker_from_proto).collect(),
        topics: u.topics.into_iter().map(|t| Arc::new(topic_from_proto(t))).collect(),
        deleted_topics: u.deleted_topics,
        next_producer_id: None,
    }
}
