//! AddPartitionsToTxn (versions 0 to 3, the client's form): partitions join the producer's
//! transaction before it writes to them, through the broker's transaction coordinator.

use std::collections::BTreeMap;

use kafka_protocol::messages::AddPartitionsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};
use vltava_broker::Broker;
use vltava_common::WireError;
use vltava_proto::v1 as pb;

use super::{code, topic_name};

/// Adds the request's partitions to its transaction.
pub async fn handle(broker: &Broker, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let topics: Vec<pb::TxnTopic> = req
        .v3_and_below_topics
        .iter()
        .map(|t| pb::TxnTopic { topic: t.name.to_string(), partitions: t.partitions.clone() })
        .collect();
    let asked = pb::AddPartitionsToTxnRequest {
        transactional_id: req.v3_and_below_transactional_id.to_string(),
        producer_id: req.v3_and_below_producer_id.0,
        producer_epoch: i32::from(req.v3_and_below_producer_epoch),
        topics: topics.clone(),
    };
    let mut by_topic: BTreeMap<String, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    match vltava_broker::transactions::add_partitions::handle(broker, asked).await.map_err(WireError::from) {
        Ok(r) => {
            for p in r.results {
                by_topic.entry(p.topic).or_default().push(
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p.partition)
                        .with_partition_error_code(p.error_code as i16),
                );
            }
        }
        Err(e) => {
            for t in &topics {
                for p in &t.partitions {
                    by_topic.entry(t.topic.clone()).or_default().push(
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*p)
                            .with_partition_error_code(code(&e)),
                    );
                }
            }
        }
    }
    let results = by_topic
        .into_iter()
        .map(|(t, ps)| AddPartitionsToTxnTopicResult::default().with_name(topic_name(&t)).with_results_by_partition(ps))
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}
