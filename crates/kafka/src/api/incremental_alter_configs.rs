//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a topic's overrides, through
//! the broker's `alter_configs`. APPEND and SUBTRACT apply to list configs (`cleanup.policy`),
//! starting from the topic's current value (its override, else the default).

use std::collections::BTreeMap;

use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use vltava_broker::Broker;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

use super::alter_configs::not_a_topic;
use super::describe_configs::{TOPIC, topic_configs};
use super::{code, str_bytes};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Applies each resource's operations; one result per resource, in request order.
pub async fn handle(broker: &Broker, req: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let result = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let outcome = match r.resource_type {
            TOPIC => {
                let ops = r
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.config_operation, c.value.as_ref().map(|v| v.to_string())));
                alter(broker, r.resource_name.as_str(), ops.collect(), req.validate_only).await
            }
            other => Err(not_a_topic(other)),
        };
        responses.push(match outcome {
            Ok(()) => result,
            Err(e) => result.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    broker: &Broker,
    topic: &str,
    ops: Vec<(String, i8, Option<String>)>,
    validate_only: bool,
) -> Result<(), WireError> {
    let overrides = broker.metadata.image().topic(topic).map(|t| t.configs.clone()).unwrap_or_default();
    let mut set = BTreeMap::new();
    let mut delete = Vec::new();
    for (name, op, value) in ops {
        let invalid = |why: &str| WireError::new(ErrorCode::InvalidConfig, format!("{name}: {why}"));
        match op {
            SET => {
                set.insert(name.clone(), value.ok_or_else(|| invalid("SET needs a value"))?);
            }
            DELETE => delete.push(name),
            APPEND | SUBTRACT => {
                let current = topic_configs(broker, &overrides, Some(std::slice::from_ref(&name)));
                let current = current.first().ok_or_else(|| invalid("not a topic config"))?;
                let mut items: Vec<String> =
                    current.value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
                for v in value.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match op {
                        APPEND if !items.iter().any(|i| i == v) => items.push(v.to_string()),
                        SUBTRACT => items.retain(|i| i != v),
                        _ => {}
                    }
                }
                set.insert(name, items.join(","));
            }
            other => {
                return Err(invalid(&format!("unknown operation {other} (0 set, 1 delete, 2 append, 3 subtract)")));
            }
        }
    }
    let asked =
        pb::AlterConfigsRequest { topic: topic.to_string(), set: set.into_iter().collect(), delete, validate_only };
    vltava_broker::admin::alter_configs(broker, asked).await.map(|_| ()).map_err(WireError::from)
}
