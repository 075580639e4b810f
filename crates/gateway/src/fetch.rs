//! Fetch: partitions grouped by leader, one Fetch per leader concurrently, merged in request order.
//!
//! A long poll must not wait for the slowest leader: as soon as one leader answers with records
//! (or an error), the leaders still waiting are asked again with no wait, so the caller gets what
//! every leader has now, as a Kafka consumer fetching from each broker separately would.

use tokio::sync::watch;
use tonic::Status;
use vltava_proto::v1::{ErrorCode, FetchPartition, FetchRequest, FetchResponse, PartitionRecords};

use crate::routing::Router;

/// Reads the requested partitions from their leaders. Each leader gets the request's `max_wait_ms`,
/// `min_bytes` and `max_bytes` for its share of the partitions, and the call ends when the first
/// leader has something to return (see the module documentation). A partition whose topic is
/// unknown (or whose leader's call failed) gets a per-partition `error_code` rather than failing
/// the call.
pub async fn handle(router: &Router, request: FetchRequest) -> Result<FetchResponse, Status> {
    let FetchRequest { max_wait_ms, min_bytes, max_bytes, partitions } = request;
    let max_wait_ms = max_wait_ms.clamp(0, crate::routing::MAX_FETCH_WAIT.as_millis() as i32);
    // Set when a leader has answered with records or an error: the others stop waiting.
    let (answered, answered_rx) = watch::channel(false);
    let answered = &answered;
    let partitions = router
        .scatter_gather(
            &partitions,
            |p: &FetchPartition| (p.topic.as_str(), p.partition),
            failed,
            |r: &PartitionRecords| r.error_code,
            |channel, partitions| {
                let mut client = router.records(channel);
                let mut others = answered_rx.clone();
                let sub = FetchRequest { max_wait_ms, min_bytes, max_bytes, partitions };
                async move {
                    if max_wait_ms == 0 {
                        return client.fetch(sub).await.map(|r| r.into_inner().partitions);
                    }
                    let now = FetchRequest { max_wait_ms: 0, ..sub.clone() };
                    let mut waiting = client.clone();
                    tokio::select! {
                        result = waiting.fetch(sub) => {
                            let result = result.map(|r| r.into_inner().partitions);
                            let answer = match &result {
                                Ok(ps) => ps.iter().any(has_answer),
                                Err(_) => true,
                            };
                            if answer {
                                answered.send_replace(true);
                            }
                            result
                        }
                        // Another leader answered: drop this long poll, take what is here now.
                        // (The watch's guard is dropped inside the block, not held across the fetch.)
                        true = async { others.wait_for(|a| *a).await.is_ok() } => {
                            client.fetch(now).await.map(|r| r.into_inner().partitions)
                        }
                    }
                }
            },
        )
        .await;
    Ok(FetchResponse { partitions })
}

/// Whether a partition's answer is worth returning at once: records, or an error.
fn has_answer(p: &PartitionRecords) -> bool {
    !p.records.is_empty() || p.error_code != ErrorCode::None as i32
}

/// The answer for a partition that could not be read.
fn failed(p: &FetchPartition, code: ErrorCode, message: String) -> PartitionRecords {
    PartitionRecords {
        topic: p.topic.clone(),
        partition: p.partition,
        error_code: code as i32,
        error_message: message,
        high_watermark: -1,
        log_start_offset: -1,
        records: Default::default(),
    }
}
