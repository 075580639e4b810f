//! Topic auto-creation (`auto.create.topics.enable`): a produce or a metadata request naming a
//! topic that does not exist creates it with the broker's defaults, as Kafka does.

use vltava_common::{ErrorCode, WireError};
use vltava_metadata::{CreateTopic, MetadataError};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Creates `topic` with the broker's defaults (`num.partitions`, `default.replication.factor`)
/// when auto-creation is on and the topic is unknown, then waits until this broker has applied it.
/// A topic that exists (or that another request created meanwhile) is fine. Returns whether the
/// topic was created by this call.
pub async fn ensure_topic(broker: &Broker, topic: &str) -> Result<bool, BrokerError> {
    if !broker.config.auto_create_topics_enable || broker.metadata.image().topic(topic).is_some() {
        return Ok(false);
    }
    let request = CreateTopic {
        name: topic.to_string(),
        partitions: broker.config.num_partitions,
        replication_factor: broker.config.default_replication_factor,
        configs: Default::default(),
        validate_only: false,
    };
    let created = create_unless_exists(broker, request).await?;
    if created {
        tracing::info!(topic, "topic auto-created");
    }
    Ok(created)
}

/// Creates a topic and waits until this broker has applied it; a topic that exists already (or
/// that another request created meanwhile) is fine. Returns whether this call created it.
pub async fn create_unless_exists(broker: &Broker, request: CreateTopic) -> Result<bool, BrokerError> {
    match broker.metadata.create_topic(request).await {
        Ok((_, version)) => {
            broker.applied(version).await;
            Ok(true)
        }
        Err(e) => {
            let wire = WireError::from(BrokerError::from(e));
            if wire.code == ErrorCode::TopicAlreadyExists {
                Ok(false)
            } else {
                Err(BrokerError::Metadata(MetadataError::Remote(wire)))
            }
        }
    }
}

/// Creates an internal topic (`__consumer_offsets`, `__transaction_state`) unless it exists:
/// `partitions` partitions, `replication_factor` replicas capped at the live broker count (raise
/// it later by reassignment), `cleanup.policy=compact` (so retention never deletes it). Waits
/// until this broker has applied it.
///
/// # Errors
///
/// The metadata service refused the creation for another reason than a concurrent one.
pub async fn ensure_internal_topic(
    broker: &Broker,
    name: &str,
    partitions: i32,
    replication_factor: i32,
) -> Result<(), BrokerError> {
    let image = broker.replicas.image();
    if image.topic(name).is_some() {
        return Ok(());
    }
    let live = image.brokers.values().filter(|b| !b.fenced).count().max(1) as i32;
    let request = CreateTopic {
        name: name.into(),
        partitions,
        replication_factor: replication_factor.min(live),
        configs: std::collections::BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        validate_only: false,
    };
    if create_unless_exists(broker, request).await? {
        tracing::info!(topic = name, partitions, "created an internal topic");
    }
    Ok(())
}
