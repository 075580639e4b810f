//! The gateway's gRPC edge: [`run`] serves the three public services until `shutdown`.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use vltava_proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use vltava_proto::v1::group_service_server::{GroupService, GroupServiceServer};
use vltava_proto::v1::record_service_server::{RecordService, RecordServiceServer};
use vltava_proto::v1::transaction_service_server::{TransactionService, TransactionServiceServer};
use vltava_proto::v1::*;

use crate::brokers::{Brokers, RecordStream};
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::limits::EdgeLimitsLayer;
use crate::routing::Router;

/// Serves `AdminService`, `RecordService`, `GroupService`, `TransactionService` and `GatewayService` on `listener`,
/// routing every call to the brokers named by `config.bootstrap`, until `shutdown` resolves.
/// Brokers need not be up at start: metadata is fetched on first use. On shutdown, calls in flight
/// finish; open streams get `shutdown_grace` and then end with `UNAVAILABLE`.
pub async fn run(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    config.validate().map_err(GatewayError::Config)?;
    let addr = listener.local_addr()?;
    let limit = config.grpc_message_limit();
    let router = Arc::new(Router::new(config));
    if !router.config().controllers.is_empty() {
        let metadata =
            vltava_metadata::RemoteMetadata::connect(&router.config().controllers, "", router.config().request_timeout)
                .map_err(|e| GatewayError::Config(e.to_string()))?;
        tokio::spawn(follow_controllers(metadata, Arc::downgrade(&router)));
    }
    if let Err(e) = router.refresh().await {
        tracing::warn!(error = %e, "no broker answered at start; will retry on first use");
    }
    tracing::info!(%addr, bootstrap = ?router.config().bootstrap, "gateway serving");
    let limits = EdgeLimitsLayer::new(
        router.config().max_concurrent_requests,
        router.config().max_concurrent_streams,
        router.config().call_timeout,
    );
    let (health, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(report_health(health, Arc::downgrade(&router)));
    let request_limit = router.config().max_request_bytes;
    // Open streams get `shutdown_grace` after shutdown starts, then end with UNAVAILABLE.
    let drain = vltava_common::drain::StreamDrain::new();
    let drain_layer = drain.layer(crate::limits::STREAMING);
    let shutdown = drain.after(shutdown, router.config().shutdown_grace);
    let brokers = Brokers::new(router);
    let gateway_api = crate::metrics::observed(crate::client_api::GatewayApi::new(brokers.clone()));
    let svc = Services(brokers);
    vltava_common::grpc::server_builder()
        .layer(crate::metrics::rpc_layer())
        .layer(limits)
        .layer(drain_layer)
        .add_service(health_service)
        .add_service(reflection_v1()?)
        .add_service(reflection_v1alpha()?)
        .add_service(
            RecordServiceServer::new(svc.clone())
                .max_decoding_message_size(request_limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            gateway_service_server::GatewayServiceServer::new(gateway_api)
                .max_decoding_message_size(request_limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            AdminServiceServer::new(svc.clone())
                .max_decoding_message_size(request_limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            GroupServiceServer::new(svc.clone())
                .max_decoding_message_size(request_limit)
                .max_encoding_message_size(limit),
        )
        .add_service(TransactionServiceServer::new(svc))
        .serve_with_incoming_shutdown(vltava_common::grpc::incoming(listener), shutdown)
        .await?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// The public services the gateway serves, as reflection advertises them.
const SERVED: &[&str] = &[
    "vltava.v1.RecordService",
    "vltava.v1.AdminService",
    "vltava.v1.GroupService",
    "vltava.v1.TransactionService",
    "vltava.v1.GatewayService",
    "grpc.health.v1.Health",
];

/// gRPC server reflection (`grpc.reflection.v1`), so `grpcurl` and similar tools can list and call
/// the gateway's services without the `.proto` files.
fn reflection_v1() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    GatewayError,
> {
    SERVED
        .iter()
        .fold(reflection_builder(), |b, name| b.with_service_name(*name))
        .build_v1()
        .map_err(|e| GatewayError::Config(format!("reflection: {e}")))
}

/// The older `grpc.reflection.v1alpha` protocol, which many deployed tools still speak.
fn reflection_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>,
    GatewayError,
> {
    SERVED
        .iter()
        .fold(reflection_builder(), |b, name| b.with_service_name(*name))
        .build_v1alpha()
        .map_err(|e| GatewayError::Config(format!("reflection: {e}")))
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vltava_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Keeps the standard health service (`grpc.health.v1.Health`) true: the gateway, and each of its
/// services, is `SERVING` while it knows at least one live broker and `NOT_SERVING` otherwise.
async fn report_health(reporter: tonic_health::server::HealthReporter, router: std::sync::Weak<Router>) {
    let services =
        ["", "vltava.v1.RecordService", "vltava.v1.AdminService", "vltava.v1.GroupService", "vltava.v1.GatewayService"];
    let mut last = None;
    loop {
        let Some(router) = router.upgrade() else { return };
        let serving = !router.view().await.cluster.brokers.is_empty();
        drop(router);
        if last != Some(serving) {
            let status =
                if serving { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
            for name in services {
                reporter.set_service_status(name, status).await;
            }
            tracing::info!(serving, "gateway health changed");
            last = Some(serving);
        }
        tokio::time::sleep(HEALTH_CHECK_INTERVAL).await;
    }
}

/// How often the health status is re-evaluated.
const HEALTH_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Routes by every metadata change the controllers commit, for as long as the router lives.
async fn follow_controllers(metadata: Arc<vltava_metadata::RemoteMetadata>, router: std::sync::Weak<Router>) {
    use vltava_metadata::MetadataService;
    let mut rx = metadata.watch();
    while rx.changed().await.is_ok() {
        let image = rx.borrow_and_update().clone();
        let Some(router) = router.upgrade() else { return };
        if image.version > 0 {
            router.install_image(&image);
        }
    }
}

/// The tonic service implementations; each method is one call into [`Brokers`].
#[derive(Clone)]
struct Services(Brokers);

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(r: Result<T, Status>) -> Reply<T> {
    r.map(Response::new)
}

#[tonic::async_trait]
impl RecordService for Services {
    async fn produce(&self, request: Request<ProduceRequest>) -> Reply<ProduceResponse> {
        reply(self.0.produce(request.into_inner()).await)
    }

    async fn fetch(&self, request: Request<FetchRequest>) -> Reply<FetchResponse> {
        reply(self.0.fetch(request.into_inner()).await)
    }

    type SubscribeStream = RecordStream;

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Reply<Self::SubscribeStream> {
        reply(self.0.subscribe(request.into_inner()).await)
    }

    async fn list_offsets(&self, request: Request<ListOffsetsRequest>) -> Reply<ListOffsetsResponse> {
        reply(self.0.list_offsets(request.into_inner()).await)
    }
}

#[tonic::async_trait]
impl AdminService for Services {
    async fn create_topic(&self, request: Request<CreateTopicRequest>) -> Reply<CreateTopicResponse> {
        reply(self.0.create_topic(request.into_inner()).await)
    }

    async fn delete_topic(&self, request: Request<DeleteTopicRequest>) -> Reply<DeleteTopicResponse> {
        reply(self.0.delete_topic(request.into_inner()).await)
    }

    async fn list_topics(&self, request: Request<ListTopicsRequest>) -> Reply<ListTopicsResponse> {
        reply(self.0.list_topics(request.into_inner()).await)
    }

    async fn describe_topic(&self, request: Request<DescribeTopicRequest>) -> Reply<DescribeTopicResponse> {
        reply(self.0.describe_topic(request.into_inner()).await)
    }

    async fn metadata(&self, request: Request<MetadataRequest>) -> Reply<MetadataResponse> {
        reply(self.0.metadata(request.into_inner()).await)
    }

    async fn create_partitions(&self, request: Request<CreatePartitionsRequest>) -> Reply<CreatePartitionsResponse> {
        reply(self.0.create_partitions(request.into_inner()).await)
    }

    async fn alter_configs(&self, request: Request<AlterConfigsRequest>) -> Reply<AlterConfigsResponse> {
        reply(self.0.alter_configs(request.into_inner()).await)
    }

    async fn describe_cluster(&self, request: Request<DescribeClusterRequest>) -> Reply<DescribeClusterResponse> {
        reply(self.0.describe_cluster(request.into_inner()).await)
    }

    async fn alter_partition_reassignments(
        &self,
        request: Request<AlterPartitionReassignmentsRequest>,
    ) -> Reply<AlterPartitionReassignmentsResponse> {
        reply(self.0.alter_partition_reassignments(request.into_inner()).await)
    }

    async fn list_partition_reassignments(
        &self,
        request: Request<ListPartitionReassignmentsRequest>,
    ) -> Reply<ListPartitionReassignmentsResponse> {
        reply(self.0.list_partition_reassignments(request.into_inner()).await)
    }
}

#[tonic::async_trait]
impl GroupService for Services {
    async fn find_coordinator(&self, request: Request<FindCoordinatorRequest>) -> Reply<FindCoordinatorResponse> {
        reply(self.0.find_coordinator(request.into_inner()).await)
    }

    async fn consumer_group_heartbeat(
        &self,
        request: Request<ConsumerGroupHeartbeatRequest>,
    ) -> Reply<ConsumerGroupHeartbeatResponse> {
        reply(self.0.consumer_group_heartbeat(request.into_inner()).await)
    }

    async fn commit_offsets(&self, request: Request<CommitOffsetsRequest>) -> Reply<CommitOffsetsResponse> {
        reply(self.0.commit_offsets(request.into_inner()).await)
    }

    async fn fetch_offsets(&self, request: Request<FetchOffsetsRequest>) -> Reply<FetchOffsetsResponse> {
        reply(self.0.fetch_offsets(request.into_inner()).await)
    }

    async fn list_groups(&self, request: Request<ListGroupsRequest>) -> Reply<ListGroupsResponse> {
        reply(self.0.list_groups(request.into_inner()).await)
    }

    async fn delete_groups(&self, request: Request<DeleteGroupsRequest>) -> Reply<DeleteGroupsResponse> {
        reply(self.0.delete_groups(request.into_inner()).await)
    }

    async fn describe_groups(&self, request: Request<DescribeGroupsRequest>) -> Reply<DescribeGroupsResponse> {
        reply(self.0.describe_groups(request.into_inner()).await)
    }

    async fn alter_consumer_group_offsets(
        &self,
        request: Request<AlterConsumerGroupOffsetsRequest>,
    ) -> Reply<AlterConsumerGroupOffsetsResponse> {
        reply(self.0.alter_consumer_group_offsets(request.into_inner()).await)
    }
}

#[tonic::async_trait]
impl TransactionService for Services {
    async fn init_producer_id(&self, request: Request<InitProducerIdRequest>) -> Reply<InitProducerIdResponse> {
        reply(self.0.init_producer_id(request.into_inner()).await)
    }

    async fn find_transaction_coordinator(
        &self,
        request: Request<FindTransactionCoordinatorRequest>,
    ) -> Reply<FindTransactionCoordinatorResponse> {
        reply(self.0.find_txn_coordinator(request.into_inner()).await)
    }

    async fn add_partitions_to_txn(
        &self,
        request: Request<AddPartitionsToTxnRequest>,
    ) -> Reply<AddPartitionsToTxnResponse> {
        reply(self.0.add_partitions_to_txn(request.into_inner()).await)
    }

    async fn add_offsets_to_txn(&self, request: Request<AddOffsetsToTxnRequest>) -> Reply<AddOffsetsToTxnResponse> {
        reply(self.0.add_offsets_to_txn(request.into_inner()).await)
    }

    async fn end_txn(&self, request: Request<EndTxnRequest>) -> Reply<EndTxnResponse> {
        reply(self.0.end_txn(request.into_inner()).await)
    }

    async fn txn_offset_commit(&self, request: Request<TxnOffsetCommitRequest>) -> Reply<TxnOffsetCommitResponse> {
        reply(self.0.txn_offset_commit(request.into_inner()).await)
    }

    async fn write_txn_markers(&self, _request: Request<WriteTxnMarkersRequest>) -> Reply<WriteTxnMarkersResponse> {
        Err(Status::permission_denied("WriteTxnMarkers is between brokers: send it to a broker, not the gateway"))
    }

    async fn describe_transactions(
        &self,
        request: Request<DescribeTransactionsRequest>,
    ) -> Reply<DescribeTransactionsResponse> {
        reply(self.0.describe_transactions(request.into_inner()).await)
    }
}
