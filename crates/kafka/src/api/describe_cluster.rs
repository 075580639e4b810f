//! DescribeCluster: the cluster id, the brokers' Kafka listeners and a "controller" for admin
//! clients (this broker: any broker passes admin requests to the controller quorum).

use kafka_protocol::messages::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest};
use vltava_broker::Broker;
use vltava_common::ErrorCode;

use super::{host_port, str_bytes};

/// Kafka's endpoint type of brokers (the only one served here; controllers speak gRPC).
const BROKERS: i8 = 1;
/// Kafka's `UNSUPPORTED_ENDPOINT_TYPE`.
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 119;

/// Describes the cluster.
pub fn handle(broker: &Broker, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default().with_endpoint_type(BROKERS);
    if req.endpoint_type != BROKERS && req.endpoint_type != 0 {
        return response
            .with_error_code(UNSUPPORTED_ENDPOINT_TYPE)
            .with_error_message(Some(str_bytes("only broker endpoints are described")));
    }
    let image = broker.metadata.image();
    let brokers = image
        .brokers
        .values()
        .filter(|b| !b.fenced || req.include_fenced_brokers)
        .filter_map(|b| {
            let (host, port) = host_port(&b.kafka_address)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_rack(b.rack.clone().map(str_bytes))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    response
        .with_error_code(ErrorCode::None as i16)
        .with_cluster_id(str_bytes(image.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.broker_id))
        .with_brokers(brokers)
}
