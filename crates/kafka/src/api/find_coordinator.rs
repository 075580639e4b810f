//! FindCoordinator: the broker leading the key's `__consumer_offsets` (groups) or
//! `__transaction_state` (transactional ids) partition, through the same handlers as gRPC
//! (which create the internal topic on first use), named by its Kafka listener. Version 4
//! batches keys.

use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest};
use vltava_broker::Broker;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1 as pb;

use super::{code, host_port, str_bytes};

/// Kafka's key type of transactional ids (0 is groups).
const TRANSACTION: i8 = 1;

/// Finds the coordinator of each key.
pub async fn handle(broker: &Broker, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let keys: Vec<String> = match version {
        v if v >= 4 => req.coordinator_keys.iter().map(|k| k.to_string()).collect(),
        _ => vec![req.key.to_string()],
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let found = locate(broker, &key, req.key_type).await;
        let c = Coordinator::default().with_key(str_bytes(key.clone()));
        coordinators.push(match found {
            Ok((node, host, port)) => c.with_node_id(BrokerId(node)).with_host(str_bytes(host)).with_port(port),
            Err(e) => c
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(code(&e))
                .with_error_message(Some(str_bytes(e.message))),
        });
    }
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.pop().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}

/// `(broker id, Kafka host, Kafka port)` of `key`'s coordinator.
async fn locate(broker: &Broker, key: &str, key_type: i8) -> Result<(i32, String, i32), WireError> {
    let node = match key_type {
        TRANSACTION => {
            let asked = pb::FindTransactionCoordinatorRequest { transactional_id: key.to_string() };
            vltava_broker::transactions::find_coordinator::handle(broker, asked).await?.node_id
        }
        0 => {
            let asked = pb::FindCoordinatorRequest { group_id: key.to_string() };
            vltava_broker::groups::find_coordinator::handle(broker, asked).await?.node_id
        }
        other => {
            return Err(WireError::new(ErrorCode::InvalidRequest, format!("unknown coordinator key type {other}")));
        }
    };
    let image = broker.metadata.image();
    let address = image.brokers.get(&node).map(|b| b.kafka_address.clone()).unwrap_or_default();
    let (host, port) = host_port(&address).ok_or_else(|| {
        WireError::new(
            ErrorCode::CoordinatorNotAvailable,
            format!("broker {node} coordinates {key} but runs no Kafka listener"),
        )
    })?;
    Ok((node, host, port))
}
