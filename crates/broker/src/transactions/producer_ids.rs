//! [`ProducerIdManager`]: this broker's block of producer ids, refilled from the controller.
//!
//! Ids come in blocks that the controller quorum hands out through its log (KRaft's
//! `AllocateProducerIds`), so no two brokers, and no broker before and after a restart or a
//! controller failover, ever give out the same id. A block is used up one id at a time; the
//! next one is asked for when the current block is exhausted (the unused rest of a block is
//! simply lost when a broker restarts, as in Kafka).

use std::sync::Arc;

use vltava_metadata::MetadataService;

use crate::error::BrokerError;

/// The broker's current block: `[next, end)`.
#[derive(Debug, Default)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids (see the module documentation).
pub struct ProducerIdManager {
    broker_id: i32,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    metadata: Arc<dyn MetadataService>,
    block: tokio::sync::Mutex<Block>,
}

impl ProducerIdManager {
    /// A manager with no block yet; `broker_epoch` reads the current registration's epoch.
    pub fn new(
        broker_id: i32,
        broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
        metadata: Arc<dyn MetadataService>,
    ) -> Self {
        Self { broker_id, broker_epoch, metadata, block: tokio::sync::Mutex::new(Block::default()) }
    }

    /// The next unused producer id.
    ///
    /// # Errors
    ///
    /// The controller could not allocate a block (no quorum leader, a stale broker epoch): the
    /// metadata service's error, retriable where it is.
    pub async fn next_id(&self) -> Result<i64, BrokerError> {
        let mut block = self.block.lock().await;
        if block.next >= block.end {
            let fresh = self.metadata.allocate_producer_ids(self.broker_id, (self.broker_epoch)()).await?;
            tracing::info!(start = fresh.start, len = fresh.len, "allocated a block of producer ids");
            *block = Block { next: fresh.start, end: fresh.start + fresh.len };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}
