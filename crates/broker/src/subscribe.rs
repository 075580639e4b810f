//! Server-streaming subscription to one partition: batches are pushed as the high watermark
//! moves. The channel to the client is small (4 messages), so a slow client slows the reads
//! instead of buffering without bound.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{PartitionRecords, SubscribeRequest};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::{Isolation, read_end};

/// Earliest offset, as Kafka's ListOffsets spells it.
pub const EARLIEST: i64 = -2;
/// Latest offset.
pub const LATEST: i64 = -1;

/// The stream type of a subscription.
pub type SubscribeStream = ReceiverStream<Result<PartitionRecords, Status>>;

/// Starts streaming the partition from the requested offset.
pub fn handle(broker: &Broker, req: SubscribeRequest) -> Result<SubscribeStream, BrokerError> {
    let part = broker.replicas.leader_partition(&req.topic, req.partition)?;
    let isolation = Isolation::from_proto(req.isolation_level);
    let mut offset = match req.offset {
        EARLIEST => part.log_start_offset(),
        LATEST if isolation == Isolation::ReadCommitted => part.last_stable_offset(),
        LATEST => part.high_watermark(),
        o if o >= 0 => o,
        o => return Err(BrokerError::InvalidRequest(format!("offset {o} is not -2 (earliest), -1 (latest) or >= 0"))),
    };
    let max_bytes = match req.max_bytes {
        m if m > 0 => (m as usize).min(broker.config.fetch_max_bytes),
        _ => 1024 * 1024,
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut hw = part.watch_high_watermark();
        loop {
            // A partition this broker stopped leading ends the stream: the client resubscribes
            // at the new leader.
            if let Err(e) = part.ensure_leader() {
                let _ = tx.send(Err(WireError::from(e).into_status())).await;
                return;
            }
            let reader = Arc::clone(&part);
            let read = tokio::task::spawn_blocking(move || reader.read_blocking(offset, max_bytes, isolation)).await;
            let read = match read {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(WireError::from(e).into_status())).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                    return;
                }
            };
            let (aborted_transactions, last_stable_offset) = (read.aborted_transactions(), read.last_stable_offset);
            let read = read.read;
            match read_end(&read.records) {
                Some(next) => {
                    offset = next;
                    crate::metrics::get().bytes_out.add(read.records.len() as u64, &[]);
                    let msg = PartitionRecords {
                        topic: part.topic().to_string(),
                        partition: part.index(),
                        error_code: ErrorCode::None as i32,
                        error_message: String::new(),
                        high_watermark: part.high_watermark(),
                        log_start_offset: read.log_start_offset,
                        records: read.records,
                        last_stable_offset,
                        aborted_transactions,
                    };
                    if tx.send(Ok(msg)).await.is_err() {
                        return;
                    }
                }
                None => {
                    tokio::select! {
                        r = hw.changed() => if r.is_err() { return },
                        _ = tx.closed() => return,
                    }
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
