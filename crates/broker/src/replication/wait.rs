//! Waiting for `acks=all`: until the high watermark covers the appended records. Used by the
//! produce path and by coordinator shards writing their internal topic.

use std::time::Duration;

use crate::error::BrokerError;
use crate::partition::Partition;

/// Waits until the high watermark covers `wanted` (every ISR member has the records). Fails when
/// this broker stops leading the partition meanwhile, when the ISR shrank below
/// `min.insync.replicas` before the records were replicated, or after `timeout`.
pub async fn wait_for_replication(
    part: &Partition,
    wanted: i64,
    leader_epoch: i32,
    timeout: Duration,
) -> Result<(), BrokerError> {
    let mut hw = part.watch_high_watermark();
    let waited = tokio::time::timeout(timeout, async {
        loop {
            if *hw.borrow_and_update() >= wanted {
                return part.ensure_leader_epoch(leader_epoch);
            }
            part.ensure_leader_epoch(leader_epoch)?;
            if hw.changed().await.is_err() {
                return Err(BrokerError::Internal("the partition was closed".into()));
            }
        }
    })
    .await;
    let state = waited.map_err(|_| BrokerError::Timeout(timeout.as_millis() as u64))??;
    if (state.isr.len() as i32) < state.min_insync_replicas {
        return Err(BrokerError::NotEnoughReplicasAfterAppend {
            topic: part.topic().to_string(),
            partition: part.index(),
            isr: state.isr.len(),
            min: state.min_insync_replicas,
        });
    }
    Ok(())
}
