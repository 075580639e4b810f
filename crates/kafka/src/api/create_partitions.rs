//! CreatePartitions: grows each topic to its new count through the broker's
//! `create_partitions` (placement by the controller; manual assignments are refused).

use kafka_protocol::messages::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use vltava_broker::Broker;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

use super::{code, str_bytes};

/// Grows each requested topic; one result per topic, in request order.
pub async fn handle(broker: &Broker, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let outcome = if t.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            Err(WireError::new(
                ErrorCode::InvalidReplicaAssignment,
                "manual replica assignments are not supported: the controller places new partitions",
            ))
        } else {
            let asked = pb::CreatePartitionsRequest {
                topic: t.name.to_string(),
                total_count: t.count,
                validate_only: req.validate_only,
            };
            vltava_broker::admin::create_partitions(broker, asked).await.map(|_| ()).map_err(WireError::from)
        };
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
