//! DeleteTopics: each topic, by name (or by id from version 6), through the broker's
//! `delete_topic` (which also forgets the offsets groups committed for it).

use kafka_protocol::messages::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use uuid::Uuid;
use vltava_broker::Broker;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

use super::codes::UNKNOWN_TOPIC_ID;
use super::{code, str_bytes, topic_by_id, topic_name, topic_uuid};

/// Deletes each requested topic; one result per topic, in request order.
pub async fn handle(broker: &Broker, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let asked: Vec<(Option<String>, Uuid)> = match version {
        v if v >= 6 => req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id)).collect(),
        _ => req.topic_names.iter().map(|n| (Some(n.to_string()), Uuid::nil())).collect(),
    };
    let mut responses = Vec::with_capacity(asked.len());
    for (name, id) in asked {
        let image = broker.metadata.image();
        let found = match &name {
            Some(n) => image.topic(n).cloned(),
            None => topic_by_id(&image, &id).cloned(),
        };
        let result = DeletableTopicResult::default().with_name(name.as_deref().map(topic_name)).with_topic_id(id);
        let Some(topic) = found else {
            let error = if name.is_some() { ErrorCode::UnknownTopicOrPartition as i16 } else { UNKNOWN_TOPIC_ID };
            responses.push(result.with_error_code(error));
            continue;
        };
        let result = result.with_name(Some(topic_name(&topic.name))).with_topic_id(topic_uuid(&topic.id));
        let deleted = vltava_broker::admin::delete_topic(broker, pb::DeleteTopicRequest { name: topic.name.clone() })
            .await
            .map_err(WireError::from);
        responses.push(match deleted {
            Ok(_) => result,
            Err(e) => result.with_error_code(code(&e)).with_error_message(Some(str_bytes(e.message))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
