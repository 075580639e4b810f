//! DescribeConfigs: a topic's configs (its overrides, `DYNAMIC_TOPIC_CONFIG`, over the broker's
//! log defaults, `DEFAULT_CONFIG`, every key Vltava understands) and a broker's settings (read
//! only, `STATIC_BROKER_CONFIG`).

use std::collections::BTreeMap;

use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use vltava_broker::Broker;
use vltava_broker::log_config::defaults_by_name;
use vltava_common::ErrorCode;

use super::str_bytes;

/// Kafka's resource type of topics.
pub const TOPIC: i8 = 2;
/// Kafka's resource type of brokers.
pub const BROKER: i8 = 4;

/// Kafka's config sources.
pub mod source {
    /// A topic override.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// A broker's configuration file.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Nobody set it.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// One config as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Where it comes from ([`source`]).
    pub source: i8,
}

/// Every topic key with the value a topic with `overrides` has, restricted to `keys` when given.
pub fn topic_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
    keys: Option<&[String]>,
) -> Vec<ConfigEntry> {
    defaults_by_name(&broker.config.log, broker.config.min_insync_replicas)
        .into_iter()
        .filter(|(name, _)| keys.is_none_or(|k| k.iter().any(|k| k == name)))
        .map(|(name, default)| match overrides.get(name) {
            Some(v) => ConfigEntry { name: name.to_string(), value: v.clone(), source: source::DYNAMIC_TOPIC_CONFIG },
            None => ConfigEntry { name: name.to_string(), value: default, source: source::DEFAULT_CONFIG },
        })
        .collect()
}

/// The broker settings a Kafka operator looks for, by Kafka's names.
fn broker_configs(broker: &Broker) -> Vec<ConfigEntry> {
    let c = &broker.config;
    let mut out: Vec<(String, String)> = vec![
        ("broker.id".into(), c.broker_id.to_string()),
        ("node.id".into(), c.broker_id.to_string()),
        ("num.partitions".into(), c.num_partitions.to_string()),
        ("default.replication.factor".into(), c.default_replication_factor.to_string()),
        ("auto.create.topics.enable".into(), c.auto_create_topics_enable.to_string()),
        ("socket.request.max.bytes".into(), c.max_request_bytes.to_string()),
        ("broker.rack".into(), c.rack.clone().unwrap_or_default()),
    ];
    for (name, value) in defaults_by_name(&c.log, c.min_insync_replicas) {
        let broker_name = match name {
            "min.insync.replicas" | "compression.type" | "unclean.leader.election.enable" => name.to_string(),
            "max.message.bytes" => "message.max.bytes".to_string(),
            "retention.ms" | "retention.bytes" | "segment.bytes" | "cleanup.policy" | "segment.ms" => {
                format!("log.{}", name.replace("segment.ms", "roll.ms"))
            }
            other => format!("log.{other}"),
        };
        out.push((broker_name, value));
    }
    out.sort();
    out.into_iter().map(|(name, value)| ConfigEntry { name, value, source: source::STATIC_BROKER_CONFIG }).collect()
}

/// Describes each requested resource.
pub fn handle(broker: &Broker, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let keys: Option<Vec<String>> =
                r.configuration_keys.as_ref().map(|k| k.iter().map(|k| k.to_string()).collect());
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let (entries, read_only) = match r.resource_type {
                TOPIC => match broker.metadata.image().topic(r.resource_name.as_str()) {
                    Some(t) => (topic_configs(broker, &t.configs, keys.as_deref()), false),
                    None => {
                        return result.with_error_code(ErrorCode::UnknownTopicOrPartition as i16).with_error_message(
                            Some(str_bytes(format!("topic {:?} does not exist", r.resource_name.as_str()))),
                        );
                    }
                },
                BROKER => {
                    let all = broker_configs(broker);
                    (all.into_iter().filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name))).collect(), true)
                }
                other => {
                    return result.with_error_code(ErrorCode::InvalidRequest as i16).with_error_message(Some(
                        str_bytes(format!("resource type {other} is not described (2 topic, 4 broker)")),
                    ));
                }
            };
            let configs = entries
                .into_iter()
                .map(|e| {
                    DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(e.name))
                        .with_value(Some(str_bytes(e.value)))
                        .with_read_only(read_only)
                        .with_config_source(e.source)
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
