//! CreateTopics: each topic through the broker's `create_topic` (name, partition count and
//! replication factor checks, config validation, placement by the controller). -1 partitions or
//! replication factor take the broker's defaults, as in Kafka. Manual replica assignments are
//! refused (`INVALID_REPLICA_ASSIGNMENT`): placement is the controller's.

use kafka_protocol::messages::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use vltava_broker::Broker;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

use super::describe_configs::topic_configs;
use super::{code, str_bytes, topic_uuid};

/// Creates each requested topic; one result per topic, in request order.
pub async fn handle(broker: &Broker, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let result = CreatableTopicResult::default().with_name(t.name.clone());
        if !t.assignments.is_empty() {
            let e = WireError::new(
                ErrorCode::InvalidReplicaAssignment,
                "manual replica assignments are not supported: give a replication factor",
            );
            results.push(failed(result, &e));
            continue;
        }
        let partitions = if t.num_partitions < 0 { broker.config.num_partitions } else { t.num_partitions };
        let configs = t.configs.iter().filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())));
        let asked = pb::CreateTopicRequest {
            name: t.name.to_string(),
            partitions,
            replication_factor: i32::from(t.replication_factor.max(0)),
            configs: configs.collect(),
            validate_only: req.validate_only,
        };
        let created = vltava_broker::admin::create_topic(broker, asked).await.map_err(WireError::from);
        results.push(match created {
            Ok(r) => {
                let topic = r.topic.unwrap_or_default();
                let rf = topic.partitions.first().map_or(0, |p| p.replicas.len()) as i16;
                let configs = (version >= 5).then(|| {
                    topic_configs(broker, &topic.configs.clone().into_iter().collect(), None)
                        .into_iter()
                        .map(|c| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(c.name))
                                .with_value(Some(str_bytes(c.value)))
                                .with_config_source(c.source)
                        })
                        .collect()
                });
                result
                    .with_topic_id(topic_uuid(&topic.topic_id))
                    .with_num_partitions(topic.partitions.len() as i32)
                    .with_replication_factor(if req.validate_only { t.replication_factor } else { rf })
                    .with_configs(configs)
            }
            Err(e) => failed(result, &e),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn failed(result: CreatableTopicResult, e: &WireError) -> CreatableTopicResult {
    result
        .with_error_code(code(e))
        .with_error_message(Some(str_bytes(e.message.clone())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
}
