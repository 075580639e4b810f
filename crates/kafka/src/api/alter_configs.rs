//! AlterConfigs (the legacy, whole-set form): a topic's overrides become exactly the configs
//! given (keys left out go back to their defaults), through the broker's `alter_configs`.
//! Brokers are configured by their files: altering one is refused.

use std::collections::BTreeMap;

use kafka_protocol::messages::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};
use vltava_broker::Broker;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

use super::describe_configs::TOPIC;
use super::{code, str_bytes};

/// Applies each resource's configs; one result per resource, in request order.
pub async fn handle(broker: &Broker, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let result = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let set: BTreeMap<String, String> =
            r.configs.iter().filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string()))).collect();
        let outcome = match r.resource_type {
            TOPIC => replace(broker, r.resource_name.as_str(), set, req.validate_only).await,
            other => Err(not_a_topic(other)),
        };
        responses.push(match outcome {
            Ok(()) => result,
            Err(e) => result.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

async fn replace(
    broker: &Broker,
    topic: &str,
    set: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), WireError> {
    let current = broker.metadata.image().topic(topic).map(|t| t.configs.clone()).unwrap_or_default();
    let delete = current.keys().filter(|k| !set.contains_key(*k)).cloned().collect();
    let asked =
        pb::AlterConfigsRequest { topic: topic.to_string(), set: set.into_iter().collect(), delete, validate_only };
    vltava_broker::admin::alter_configs(broker, asked).await.map(|_| ()).map_err(WireError::from)
}

/// The error for a resource that is not a topic.
pub fn not_a_topic(resource_type: i8) -> WireError {
    WireError::new(
        ErrorCode::InvalidRequest,
        format!(
            "resource type {resource_type} cannot be altered: only topics (2) have dynamic configs; brokers read theirs from their files"
        ),
    )
}
