//! The metadata service as brokers and admin handlers see it.

use std::sync::Arc;

use tokio::sync::watch;

use crate::error::MetadataError;
use crate::model::{BrokerRegistration, ClusterImage, CreateTopic, TopicMetadata};

/// Cluster metadata: reads come from the latest [`ClusterImage`], writes are agreed on by the
/// implementation (a local store for `vltava dev`, the Raft quorum in a cluster).
#[async_trait::async_trait]
pub trait MetadataService: Send + Sync + 'static {
    /// Creates a topic, placing its replicas and choosing leaders. Returns the topic and the
    /// version of the image that contains it.
    async fn create_topic(&self, request: CreateTopic) -> Result<(Arc<TopicMetadata>, u64), MetadataError>;

    /// Deletes a topic. Returns the version of the image without it.
    async fn delete_topic(&self, name: &str) -> Result<u64, MetadataError>;

    /// Registers (or re-registers) a broker. Returns the image version that contains it.
    async fn register_broker(&self, registration: BrokerRegistration) -> Result<u64, MetadataError>;

    /// The latest image.
    fn image(&self) -> Arc<ClusterImage>;

    /// A watch that sees every new image.
    fn watch(&self) -> watch::Receiver<Arc<ClusterImage>>;
}
