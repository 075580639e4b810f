//! ListOffsets: earliest, latest (the high watermark, or the last stable offset for
//! READ_COMMITTED), the first offset at or after a time, or the record with the largest
//! timestamp (Kafka's `MAX_TIMESTAMP`, KIP-734).

use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::Isolation;
use crate::subscribe::{EARLIEST, LATEST};

/// Kafka's ListOffsets timestamp for the record with the largest timestamp (KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;
/// Kafka's ListOffsets timestamp for the earliest offset on local disk (KIP-405): with no
/// tiered storage, the log start offset.
pub const EARLIEST_LOCAL: i64 = -4;

/// Answers each requested partition.
pub async fn handle(broker: &Broker, req: ListOffsetsRequest) -> Result<ListOffsetsResponse, BrokerError> {
    let isolation = Isolation::from_proto(req.isolation_level);
    let mut out = Vec::with_capacity(req.partitions.len());
    for p in req.partitions {
        let mut r = ListOffsetsPartitionResponse {
            topic: p.topic.clone(),
            partition: p.partition,
            error_code: ErrorCode::None as i32,
            error_message: String::new(),
            offset: -1,
            timestamp: -1,
        };
        match lookup(broker, &p.topic, p.partition, p.timestamp, isolation).await {
            Ok((offset, timestamp)) => {
                r.offset = offset;
                r.timestamp = timestamp;
            }
            Err(e) => {
                let e = WireError::from(e);
                r.error_code = e.code as i32;
                r.error_message = e.to_string();
            }
        }
        out.push(r);
    }
    Ok(ListOffsetsResponse { partitions: out })
}

async fn lookup(
    broker: &Broker,
    topic: &str,
    partition: i32,
    timestamp: i64,
    isolation: Isolation,
) -> Result<(i64, i64), BrokerError> {
    let part = broker.replicas.leader_partition(topic, partition)?;
    match timestamp {
        EARLIEST | EARLIEST_LOCAL => Ok((part.log_start_offset(), -1)),
        LATEST if isolation == Isolation::ReadCommitted => Ok((part.last_stable_offset(), -1)),
        LATEST => Ok((part.high_watermark(), -1)),
        ts if ts >= 0 => {
            let found = tokio::task::spawn_blocking(move || part.offset_for_timestamp_blocking(ts, isolation))
                .await
                .map_err(|e| BrokerError::Internal(e.to_string()))??;
            Ok(found.unwrap_or((-1, -1)))
        }
        MAX_TIMESTAMP => {
            let found = tokio::task::spawn_blocking(move || part.offset_of_max_timestamp_blocking(isolation))
                .await
                .map_err(|e| BrokerError::Internal(e.to_string()))??;
            Ok(found.unwrap_or((-1, -1)))
        }
        other => Err(BrokerError::InvalidRequest(format!(
            "timestamp {other} is not -2 (earliest), -1 (latest), -3 (max timestamp), -4 (earliest local) \
             or a time in milliseconds"
        ))),
    }
}
