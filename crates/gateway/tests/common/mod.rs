//! A real in-process broker (real sockets, RocksDB metadata, logs) and a gateway in front of it,
//! both on 127.0.0.1:0, for the gateway's API tests.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::transport::Channel;
use vltava_broker::BrokerConfig;
use vltava_controller::Controller;
use vltava_gateway::GatewayConfig;
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::record_service_client::RecordServiceClient;
use vltava_proto::v1::*;

/// Longest time any single step of a test may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running server task and the means to stop it.
pub struct Running {
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("server stops in time").unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A broker on 127.0.0.1:0 and a gateway on 127.0.0.1:0 bootstrapped from it.
pub struct Cluster {
    pub broker: Running,
    pub gateway: Running,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A cluster whose gateway configuration `configure` adjusts first.
    pub async fn start_with(configure: impl FnOnce(&mut GatewayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker_addr = listener.local_addr().unwrap().to_string();
        let config =
            BrokerConfig { data_dir: dir.path().join("broker"), listen: broker_addr.clone(), ..Default::default() };
        let controller = Controller::start_single(dir.path().join("metadata"), 1, None).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let metadata: Arc<dyn vltava_controller::MetadataService> = controller.clone();
            vltava_broker::run(config, metadata, listener, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
            // Close the metadata store so the same directory can be opened again.
            controller.stop().await;
        });
        let broker = Running { addr: broker_addr.clone(), stop: Some(tx), task: Some(task) };

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway_addr = listener.local_addr().unwrap().to_string();
        let mut config = GatewayConfig {
            listen: gateway_addr.clone(),
            bootstrap: vec![broker_addr],
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
        let gateway = Running { addr: gateway_addr, stop: Some(tx), task: Some(task) };
        Self { broker, gateway, _dir: dir }
    }

    /// Stops the gateway, then the broker, each within a timeout.
    pub async fn stop(mut self) {
        self.gateway.stop().await;
        self.broker.stop().await;
    }

    pub async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(format!("http://{}", self.gateway.addr)).unwrap();
        tokio::time::timeout(WAIT, endpoint.connect()).await.expect("gateway reachable in time").unwrap()
    }

    pub async fn records(&self) -> RecordServiceClient<Channel> {
        RecordServiceClient::new(self.channel().await).max_decoding_message_size(64 << 20)
    }

    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }

    pub async fn groups(&self) -> GroupServiceClient<Channel> {
        GroupServiceClient::new(self.channel().await)
    }

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
