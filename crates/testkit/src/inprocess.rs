//! In-process servers for API tests: a real broker (real sockets, logs and offsets store) and a
//! gateway in front of it, each on `127.0.0.1:0`, with the metadata in memory
//! ([`MemoryMetadata`]: the controller's state machine without Raft), so tests that are not about
//! the controller start no Raft node.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::transport::Channel;
use vltava_broker::BrokerConfig;
use vltava_gateway::GatewayConfig;
use vltava_metadata::{MemoryMetadata, MetadataService};
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::record_service_client::RecordServiceClient;
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
use vltava_proto::v1::{CreateTopicRequest, CreateTopicResponse, ProduceRequest, ProduceResponse};
use vltava_record::{BatchBuilder, Compression};

/// Longest time any single step of an in-process test may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A server running as a task of the test's runtime, and the means to stop it.
pub struct Running {
    /// The address it serves on.
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Asks the server to stop and waits (at most 30 s) until it has.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task).await.expect("server stops in time").unwrap();
        }
    }

    async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(format!("http://{}", self.addr)).unwrap();
        tokio::time::timeout(WAIT, endpoint.connect()).await.expect("server reachable in time").unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Metadata for in-process tests: one cluster, topics with one replica unless asked otherwise.
pub fn memory_metadata() -> Arc<MemoryMetadata> {
    MemoryMetadata::new("test-cluster", 1)
}

/// Starts a broker with `config` (its `listen` set to a fresh `127.0.0.1:0` port).
pub async fn start_broker(mut config: BrokerConfig, metadata: Arc<MemoryMetadata>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    config.listen = addr.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let metadata: Arc<dyn MetadataService> = metadata;
        vltava_broker::run(config, metadata, listener, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running { addr, stop: Some(tx), task: Some(task) }
}

/// Starts a gateway bootstrapped from `broker` with `config` adjusted by the test.
pub async fn start_gateway(broker: &str, configure: impl FnOnce(&mut GatewayConfig)) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = GatewayConfig {
        listen: addr.clone(),
        bootstrap: vec![broker.to_string()],
        retry_backoff: Duration::from_millis(20),
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    configure(&mut config);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        vltava_gateway::run(config, listener, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running { addr, stop: Some(tx), task: Some(task) }
}

/// A broker configuration for tests: data under `dir/broker`, and 3 partitions of
/// `__consumer_offsets` and `__transaction_state` instead of Kafka's 50 (each partition is a log
/// opened on the first group or transactional call).
pub fn test_broker_config(dir: &std::path::Path) -> BrokerConfig {
    let mut config = BrokerConfig { data_dir: dir.join("broker"), ..Default::default() };
    config.groups.offsets_topic_num_partitions = 3;
    config.transactions.state_topic_num_partitions = 3;
    config
}

/// What a stopped [`TestBroker`] leaves: its data directory and its cluster's metadata, to start
/// it again with [`TestBroker::restart`].
pub struct StoppedBroker {
    /// The data directory (the broker's logs and offsets under `broker/`).
    pub dir: tempfile::TempDir,
    /// The cluster's metadata.
    pub metadata: Arc<MemoryMetadata>,
}

/// One in-process broker with its own data directory.
pub struct TestBroker {
    /// The broker's address.
    pub addr: String,
    /// Its data directory.
    pub dir: tempfile::TempDir,
    /// The cluster's metadata.
    pub metadata: Arc<MemoryMetadata>,
    running: Running,
}

impl TestBroker {
    /// A broker with a fresh data directory, its configuration adjusted by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut BrokerConfig)) -> Self {
        let stopped = StoppedBroker { dir: tempfile::tempdir().unwrap(), metadata: memory_metadata() };
        Self::restart(stopped, tweak).await
    }

    /// Starts a broker again on what an earlier one left.
    pub async fn restart(stopped: StoppedBroker, tweak: impl FnOnce(&mut BrokerConfig)) -> Self {
        let StoppedBroker { dir, metadata } = stopped;
        let mut config = test_broker_config(dir.path());
        tweak(&mut config);
        let running = start_broker(config, metadata.clone()).await;
        Self { addr: running.addr.clone(), dir, metadata, running }
    }

    /// Stops the broker cleanly and returns what a restart needs.
    pub async fn stop(mut self) -> StoppedBroker {
        self.running.stop().await;
        StoppedBroker { dir: self.dir, metadata: self.metadata }
    }

    /// A RecordService client (64 MiB responses).
    pub async fn records(&self) -> RecordServiceClient<Channel> {
        RecordServiceClient::new(self.running.channel().await).max_decoding_message_size(64 << 20)
    }

    /// An AdminService client.
    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.running.channel().await)
    }

    /// A GroupService client.
    pub async fn groups(&self) -> GroupServiceClient<Channel> {
        GroupServiceClient::new(self.running.channel().await)
    }

    /// A TransactionService client.
    pub async fn transactions(&self) -> TransactionServiceClient<Channel> {
        TransactionServiceClient::new(self.running.channel().await)
    }

    /// Creates a topic with one replica and these configs.
    pub async fn create_topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        self.admin()
            .await
            .create_topic(CreateTopicRequest {
                name: name.into(),
                partitions,
                replication_factor: 1,
                configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                validate_only: false,
            })
            .await
            .unwrap();
    }

    /// Produces `n` records `"{prefix}-{i}"` in one batch with `acks=all`; returns the base offset.
    /// Records carry the current time (old timestamps would roll a segment per append, by segment.ms).
    pub async fn produce(&self, topic: &str, partition: i32, prefix: &str, n: usize) -> i64 {
        let req = ProduceRequest {
            topic: topic.into(),
            partition,
            acks: -1,
            timeout_ms: 0,
            records: batch(prefix, n, vltava_common::time::now_ms()),
        };
        self.records().await.produce(req).await.unwrap().into_inner().base_offset
    }
}

/// A broker and a gateway bootstrapped from it.
pub struct Cluster {
    /// The broker.
    pub broker: Running,
    /// The gateway.
    pub gateway: Running,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// A broker and a gateway with default configurations.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A cluster whose gateway configuration `configure` adjusts first.
    pub async fn start_with(configure: impl FnOnce(&mut GatewayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = test_broker_config(dir.path());
        let broker = start_broker(config, memory_metadata()).await;
        let gateway = start_gateway(&broker.addr, configure).await;
        Self { broker, gateway, _dir: dir }
    }

    /// Stops the gateway, then the broker, each within a timeout.
    pub async fn stop(mut self) {
        self.gateway.stop().await;
        self.broker.stop().await;
    }

    /// A channel to the gateway.
    pub async fn channel(&self) -> Channel {
        self.gateway.channel().await
    }

    /// A RecordService client of the gateway (64 MiB responses).
    pub async fn records(&self) -> RecordServiceClient<Channel> {
        RecordServiceClient::new(self.channel().await).max_decoding_message_size(64 << 20)
    }

    /// An AdminService client of the gateway.
    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }

    /// A GroupService client of the gateway.
    pub async fn groups(&self) -> GroupServiceClient<Channel> {
        GroupServiceClient::new(self.channel().await)
    }

    /// Produces `records` with `acks=all` through the gateway.
    pub async fn produce(&self, topic: &str, partition: i32, records: Bytes) -> Result<ProduceResponse, Status> {
        let req = ProduceRequest { topic: topic.into(), partition, acks: -1, timeout_ms: 0, records };
        bounded(self.records().await.produce(req)).await.map(|r| r.into_inner())
    }

    /// Creates a topic with one replica through the gateway.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> CreateTopicResponse {
        let req = CreateTopicRequest { name: name.into(), partitions, replication_factor: 1, ..Default::default() };
        bounded(self.admin().await.create_topic(req)).await.unwrap().into_inner()
    }
}

/// `f`, failing the test if it takes longer than [`WAIT`].
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("call answers in time")
}

/// The Kafka error code name a server put on a failed call.
pub fn code(status: &Status) -> String {
    status.metadata().get("vltava-error-code").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// A batch of `n` records with keys `"k{i}"`, values `"{prefix}-{i}"` and timestamps `ts + i`.
pub fn batch(prefix: &str, n: usize, ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..n {
        b.append(ts + i as i64, Some(format!("k{i}").as_bytes()), Some(format!("{prefix}-{i}").as_bytes()), &[]);
    }
    b.build()
}

/// Decodes every record of `records` into (offset, value).
pub fn values(records: &Bytes) -> Vec<(i64, String)> {
    vltava_record::batches(records.clone())
        .flat_map(|b| b.unwrap().records().unwrap())
        .map(|r| (r.offset, String::from_utf8(r.value.unwrap().to_vec()).unwrap()))
        .collect()
}
