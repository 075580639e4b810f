//! Kafka protocol requests as the Kafka listener reads them: the frame's request header, then
//! the body decoded at the requested version for every API the listener serves, then what the
//! adapters decode inside bodies (produced record batches, the consumer protocol's
//! subscriptions and assignments in JoinGroup and SyncGroup).
//!
//! Input: the frame after its size prefix (the listener bounds the size before reading).
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::*;
use libfuzzer_sys::fuzz_target;
use vltava_broker::groups::consumer_protocol::{assigned_partitions, subscribed_topics};
use vltava_kafka::frame::{Request, parse};

fn produced(records: &Option<Bytes>) {
    let Some(records) = records else { return };
    for batch in vltava_record::batches(records.clone()) {
        let Ok(batch) = batch else { break };
        if batch.validate().is_ok() {
            let _ = batch.records();
        }
    }
}

fn body(req: &Request) {
    match req.api.api {
        ApiKey::Produce => {
            if let Ok(r) = req.decode::<ProduceRequest>() {
                for topic in &r.topic_data {
                    for partition in &topic.partition_data {
                        produced(&partition.records);
                    }
                }
            }
        }
        ApiKey::JoinGroup => {
            if let Ok(r) = req.decode::<JoinGroupRequest>() {
                for protocol in &r.protocols {
                    let _ = subscribed_topics(&protocol.metadata);
                }
            }
        }
        ApiKey::SyncGroup => {
            if let Ok(r) = req.decode::<SyncGroupRequest>() {
                for assignment in &r.assignments {
                    let _ = assigned_partitions(&assignment.assignment);
                }
            }
        }
        ApiKey::Fetch => drop(req.decode::<FetchRequest>()),
        ApiKey::ListOffsets => drop(req.decode::<ListOffsetsRequest>()),
        ApiKey::Metadata => drop(req.decode::<MetadataRequest>()),
        ApiKey::OffsetCommit => drop(req.decode::<OffsetCommitRequest>()),
        ApiKey::OffsetFetch => drop(req.decode::<OffsetFetchRequest>()),
        ApiKey::FindCoordinator => drop(req.decode::<FindCoordinatorRequest>()),
        ApiKey::Heartbeat => drop(req.decode::<HeartbeatRequest>()),
        ApiKey::LeaveGroup => drop(req.decode::<LeaveGroupRequest>()),
        ApiKey::DescribeGroups => drop(req.decode::<DescribeGroupsRequest>()),
        ApiKey::ListGroups => drop(req.decode::<ListGroupsRequest>()),
        ApiKey::ApiVersions => drop(req.decode::<ApiVersionsRequest>()),
        ApiKey::CreateTopics => drop(req.decode::<CreateTopicsRequest>()),
        ApiKey::DeleteTopics => drop(req.decode::<DeleteTopicsRequest>()),
        ApiKey::InitProducerId => drop(req.decode::<InitProducerIdRequest>()),
        ApiKey::OffsetForLeaderEpoch => drop(req.decode::<OffsetForLeaderEpochRequest>()),
        ApiKey::AddPartitionsToTxn => drop(req.decode::<AddPartitionsToTxnRequest>()),
        ApiKey::AddOffsetsToTxn => drop(req.decode::<AddOffsetsToTxnRequest>()),
        ApiKey::EndTxn => drop(req.decode::<EndTxnRequest>()),
        ApiKey::TxnOffsetCommit => drop(req.decode::<TxnOffsetCommitRequest>()),
        ApiKey::DescribeConfigs => drop(req.decode::<DescribeConfigsRequest>()),
        ApiKey::AlterConfigs => drop(req.decode::<AlterConfigsRequest>()),
        ApiKey::CreatePartitions => drop(req.decode::<CreatePartitionsRequest>()),
        ApiKey::DeleteGroups => drop(req.decode::<DeleteGroupsRequest>()),
        ApiKey::IncrementalAlterConfigs => drop(req.decode::<IncrementalAlterConfigsRequest>()),
        ApiKey::OffsetDelete => drop(req.decode::<OffsetDeleteRequest>()),
        ApiKey::DescribeCluster => drop(req.decode::<DescribeClusterRequest>()),
        ApiKey::ConsumerGroupHeartbeat => drop(req.decode::<ConsumerGroupHeartbeatRequest>()),
        other => panic!("frame::parse let an unserved API through: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse(Bytes::copy_from_slice(data)) {
        assert!(
            (req.api.min..=req.api.max).contains(&req.version) || req.api.api == ApiKey::ApiVersions,
            "frame::parse let an unserved version through"
        );
        body(&req);
    }
});
