//! The broker's gRPC edge and lifecycle: [`run`] starts everything and stops it on `shutdown`.
//!
//! The tonic services here are adapters: each method is one call into its handler file, which
//! works on [`Broker`] and never imports this file.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use vltava_metadata::{BrokerRegistration, MetadataService};
use vltava_proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use vltava_proto::v1::group_service_server::{GroupService, GroupServiceServer};
use vltava_proto::v1::record_service_server::{RecordService, RecordServiceServer};
use vltava_proto::v1::replication_service_server::{ReplicationService, ReplicationServiceServer};
use vltava_proto::v1::transaction_service_server::{TransactionService, TransactionServiceServer};
use vltava_proto::v1::*;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::groups::coordinator::GroupCoordinator;
use crate::lifecycle::Membership;
use crate::replica_manager::ReplicaManager;
use crate::replication::manager::FetcherManager;
use crate::subscribe::SubscribeStream;
use crate::transactions::coordinator::TransactionCoordinator;
use crate::transactions::markers::MarkerWriter;
use crate::transactions::producer_ids::ProducerIdManager;
use crate::{admin, fetch, groups, list_offsets, maintenance, produce, subscribe, transactions};

/// How long a starting broker keeps trying to register.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// A second front door served beside the gRPC API by the same broker: the Kafka protocol
/// listener. The broker registers its address and starts it with the running [`Broker`]; it stops
/// once the gRPC server has stopped (after the controlled shutdown moved this broker's
/// leaderships, so its clients were told where to go), before the logs close.
pub struct FrontDoor {
    /// The address registered for Kafka clients (`BrokerRegistration::kafka_address`).
    pub kafka_address: String,
    /// Serves until the receiver turns `true`.
    pub serve: Box<dyn FnOnce(Arc<Broker>, tokio::sync::watch::Receiver<bool>) -> ServeFuture + Send>,
}

/// What [`FrontDoor::serve`] returns.
pub type ServeFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs a broker on `listener` until `shutdown` resolves, then closes every log cleanly.
pub async fn run(
    config: BrokerConfig,
    metadata: Arc<dyn MetadataService>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BrokerError> {
    run_with(config, metadata, listener, None, shutdown).await
}

/// [`run`] with a second front door (the Kafka protocol listener) beside the gRPC API.
pub async fn run_with(
    config: BrokerConfig,
    metadata: Arc<dyn MetadataService>,
    listener: TcpListener,
    front_door: Option<FrontDoor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BrokerError> {
    config.validate().map_err(BrokerError::Startup)?;
    let startup = |what: &str, e: &dyn std::fmt::Display| BrokerError::Startup(format!("{what}: {e}"));
    std::fs::create_dir_all(config.logs_dir()).map_err(|e| startup(&config.logs_dir().display().to_string(), &e))?;
    let replicas = Arc::new(ReplicaManager::new(&config)?);
    let addr = listener.local_addr().map_err(|e| startup("listener", &e))?;
    let mut registration = BrokerRegistration::new(config.broker_id, config.advertised(addr), config.rack.clone());
    if let Some(door) = &front_door {
        registration.kafka_address = door.kafka_address.clone();
    }
    let (membership, registered) = Membership::register(metadata.clone(), registration, REGISTRATION_TIMEOUT).await?;
    // Heartbeat from now on, so the session never lapses while the metadata catches up.
    let heartbeats = tokio::spawn(membership.clone().heartbeat_loop(config.heartbeat_interval));
    // Serve only once this broker's view includes its own registration.
    let mut images = metadata.watch();
    let caught_up = tokio::time::timeout(REGISTRATION_TIMEOUT, images.wait_for(|i| i.version >= registered.version));
    if !matches!(caught_up.await, Ok(Ok(_))) {
        heartbeats.abort();
        return Err(BrokerError::Startup("the controller's metadata did not arrive in time".into()));
    }

    let first = metadata.image();
    let r = replicas.clone();
    tokio::task::spawn_blocking(move || {
        r.apply_image(first)?;
        r.remove_stray_logs()
    })
    .await
    .map_err(|e| BrokerError::Internal(e.to_string()))??;

    let group_coordinator = GroupCoordinator::new(config.broker_id, config.groups.clone());
    group_coordinator.sync(&replicas);
    let m = membership.clone();
    let broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync> = Arc::new(move || m.epoch());
    let producer_ids = Arc::new(ProducerIdManager::new(config.broker_id, broker_epoch.clone(), metadata.clone()));
    let marker_writer = MarkerWriter {
        broker_id: config.broker_id,
        replicas: replicas.clone(),
        groups: group_coordinator.clone(),
        write_timeout: config.transactions.write_timeout,
    };
    let txn_coordinator =
        TransactionCoordinator::new(config.transactions.clone(), replicas.clone(), producer_ids.clone(), marker_writer);
    txn_coordinator.sync();
    let broker = Arc::new(Broker {
        config: Arc::new(config),
        replicas: replicas.clone(),
        metadata: metadata.clone(),
        groups: group_coordinator.clone(),
        producer_ids,
        transactions: txn_coordinator.clone(),
    });
    crate::gauges::observe(&broker);
    let fetchers =
        Arc::new(FetcherManager::new(broker.config.broker_id, broker_epoch.clone(), broker.config.replication.clone()));
    fetchers.sync(&replicas);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(follow_metadata(
        metadata.watch(),
        replicas.clone(),
        fetchers.clone(),
        group_coordinator.clone(),
        txn_coordinator.clone(),
    ));
    tasks.spawn(sweep_transactions(txn_coordinator.clone()));
    tasks.spawn(expire_group_members(group_coordinator.clone(), replicas.clone()));
    tasks.spawn(tick_classic_groups(group_coordinator.clone()));
    tasks.spawn(crate::replication::isr::run(broker.clone(), broker_epoch, fetchers.clone()));
    tasks.spawn(maintenance::every(
        broker.config.replication.high_watermark_checkpoint_interval,
        replicas.clone(),
        maintenance::high_watermark_pass,
    ));
    tasks.spawn(maintenance::every(
        broker.config.retention_check_interval,
        replicas.clone(),
        maintenance::retention_pass,
    ));
    tasks.spawn(maintenance::every(broker.config.flush_check_interval, replicas.clone(), maintenance::flush_pass));
    let max_keys = broker.config.cleaner_max_keys;
    let io_limit = broker.config.cleaner_io_max_bytes_per_sec;
    tasks.spawn(maintenance::every(broker.config.cleaner_interval, replicas.clone(), move |r| {
        maintenance::clean_pass(r, max_keys, io_limit)
    }));
    let expiration = broker.config.producer_id_expiration;
    tasks.spawn(maintenance::every(broker.config.producer_id_expiration_check_interval, replicas.clone(), move |r| {
        maintenance::expire_producers(r, expiration)
    }));

    let (door_stop, door_stopped) = tokio::sync::watch::channel(false);
    let door = front_door.map(|d| tokio::spawn((d.serve)(broker.clone(), door_stopped)));
    tracing::info!(%addr, broker_id = broker.config.broker_id, partitions = replicas.all().len(), "broker serving");
    let controlled_shutdown_timeout = broker.config.controlled_shutdown_timeout;
    let limit = broker.config.max_request_bytes.max(broker.config.fetch_max_bytes) + 64 * 1024;
    let svc = Services(broker.clone());
    let drain = vltava_common::drain::StreamDrain::new();
    let drain_layer = drain.layer(&["/vltava.v1.RecordService/Subscribe"]);
    let signal = drain.after(
        async move {
            shutdown.await;
            // Leaderships move while this broker still answers, so clients are redirected rather
            // than left waiting for a session timeout.
            membership.controlled_shutdown(controlled_shutdown_timeout).await;
        },
        broker.config.shutdown_grace,
    );
    let result = vltava_common::grpc::server_builder()
        .layer(crate::metrics::rpc_layer())
        .layer(drain_layer)
        .add_service(
            RecordServiceServer::new(svc.clone()).max_decoding_message_size(limit).max_encoding_message_size(limit),
        )
        .add_service(
            ReplicationServiceServer::new(svc.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(broker.config.replication.fetch_response_max_bytes + limit),
        )
        .add_service(AdminServiceServer::new(svc.clone()))
        .add_service(GroupServiceServer::new(svc.clone()))
        .add_service(TransactionServiceServer::new(svc))
        .serve_with_incoming_shutdown(vltava_common::grpc::incoming(listener), signal)
        .await;

    door_stop.send_replace(true);
    if let Some(door) = door {
        let _ = door.await;
    }
    heartbeats.abort();
    tasks.shutdown().await;
    fetchers.shutdown();
    group_coordinator.close_all();
    txn_coordinator.close_all();
    tokio::task::spawn_blocking(move || {
        maintenance::high_watermark_pass(&replicas);
        replicas.close_all_blocking()
    })
    .await
    .ok();
    tracing::info!("broker stopped");
    result.map_err(|e| BrokerError::Internal(format!("gRPC server: {e}")))
}

/// Applies every new cluster image, in order.
async fn follow_metadata(
    mut rx: tokio::sync::watch::Receiver<Arc<vltava_metadata::ClusterImage>>,
    replicas: Arc<ReplicaManager>,
    fetchers: Arc<FetcherManager>,
    groups: Arc<GroupCoordinator>,
    transactions: Arc<TransactionCoordinator>,
) {
    while rx.changed().await.is_ok() {
        let image = rx.borrow_and_update().clone();
        let r = replicas.clone();
        match tokio::task::spawn_blocking(move || r.apply_image(image)).await {
            Ok(Ok(())) => {
                fetchers.sync(&replicas);
                groups.sync(&replicas);
                transactions.sync();
            }
            Ok(Err(e)) => tracing::error!(error = %e, "applying cluster metadata failed"),
            Err(e) => tracing::error!(error = %e, "applying cluster metadata panicked"),
        }
    }
}

/// How often the coordinator asks the leaders for the log end offsets of partitions it does
/// not host (for the lag gauge).
const LOG_ENDS_REFRESH: Duration = Duration::from_secs(5);

/// Removes group members whose session or rebalance timeout lapsed, checking ten times per
/// session timeout (at most once every 10 ms, at least once a second), and the offsets of
/// deleted topics; refreshes the log end offsets the lag gauge needs every [`LOG_ENDS_REFRESH`].
async fn expire_group_members(groups: Arc<GroupCoordinator>, replicas: Arc<ReplicaManager>) {
    let every = (groups.config().session_timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_log_ends = std::time::Instant::now() - LOG_ENDS_REFRESH;
    loop {
        tick.tick().await;
        groups.expire().await;
        groups.forget_deleted_topics(&replicas.image()).await;
        if last_log_ends.elapsed() >= LOG_ENDS_REFRESH {
            groups.refresh_log_ends(&replicas).await;
            last_log_ends = std::time::Instant::now();
        }
    }
}

/// Drives the classic groups' timeouts (join phases, sessions) every `classic_groups::TICK`.
async fn tick_classic_groups(groups: Arc<GroupCoordinator>) {
    let mut tick = tokio::time::interval(crate::groups::classic_groups::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        groups.classic.tick(std::time::Instant::now());
    }
}

/// Aborts timed-out transactions and finishes unfinished ones every `cleanup_interval`.
async fn sweep_transactions(transactions: Arc<TransactionCoordinator>) {
    let mut tick = tokio::time::interval(transactions.config().cleanup_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        transactions.sweep().await;
    }
}

/// The tonic service implementations; each method is one call into its handler file.
#[derive(Clone)]
struct Services(Arc<Broker>);

type Reply<T> = Result<Response<T>, Status>;

fn reply<T, E: Into<vltava_common::WireError>>(r: Result<T, E>) -> Reply<T> {
    r.map(Response::new).map_err(|e| e.into().into_status())
}

#[tonic::async_trait]
impl RecordService for Services {
    async fn produce(&self, request: Request<ProduceRequest>) -> Reply<ProduceResponse> {
        reply(produce::handle(&self.0, request.into_inner()).await)
    }

    async fn fetch(&self, request: Request<FetchRequest>) -> Reply<FetchResponse> {
        reply(fetch::handle(&self.0, request.into_inner()).await)
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Reply<Self::SubscribeStream> {
        reply(subscribe::handle(&self.0, request.into_inner()))
    }

    async fn list_offsets(&self, request: Request<ListOffsetsRequest>) -> Reply<ListOffsetsResponse> {
        reply(list_offsets::handle(&self.0, request.into_inner()).await)
    }
}

#[tonic::async_trait]
impl ReplicationService for Services {
    async fn replica_fetch(&self, request: Request<ReplicaFetchRequest>) -> Reply<ReplicaFetchResponse> {
        reply(crate::replication::serve::replica_fetch(&self.0, request.into_inner()).await)
    }

    async fn offset_for_leader_epoch(
        &self,
        request: Request<OffsetForLeaderEpochRequest>,
    ) -> Reply<OffsetForLeaderEpochResponse> {
        Ok(Response::new(crate::replication::serve::offset_for_leader_epoch(&self.0, request.into_inner())))
    }
}

#[tonic::async_trait]
impl AdminService for Services {
    async fn create_topic(&self, request: Request<CreateTopicRequest>) -> Reply<CreateTopicResponse> {
        reply(admin::create_topic(&self.0, request.into_inner()).await)
    }

    async fn delete_topic(&self, request: Request<DeleteTopicRequest>) -> Reply<DeleteTopicResponse> {
        reply(admin::delete_topic(&self.0, request.into_inner()).await)
    }

    async fn list_topics(&self, _request: Request<ListTopicsRequest>) -> Reply<ListTopicsResponse> {
        Ok(Response::new(admin::list_topics(&self.0)))
    }

    async fn describe_topic(&self, request: Request<DescribeTopicRequest>) -> Reply<DescribeTopicResponse> {
        reply(admin::describe_topic(&self.0, request.into_inner()))
    }

    async fn metadata(&self, request: Request<MetadataRequest>) -> Reply<MetadataResponse> {
        reply(admin::metadata(&self.0, request.into_inner()).await)
    }

    async fn create_partitions(&self, request: Request<CreatePartitionsRequest>) -> Reply<CreatePartitionsResponse> {
        reply(admin::create_partitions(&self.0, request.into_inner()).await)
    }

    async fn alter_configs(&self, request: Request<AlterConfigsRequest>) -> Reply<AlterConfigsResponse> {
        reply(admin::alter_configs(&self.0, request.into_inner()).await)
    }

    async fn describe_cluster(&self, request: Request<DescribeClusterRequest>) -> Reply<DescribeClusterResponse> {
        reply(admin::describe_cluster(&self.0, request.into_inner()).await)
    }

    async fn alter_partition_reassignments(
        &self,
        request: Request<AlterPartitionReassignmentsRequest>,
    ) -> Reply<AlterPartitionReassignmentsResponse> {
        reply(admin::alter_partition_reassignments(&self.0, request.into_inner()).await)
    }

    async fn list_partition_reassignments(
        &self,
        request: Request<ListPartitionReassignmentsRequest>,
    ) -> Reply<ListPartitionReassignmentsResponse> {
        Ok(Response::new(admin::list_partition_reassignments(&self.0, request.into_inner())))
    }
}

#[tonic::async_trait]
impl GroupService for Services {
    async fn find_coordinator(&self, request: Request<FindCoordinatorRequest>) -> Reply<FindCoordinatorResponse> {
        reply(groups::find_coordinator::handle(&self.0, request.into_inner()).await)
    }

    async fn consumer_group_heartbeat(
        &self,
        request: Request<ConsumerGroupHeartbeatRequest>,
    ) -> Reply<ConsumerGroupHeartbeatResponse> {
        let client_host = request.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default();
        reply(groups::heartbeat_rpc::handle(&self.0, request.into_inner(), client_host).await)
    }

    async fn commit_offsets(&self, request: Request<CommitOffsetsRequest>) -> Reply<CommitOffsetsResponse> {
        reply(groups::service::commit(&self.0, request.into_inner()).await)
    }

    async fn fetch_offsets(&self, request: Request<FetchOffsetsRequest>) -> Reply<FetchOffsetsResponse> {
        reply(groups::service::fetch(&self.0, request.into_inner()).await)
    }

    async fn list_groups(&self, _request: Request<ListGroupsRequest>) -> Reply<ListGroupsResponse> {
        reply(groups::service::list(&self.0).await)
    }

    async fn delete_groups(&self, request: Request<DeleteGroupsRequest>) -> Reply<DeleteGroupsResponse> {
        reply(groups::service::delete(&self.0, request.into_inner()).await)
    }

    async fn describe_groups(&self, request: Request<DescribeGroupsRequest>) -> Reply<DescribeGroupsResponse> {
        reply(groups::describe::handle(&self.0, request.into_inner()).await)
    }

    async fn alter_consumer_group_offsets(
        &self,
        request: Request<AlterConsumerGroupOffsetsRequest>,
    ) -> Reply<AlterConsumerGroupOffsetsResponse> {
        reply(groups::alter_offsets::handle(&self.0, request.into_inner()).await)
    }
}

#[tonic::async_trait]
impl TransactionService for Services {
    async fn init_producer_id(&self, request: Request<InitProducerIdRequest>) -> Reply<InitProducerIdResponse> {
        reply(transactions::init_producer_id::handle(&self.0, request.into_inner()).await)
    }

    async fn find_transaction_coordinator(
        &self,
        request: Request<FindTransactionCoordinatorRequest>,
    ) -> Reply<FindTransactionCoordinatorResponse> {
        reply(transactions::find_coordinator::handle(&self.0, request.into_inner()).await)
    }

    async fn add_partitions_to_txn(
        &self,
        request: Request<AddPartitionsToTxnRequest>,
    ) -> Reply<AddPartitionsToTxnResponse> {
        reply(transactions::add_partitions::handle(&self.0, request.into_inner()).await)
    }

    async fn add_offsets_to_txn(&self, request: Request<AddOffsetsToTxnRequest>) -> Reply<AddOffsetsToTxnResponse> {
        reply(transactions::add_partitions::add_offsets(&self.0, request.into_inner()).await)
    }

    async fn end_txn(&self, request: Request<EndTxnRequest>) -> Reply<EndTxnResponse> {
        reply(transactions::end_txn::handle(&self.0, request.into_inner()).await)
    }

    async fn txn_offset_commit(&self, request: Request<TxnOffsetCommitRequest>) -> Reply<TxnOffsetCommitResponse> {
        reply(transactions::txn_offset_commit::handle(&self.0, request.into_inner()).await)
    }

    async fn write_txn_markers(&self, request: Request<WriteTxnMarkersRequest>) -> Reply<WriteTxnMarkersResponse> {
        Ok(Response::new(self.0.transactions.markers().handle(request.into_inner()).await))
    }

    async fn describe_transactions(
        &self,
        request: Request<DescribeTransactionsRequest>,
    ) -> Reply<DescribeTransactionsResponse> {
        Ok(Response::new(transactions::describe::handle(&self.0, request.into_inner()).await))
    }
}
