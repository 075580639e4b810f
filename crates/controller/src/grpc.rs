//! The controller's gRPC services: Raft transport in, and the metadata API brokers call.
//!
//! Any controller answers the metadata API: a follower forwards writes (and heartbeats, which only
//! the active controller tracks) to the leader, once; with no leader known the call fails with a
//! retriable NOT_CONTROLLER. Metadata watches are served by whichever controller is asked, from
//! its own applied state (versions are Raft indexes, the same on every controller).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use protobuf::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use vltava_common::WireError;
use vltava_common::grpc::{TracedChannel as Channel, traced};
use vltava_proto::v1::controller_raft_service_server::{ControllerRaftService, ControllerRaftServiceServer};
use vltava_proto::v1::controller_service_client::ControllerServiceClient;
use vltava_proto::v1::controller_service_server::{ControllerService, ControllerServiceServer};
use vltava_proto::v1::*;

use crate::quorum::Controller;
use vltava_metadata::convert;
use vltava_metadata::error::MetadataError;
use vltava_metadata::model::{AlterPartition, BrokerRegistration, CreateTopic};
use vltava_metadata::service::MetadataService;

/// How long a new metadata watch waits to confirm this controller is current.
const WATCH_BARRIER_TIMEOUT: Duration = Duration::from_secs(3);

/// Marks a forwarded call, so it is never forwarded twice.
const FORWARDED: &str = "vltava-forwarded";

/// The controller's tonic services.
#[derive(Clone)]
pub struct ControllerGrpc {
    controller: Arc<Controller>,
    leaders: Arc<Mutex<HashMap<String, ControllerServiceClient<Channel>>>>,
}

impl ControllerGrpc {
    /// Services for `controller`.
    pub fn new(controller: Arc<Controller>) -> Self {
        Self { controller, leaders: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// The Raft transport service.
    pub fn raft_service(&self) -> ControllerRaftServiceServer<Self> {
        ControllerRaftServiceServer::new(self.clone())
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }

    /// The metadata API service.
    pub fn controller_service(&self) -> ControllerServiceServer<Self> {
        ControllerServiceServer::new(self.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(256 * 1024 * 1024)
    }

    fn client(&self, address: &str) -> Result<ControllerServiceClient<Channel>, Status> {
        let mut leaders = self.leaders.lock();
        if let Some(c) = leaders.get(address) {
            return Ok(c.clone());
        }
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| Status::internal(format!("bad controller address {address}: {e}")))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true);
        let client = ControllerServiceClient::new(traced(endpoint.connect_lazy()))
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        leaders.insert(address.to_string(), client.clone());
        Ok(client)
    }

    /// Runs `local`; if this controller is not the leader, forwards `request` with `forward`.
    async fn local_or_forward<Req, Resp, Fwd>(
        &self,
        request: Request<Req>,
        local: impl Future<Output = Result<Resp, MetadataError>>,
        forward: Fwd,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Clone,
        Fwd: FnOnce(ControllerServiceClient<Channel>, Request<Req>) -> BoxFuture<Result<Response<Resp>, Status>>,
    {
        match local.await {
            Ok(r) => Ok(Response::new(r)),
            Err(MetadataError::NotController { leader: Some((_, address)) })
                if request.metadata().get(FORWARDED).is_none() =>
            {
                let client = self.client(&address)?;
                let mut forwarded = Request::new(request.get_ref().clone());
                forwarded.metadata_mut().insert(FORWARDED, "1".parse().expect("ascii"));
                if let Some(t) = request.metadata().get("grpc-timeout") {
                    forwarded.metadata_mut().insert("grpc-timeout", t.clone());
                }
                forward(client, forwarded).await
            }
            Err(e) => Err(WireError::from(e).into_status()),
        }
    }

    fn check_cluster(&self, cluster_id: &str) -> Result<(), Status> {
        if !cluster_id.is_empty() && cluster_id != self.controller.cluster_id() {
            let e = MetadataError::InconsistentClusterId {
                ours: self.controller.cluster_id().to_string(),
                theirs: cluster_id.to_string(),
            };
            return Err(WireError::from(e).into_status());
        }
        Ok(())
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn write_response(topic: Option<&vltava_metadata::model::TopicMetadata>, version: u64) -> ControllerWriteResponse {
    ControllerWriteResponse { version, topic: topic.map(convert::topic_to_proto) }
}

#[tonic::async_trait]
impl ControllerRaftService for ControllerGrpc {
    async fn step(&self, request: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        let batch = request.into_inner();
        self.check_cluster(&batch.cluster_id)?;
        let mut messages = Vec::with_capacity(batch.messages.len());
        for bytes in &batch.messages {
            let m = raft::prelude::Message::parse_from_bytes(bytes)
                .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))?;
            messages.push(m);
        }
        self.controller.raft_inbox().send(messages).await.map_err(|_| Status::unavailable("controller is stopping"))?;
        Ok(Response::new(RaftAck {}))
    }
}

#[tonic::async_trait]
impl ControllerService for ControllerGrpc {
    async fn register_broker(
        &self,
        request: Request<RegisterBrokerRequest>,
    ) -> Result<Response<RegisterBrokerResponse>, Status> {
        self.check_cluster(&request.get_ref().cluster_id)?;
        let r = request.get_ref().clone();
        let c = self.controller.clone();
        let local = async move {
            let mut reg = BrokerRegistration::new(r.broker_id, r.address, Some(r.rack).filter(|s| !s.is_empty()));
            reg.incarnation = r.incarnation_id;
            reg.kafka_address = r.kafka_address;
            let done = c.register_broker(reg).await?;
            Ok(RegisterBrokerResponse {
                broker_epoch: done.epoch,
                cluster_id: c.cluster_id().to_string(),
                version: done.version,
            })
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.register_broker(r).await })).await
    }

    async fn broker_heartbeat(
        &self,
        request: Request<BrokerHeartbeatRequest>,
    ) -> Result<Response<BrokerHeartbeatResponse>, Status> {
        let r = *request.get_ref();
        let local = async {
            Ok(BrokerHeartbeatResponse { fenced: self.controller.heartbeat(r.broker_id, r.broker_epoch).await? })
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.broker_heartbeat(r).await })).await
    }

    async fn controlled_shutdown(
        &self,
        request: Request<ControlledShutdownRequest>,
    ) -> Result<Response<ControlledShutdownResponse>, Status> {
        let r = *request.get_ref();
        let local = async {
            Ok(ControlledShutdownResponse {
                version: self.controller.controlled_shutdown(r.broker_id, r.broker_epoch).await?,
            })
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.controlled_shutdown(r).await })).await
    }

    async fn allocate_producer_ids(
        &self,
        request: Request<AllocateProducerIdsRequest>,
    ) -> Result<Response<AllocateProducerIdsResponse>, Status> {
        let r = *request.get_ref();
        let local = async {
            let block = self.controller.allocate_producer_ids(r.broker_id, r.broker_epoch).await?;
            Ok(AllocateProducerIdsResponse {
                producer_id_start: block.start,
                producer_id_len: i32::try_from(block.len).unwrap_or(i32::MAX),
            })
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.allocate_producer_ids(r).await }))
            .await
    }

    type WatchMetadataStream = ReceiverStream<Result<MetadataUpdate, Status>>;

    async fn watch_metadata(
        &self,
        request: Request<WatchMetadataRequest>,
    ) -> Result<Response<Self::WatchMetadataStream>, Status> {
        // A new watcher must not start from state older than what was committed when it asked:
        // confirm the commit index with the leader (read index) before serving from this node.
        // A controller cut off from the quorum refuses, and the watcher moves to another one.
        // raft-rs drops a read index asked while no leader is known: wait for the election first.
        self.controller.wait_for_leader(WATCH_BARRIER_TIMEOUT).await;
        // A leader that has not yet committed an entry of its term also drops it: ask again.
        let deadline = tokio::time::Instant::now() + WATCH_BARRIER_TIMEOUT;
        loop {
            match tokio::time::timeout(Duration::from_millis(500), self.controller.read_barrier()).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) if tokio::time::Instant::now() >= deadline => return Err(WireError::from(e).into_status()),
                _ if tokio::time::Instant::now() >= deadline => {
                    let e = MetadataError::Timeout("this controller cannot confirm it is current".into());
                    return Err(WireError::from(e).into_status());
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(stream_updates(self.controller.clone(), request.into_inner().from_version, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn create_topic(
        &self,
        request: Request<CreateTopicRequest>,
    ) -> Result<Response<ControllerWriteResponse>, Status> {
        let r = request.get_ref().clone();
        let local = async {
            let (topic, version) = self
                .controller
                .create_topic(CreateTopic {
                    name: r.name,
                    partitions: r.partitions,
                    replication_factor: r.replication_factor,
                    configs: r.configs.into_iter().collect(),
                    validate_only: r.validate_only,
                })
                .await?;
            Ok(write_response(Some(&topic), version))
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.create_topic(r).await })).await
    }

    async fn delete_topic(
        &self,
        request: Request<DeleteTopicRequest>,
    ) -> Result<Response<ControllerWriteResponse>, Status> {
        let name = request.get_ref().name.clone();
        let local = async { Ok(write_response(None, self.controller.delete_topic(&name).await?)) };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.delete_topic(r).await })).await
    }

    async fn create_partitions(
        &self,
        request: Request<CreatePartitionsRequest>,
    ) -> Result<Response<ControllerWriteResponse>, Status> {
        let r = request.get_ref().clone();
        let local = async {
            let (topic, version) = self.controller.create_partitions(&r.topic, r.total_count, r.validate_only).await?;
            Ok(write_response(Some(&topic), version))
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.create_partitions(r).await })).await
    }

    async fn alter_configs(
        &self,
        request: Request<AlterConfigsRequest>,
    ) -> Result<Response<ControllerWriteResponse>, Status> {
        let r = request.get_ref().clone();
        let local = async {
            let (topic, version) =
                self.controller.alter_configs(&r.topic, r.set.into_iter().collect(), r.delete, r.validate_only).await?;
            Ok(write_response(Some(&topic), version))
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.alter_configs(r).await })).await
    }

    async fn describe_cluster(
        &self,
        _request: Request<DescribeClusterRequest>,
    ) -> Result<Response<DescribeClusterResponse>, Status> {
        self.controller.describe_cluster().await.map(Response::new).map_err(|e| WireError::from(e).into_status())
    }

    async fn add_voter(&self, request: Request<AddVoterRequest>) -> Result<Response<ControllerWriteResponse>, Status> {
        let r = request.get_ref().clone();
        let local = async { Ok(write_response(None, self.controller.add_voter(r.id, r.address).await?)) };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.add_voter(r).await })).await
    }

    async fn remove_voter(
        &self,
        request: Request<RemoveVoterRequest>,
    ) -> Result<Response<ControllerWriteResponse>, Status> {
        let id = request.get_ref().id;
        let local = async { Ok(write_response(None, self.controller.remove_voter(id).await?)) };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.remove_voter(r).await })).await
    }

    async fn alter_partition(
        &self,
        request: Request<AlterPartitionRequest>,
    ) -> Result<Response<AlterPartitionResponse>, Status> {
        let r = request.get_ref().clone();
        let local = async {
            let (state, version) = self
                .controller
                .alter_partition(AlterPartition {
                    topic: r.topic,
                    topic_id: r.topic_id,
                    partition: r.partition,
                    broker_id: r.broker_id,
                    broker_epoch: r.broker_epoch,
                    leader_epoch: r.leader_epoch,
                    partition_epoch: r.partition_epoch,
                    new_isr: r.new_isr,
                })
                .await?;
            Ok(AlterPartitionResponse { partition: Some(convert::partition_to_proto(&state)), version })
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.alter_partition(r).await })).await
    }

    async fn reassign_partition(
        &self,
        request: Request<ReassignPartitionRequest>,
    ) -> Result<Response<ControllerWriteResponse>, Status> {
        let r = request.get_ref().clone();
        let local = async {
            let target = if r.cancel { None } else { Some(r.target_replicas) };
            let version = self.controller.reassign_partition(&r.topic, r.partition, target).await?;
            Ok(write_response(None, version))
        };
        self.local_or_forward(request, local, |mut c, r| Box::pin(async move { c.reassign_partition(r).await })).await
    }
}

/// Streams the image to one watcher: deltas while this controller still has the chain from the
/// watcher's version, the full image otherwise.
async fn stream_updates(
    controller: Arc<Controller>,
    from_version: u64,
    tx: mpsc::Sender<Result<MetadataUpdate, Status>>,
) {
    let mut rx = controller.watch();
    let cluster_id = controller.cluster_id().to_string();
    let mut last = if from_version == 0 { None } else { Some(from_version) };
    loop {
        let image = rx.borrow_and_update().clone();
        if last != Some(image.version) {
            let chain = last.and_then(|v| controller.deltas().since(v));
            let updates = match chain {
                Some(deltas) => deltas
                    .iter()
                    .filter(|d| Some(d.version) > last)
                    .map(|d| convert::delta_to_proto(d, &cluster_id))
                    .collect(),
                None => vec![MetadataUpdate {
                    version: image.version,
                    full: true,
                    cluster_id: cluster_id.clone(),
                    brokers: image.brokers.values().map(convert::broker_to_proto).collect(),
                    topics: image.topics.values().map(|t| convert::topic_to_proto(t)).collect(),
                    deleted_topics: Vec::new(),
                }],
            };
            for u in updates {
                last = Some(u.version);
                if tx.send(Ok(u)).await.is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = tx.closed() => return,
        }
    }
}
