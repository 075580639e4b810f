//! The protobuf messages a broker or gateway decodes from the network: every request of the
//! record, group, transaction, admin, replication and gateway services, and what a follower
//! decodes from its leader (ReplicaFetchResponse) and a broker from the controller
//! (MetadataUpdate). A message that decodes must re-encode to bytes that decode to an equal
//! message; the record bytes it carries go through the checks a broker runs on produce.
//!
//! Input: one selector byte, then the message.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use vltava_proto::v1 as pb;

fn round_trip<M: Message + Default + PartialEq>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    // Compared as messages, not bytes: map fields encode in hash order. (No request has a
    // floating-point field, so NaN cannot make a message unequal to itself.)
    let again = M::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message decodes");
    assert!(message == again, "a message must survive a re-encode");
    Some(message)
}

/// What the broker does with produced bytes before they reach the log.
fn produced(records: &Bytes) {
    for batch in vltava_record::batches(records.clone()) {
        let Ok(batch) = batch else { break };
        if batch.validate().is_ok() {
            let _ = batch.records();
        }
    }
}

macro_rules! decoders {
    ($data:expr, $which:expr; $($ty:ty),+ $(,)?) => {{
        const DECODERS: &[fn(&[u8])] = &[$(|b| { let _ = round_trip::<$ty>(b); }),+];
        DECODERS[usize::from($which) % DECODERS.len()]($data)
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which {
        0 => {
            if let Some(request) = round_trip::<pb::ProduceRequest>(rest) {
                let _ = vltava_common::names::validate_topic_name(&request.topic);
                produced(&request.records);
            }
        }
        1 => {
            if let Some(response) = round_trip::<pb::ReplicaFetchResponse>(rest) {
                for partition in &response.partitions {
                    produced(&partition.records);
                }
            }
        }
        2 => {
            if let Some(request) = round_trip::<pb::CommitOffsetsRequest>(rest) {
                let _ = vltava_common::names::validate_group_id(&request.group_id);
            }
        }
        _ => decoders!(rest, which - 3;
            pb::FetchRequest, pb::SubscribeRequest, pb::ListOffsetsRequest,
            pb::ReplicaFetchRequest, pb::OffsetForLeaderEpochRequest, pb::MetadataUpdate,
            pb::FetchOffsetsRequest, pb::ListGroupsRequest, pb::FindCoordinatorRequest,
            pb::ConsumerGroupHeartbeatRequest, pb::DeleteGroupsRequest, pb::DescribeGroupsRequest,
            pb::AlterConsumerGroupOffsetsRequest,
            pb::InitProducerIdRequest, pb::FindTransactionCoordinatorRequest,
            pb::AddPartitionsToTxnRequest, pb::AddOffsetsToTxnRequest, pb::EndTxnRequest,
            pb::TxnOffsetCommitRequest, pb::WriteTxnMarkersRequest, pb::DescribeTransactionsRequest,
            pb::CreateTopicRequest, pb::DeleteTopicRequest, pb::ListTopicsRequest,
            pb::DescribeTopicRequest, pb::MetadataRequest, pb::CreatePartitionsRequest,
            pb::AlterConfigsRequest, pb::DescribeClusterRequest,
            pb::AlterPartitionReassignmentsRequest, pb::ListPartitionReassignmentsRequest,
            pb::PublishRequest, pb::ReadRequest, pb::ConsumeRequest,
            pb::RegisterBrokerRequest, pb::BrokerHeartbeatRequest, pb::AlterPartitionRequest,
        ),
    }
});
