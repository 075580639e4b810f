//! The fetch path: read committed batches from several partitions, long-polling until
//! `min_bytes` are available or `max_wait_ms` passes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{FetchRequest, FetchResponse, PartitionRecords};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::long_poll;
use crate::partition::{Isolation, Partition};

/// Reads the requested partitions, waiting for data as the request allows.
pub async fn handle(broker: &Broker, req: FetchRequest) -> Result<FetchResponse, BrokerError> {
    if req.partitions.is_empty() {
        return Err(BrokerError::InvalidRequest("the fetch names no partition".into()));
    }
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(broker.config.fetch_max_wait);
    let deadline = tokio::time::Instant::now() + max_wait;
    let max_bytes = match req.max_bytes {
        m if m > 0 => (m as usize).min(broker.config.fetch_max_bytes),
        _ => broker.config.fetch_max_bytes,
    };
    let min_bytes = req.min_bytes.max(0) as usize;
    let isolation = Isolation::from_proto(req.isolation_level);
    let targets: Vec<Target> = req
        .partitions
        .iter()
        .map(|p| Target {
            topic: p.topic.clone(),
            partition: p.partition,
            offset: p.fetch_offset,
            max_bytes: if p.partition_max_bytes > 0 { p.partition_max_bytes as usize } else { max_bytes },
            part: broker.replicas.leader_partition(&p.topic, p.partition).map_err(WireError::from),
        })
        .collect();
    let targets = Arc::new(targets);
    // Subscribe before the first read so that no append between read and wait is missed.
    let watches = targets.iter().filter_map(|t| t.part.as_ref().ok()).map(|p| p.watch_high_watermark()).collect();
    let (partitions, bytes) = long_poll::poll(watches, deadline, move || {
        let (partitions, bytes, failed) = read_all(&targets, max_bytes, isolation);
        let done = bytes >= min_bytes.max(1) || min_bytes == 0 || failed;
        ((partitions, bytes), done)
    })
    .await?;
    crate::metrics::get().bytes_out.add(bytes as u64, &[]);
    Ok(FetchResponse { partitions })
}

struct Target {
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    part: Result<Arc<Partition>, WireError>,
}

/// Reads every target within the response budget; returns the results, their total size and
/// whether any partition failed.
fn read_all(targets: &[Target], max_bytes: usize, isolation: Isolation) -> (Vec<PartitionRecords>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0;
    let mut failed = false;
    let out = targets
        .iter()
        .map(|t| {
            let mut r = PartitionRecords {
                topic: t.topic.clone(),
                partition: t.partition,
                error_code: ErrorCode::None as i32,
                error_message: String::new(),
                high_watermark: -1,
                log_start_offset: -1,
                records: Bytes::new(),
                last_stable_offset: -1,
                aborted_transactions: Vec::new(),
            };
            let part = match &t.part {
                Ok(p) => p,
                Err(e) => {
                    failed = true;
                    set_error(&mut r, e.clone());
                    return r;
                }
            };
            r.high_watermark = part.high_watermark();
            r.log_start_offset = part.log_start_offset();
            r.last_stable_offset = part.last_stable_offset();
            // Once the budget is spent, the remaining partitions answer with positions only
            // (but the first partition with data always returns at least one batch).
            if remaining == 0 && total > 0 {
                return r;
            }
            match part.read_blocking(t.offset, t.max_bytes.min(remaining.max(1)), isolation) {
                Ok(got) => {
                    r.aborted_transactions = got.aborted_transactions();
                    let read = got.read;
                    remaining = remaining.saturating_sub(read.records.len());
                    total += read.records.len();
                    r.log_start_offset = read.log_start_offset;
                    r.last_stable_offset = got.last_stable_offset;
                    r.records = read.records;
                }
                Err(e) => {
                    failed = true;
                    set_error(&mut r, WireError::from(e));
                }
            }
            r
        })
        .collect();
    (out, total, failed)
}

/// Fills a partition result's error fields.
pub fn set_error(r: &mut PartitionRecords, e: WireError) {
    r.error_code = e.code as i32;
    r.error_message = e.to_string();
    if e.code == ErrorCode::OffsetOutOfRange {
        r.log_start_offset = e.log_start_offset;
        r.high_watermark = e.high_watermark;
    }
}
