//! [`Broker`]: the state of a running broker that every handler reads.
//!
//! Handlers depend on this file, never on the gRPC server (`server.rs`), so a second front door
//! (the Kafka protocol listener) can call the same handlers with the same state.

use std::sync::Arc;
use std::time::Duration;

use vltava_metadata::MetadataService;

use crate::config::BrokerConfig;
use crate::groups::coordinator::GroupCoordinator;
use crate::replica_manager::ReplicaManager;
use crate::transactions::coordinator::TransactionCoordinator;
use crate::transactions::producer_ids::ProducerIdManager;

/// How long an admin call waits for this broker to apply its own metadata change.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of a running broker, handed to every handler.
pub struct Broker {
    /// Configuration.
    pub config: Arc<BrokerConfig>,
    /// Hosted partitions.
    pub replicas: Arc<ReplicaManager>,
    /// Cluster metadata.
    pub metadata: Arc<dyn MetadataService>,
    /// The group coordinator (the `__consumer_offsets` partitions this broker leads).
    pub groups: Arc<GroupCoordinator>,
    /// This broker's block of producer ids.
    pub producer_ids: Arc<ProducerIdManager>,
    /// The transaction coordinator (the `__transaction_state` partitions this broker leads).
    pub transactions: Arc<TransactionCoordinator>,
}

impl Broker {
    /// Waits (at most 10 s) until this broker has applied metadata `version`, so that a call that
    /// changed the metadata answers only once this broker serves the change. Returns whether it did.
    pub async fn applied(&self, version: u64) -> bool {
        self.replicas.wait_for_version(version, APPLY_TIMEOUT).await
    }
}
