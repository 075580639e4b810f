//! [`RemoteMetadata`]: the [`MetadataService`] of a broker (or gateway) in a cluster, over gRPC to
//! the controller quorum.
//!
//! The image is kept current by one `WatchMetadata` stream (deltas, or a full image when too far
//! behind), which moves to another controller when its controller goes away and resumes from the
//! version it has. Writes go to any controller (followers forward to the leader); NOT_CONTROLLER and
//! unreachable controllers are retried on the next controller until `request_timeout`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vltava_common::grpc::{TracedChannel as Channel, traced};
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::controller_service_client::ControllerServiceClient;
use vltava_proto::v1::*;

use crate::convert;
use crate::error::MetadataError;
use crate::model::{
    AlterPartition, BrokerId, BrokerRegistration, ClusterImage, CreateTopic, PartitionState, TopicMetadata,
};
use crate::service::{MetadataService, ProducerIdBlock, Registered};

/// The controller quorum, seen from a broker or gateway.
pub struct RemoteMetadata {
    clients: Vec<(String, ControllerServiceClient<Channel>)>,
    cluster_id: String,
    next: AtomicUsize,
    request_timeout: Duration,
    image: watch::Sender<Arc<ClusterImage>>,
}

fn client(address: &str) -> Result<ControllerServiceClient<Channel>, MetadataError> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| MetadataError::Store(format!("bad controller address {address:?}: {e}")))?
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true);
    Ok(ControllerServiceClient::new(traced(endpoint.connect_lazy()))
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

/// Whether a failed call should be tried on another controller.
fn retriable(status: &tonic::Status) -> bool {
    let w = WireError::from_status(status);
    matches!(w.code, ErrorCode::NotController | ErrorCode::LeaderNotAvailable)
        || matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled)
            && status.details().is_empty()
}

impl RemoteMetadata {
    /// Connects to the controllers at `addresses` and starts following the metadata. `cluster_id`
    /// (empty to accept any) is checked at registration.
    pub fn connect(
        addresses: &[String],
        cluster_id: &str,
        request_timeout: Duration,
    ) -> Result<Arc<Self>, MetadataError> {
        if addresses.is_empty() {
            return Err(MetadataError::Store("no controller addresses configured".into()));
        }
        let clients =
            addresses.iter().map(|a| Ok((a.clone(), client(a)?))).collect::<Result<Vec<_>, MetadataError>>()?;
        let (image, _) = watch::channel(Arc::new(ClusterImage::default()));
        let me = Arc::new(Self {
            clients,
            cluster_id: cluster_id.to_string(),
            next: AtomicUsize::new(0),
            request_timeout,
            image,
        });
        tokio::spawn(follow(Arc::downgrade(&me)));
        Ok(me)
    }

    /// Waits until the image has at least `version` (or `timeout` passes).
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        let mut rx = self.image.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|i| i.version >= version)).await.is_ok_and(|r| r.is_ok())
    }

    /// Calls `f` on controllers in turn until one answers or the time is up.
    async fn call<T, Fut>(&self, f: impl Fn(ControllerServiceClient<Channel>) -> Fut) -> Result<T, MetadataError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.request_timeout;
        let mut last_error;
        loop {
            let i = self.next.load(Ordering::Relaxed) % self.clients.len();
            let (address, client) = &self.clients[i];
            match tokio::time::timeout(self.request_timeout, f(client.clone())).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(status)) if retriable(&status) => {
                    tracing::debug!(controller = %address, error = %status.message(), "controller call failed; trying the next");
                    last_error = WireError::from_status(&status);
                }
                Ok(Err(status)) => return Err(MetadataError::Remote(WireError::from_status(&status))),
                Err(_) => last_error = WireError::new(ErrorCode::RequestTimedOut, "controller call timed out"),
            }
            self.next.fetch_add(1, Ordering::Relaxed);
            if Instant::now() >= deadline {
                let e = last_error;
                return Err(MetadataError::Remote(WireError::new(
                    if e.code == ErrorCode::NotController {
                        ErrorCode::NotController
                    } else {
                        ErrorCode::RequestTimedOut
                    },
                    format!(
                        "no controller could complete the request within {:?}: {}",
                        self.request_timeout, e.message
                    ),
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn topic_of(r: ControllerWriteResponse) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
    let topic = r.topic.ok_or_else(|| MetadataError::Store("controller answered without the topic".into()))?;
    Ok((Arc::new(convert::topic_from_proto(topic)), r.version))
}

/// Follows the metadata stream for as long as the service lives.
async fn follow(me: std::sync::Weak<RemoteMetadata>) {
    let mut turn = 0usize;
    loop {
        let Some(this) = me.upgrade() else { return };
        let (address, mut client) = this.clients[turn % this.clients.len()].clone();
        turn += 1;
        let from_version = this.image.borrow().version;
        drop(this);
        match client.watch_metadata(WatchMetadataRequest { from_version }).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => {
                            let Some(this) = me.upgrade() else { return };
                            this.image.send_modify(|image| {
                                let next = if update.full {
                                    let mut fresh = ClusterImage {
                                        cluster_id: update.cluster_id.clone(),
                                        ..ClusterImage::default()
                                    };
                                    convert::delta_from_proto(update).apply_to(&mut fresh);
                                    fresh
                                } else {
                                    let mut next = image.as_ref().clone();
                                    convert::delta_from_proto(update).apply_to(&mut next);
                                    next
                                };
                                *image = Arc::new(next);
                            });
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(controller = %address, error = %e.message(), "metadata stream ended");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(controller = %address, error = %e.message(), "cannot watch metadata"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[async_trait::async_trait]
impl MetadataService for RemoteMetadata {
    async fn create_topic(&self, request: CreateTopic) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        let req = CreateTopicRequest {
            name: request.name,
            partitions: request.partitions,
            replication_factor: request.replication_factor,
            configs: request.configs.into_iter().collect(),
            validate_only: request.validate_only,
        };
        topic_of(
            self.call(|mut c| {
                let req = req.clone();
                async move { c.create_topic(req).await }
            })
            .await?,
        )
    }

    async fn delete_topic(&self, name: &str) -> Result<u64, MetadataError> {
        let req = DeleteTopicRequest { name: name.to_string() };
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.delete_topic(req).await }
            })
            .await?;
        Ok(r.version)
    }

    async fn create_partitions(
        &self,
        topic: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        let req = CreatePartitionsRequest { topic: topic.to_string(), total_count: total, validate_only };
        topic_of(
            self.call(|mut c| {
                let req = req.clone();
                async move { c.create_partitions(req).await }
            })
            .await?,
        )
    }

    async fn alter_configs(
        &self,
        topic: &str,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
        validate_only: bool,
    ) -> Result<(Arc<TopicMetadata>, u64), MetadataError> {
        let req =
            AlterConfigsRequest { topic: topic.to_string(), set: set.into_iter().collect(), delete, validate_only };
        topic_of(
            self.call(|mut c| {
                let req = req.clone();
                async move { c.alter_configs(req).await }
            })
            .await?,
        )
    }

    async fn register_broker(&self, registration: BrokerRegistration) -> Result<Registered, MetadataError> {
        let req = RegisterBrokerRequest {
            cluster_id: self.cluster_id.clone(),
            broker_id: registration.id,
            address: registration.address,
            rack: registration.rack.unwrap_or_default(),
            incarnation_id: registration.incarnation,
            kafka_address: registration.kafka_address,
        };
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.register_broker(req).await }
            })
            .await?;
        Ok(Registered { epoch: r.broker_epoch, version: r.version })
    }

    async fn heartbeat(&self, broker: BrokerId, epoch: i64) -> Result<bool, MetadataError> {
        let req = BrokerHeartbeatRequest { broker_id: broker, broker_epoch: epoch };
        let r = self.call(|mut c| async move { c.broker_heartbeat(req).await }).await?;
        Ok(r.fenced)
    }

    async fn controlled_shutdown(&self, broker: BrokerId, epoch: i64) -> Result<u64, MetadataError> {
        let req = ControlledShutdownRequest { broker_id: broker, broker_epoch: epoch };
        let r = self.call(|mut c| async move { c.controlled_shutdown(req).await }).await?;
        Ok(r.version)
    }

    async fn allocate_producer_ids(&self, broker: BrokerId, epoch: i64) -> Result<ProducerIdBlock, MetadataError> {
        let req = AllocateProducerIdsRequest { broker_id: broker, broker_epoch: epoch };
        let r = self.call(|mut c| async move { c.allocate_producer_ids(req).await }).await?;
        Ok(ProducerIdBlock { start: r.producer_id_start, len: i64::from(r.producer_id_len) })
    }

    async fn alter_partition(&self, request: AlterPartition) -> Result<(PartitionState, u64), MetadataError> {
        let req = AlterPartitionRequest {
            topic: request.topic,
            topic_id: request.topic_id,
            partition: request.partition,
            broker_id: request.broker_id,
            broker_epoch: request.broker_epoch,
            leader_epoch: request.leader_epoch,
            partition_epoch: request.partition_epoch,
            new_isr: request.new_isr,
        };
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.alter_partition(req).await }
            })
            .await?;
        let state =
            r.partition.ok_or_else(|| MetadataError::Store("controller answered without the partition".into()))?;
        Ok((convert::partition_from_proto(state), r.version))
    }

    async fn reassign_partition(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<BrokerId>>,
    ) -> Result<u64, MetadataError> {
        let req = ReassignPartitionRequest {
            topic: topic.to_string(),
            partition,
            cancel: target.is_none(),
            target_replicas: target.unwrap_or_default(),
        };
        let r = self
            .call(|mut c| {
                let req = req.clone();
                async move { c.reassign_partition(req).await }
            })
            .await?;
        Ok(r.version)
    }

    async fn describe_cluster(&self) -> Result<DescribeClusterResponse, MetadataError> {
        self.call(|mut c| async move { c.describe_cluster(DescribeClusterRequest {}).await }).await
    }

    fn image(&self) -> Arc<ClusterImage> {
        self.image.borrow().clone()
    }

    fn watch(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.image.subscribe()
    }
}
