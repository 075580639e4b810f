//! Fetch: partitions grouped by leader, one Fetch per leader concurrently, merged in request order.

use tonic::Status;
use vltava_proto::v1::{ErrorCode, FetchPartition, FetchRequest, FetchResponse, PartitionRecords};

use crate::routing::Router;

/// Reads the requested partitions from their leaders. Each leader gets the request's `max_wait_ms`,
/// `min_bytes` and `max_bytes` for its share of the partitions. A partition whose topic is unknown
/// (or whose leader's call failed) gets a per-partition `error_code` rather than failing the call.
pub async fn handle(router: &Router, request: FetchRequest) -> Result<FetchResponse, Status> {
    let FetchRequest { max_wait_ms, min_bytes, max_bytes, partitions } = request;
    let max_wait_ms = max_wait_ms.clamp(0, crate::routing::MAX_FETCH_WAIT.as_millis() as i32);
    let partitions = router
        .scatter_gather(
            &partitions,
            |p: &FetchPartition| (p.topic.as_str(), p.partition),
            failed,
            |r: &PartitionRecords| r.error_code,
            |channel, partitions| {
                let mut client = router.records(channel);
                let sub = FetchRequest { max_wait_ms, min_bytes, max_bytes, partitions };
                async move { client.fetch(sub).await.map(|r| r.into_inner().partitions) }
            },
        )
        .await;
    Ok(FetchResponse { partitions })
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
