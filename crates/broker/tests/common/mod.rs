//! An in-process broker on 127.0.0.1:0 with a real RocksDB metadata store, for API tests.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use vltava_broker::BrokerConfig;
use vltava_controller::Controller;
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::record_service_client::RecordServiceClient;
use vltava_proto::v1::{CreateTopicRequest, ProduceRequest};
use vltava_record::{BatchBuilder, Compression};

pub struct TestBroker {
    pub addr: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start(tweak: impl FnOnce(&mut BrokerConfig)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), tweak).await
    }

    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut BrokerConfig)) -> Self {
        let mut config = BrokerConfig { data_dir: dir.path().join("broker"), ..Default::default() };
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        config.listen = addr.clone();
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
        Self { addr, dir, stop: Some(tx), task: Some(task) }
    }

    /// Stops the broker cleanly and returns its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown().await;
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task).await.expect("broker stops").unwrap();
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap()
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

    /// Produces `n` records `"{prefix}-{i}"` in one batch; returns the base offset.
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

/// A batch of `n` records with values `"{prefix}-{i}"` and timestamps `ts + i`.
pub fn batch(prefix: &str, n: usize, ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..n {
        b.append(ts + i as i64, Some(format!("k{i}").as_bytes()), Some(format!("{prefix}-{i}").as_bytes()), &[]);
    }
    b.build()
}

/// Decodes every record value in `records`.
pub fn values(records: &Bytes) -> Vec<(i64, String)> {
    vltava_record::batches(records.clone())
        .flat_map(|b| b.unwrap().records().unwrap())
        .map(|r| (r.offset, String::from_utf8(r.value.unwrap().to_vec()).unwrap()))
        .collect()
}

/// The Kafka error code name of a failed call.
pub fn code(status: &tonic::Status) -> String {
    status.metadata().get("vltava-error-code").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
