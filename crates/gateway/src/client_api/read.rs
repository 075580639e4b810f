//! Read: earliest/latest offsets resolved with ListOffsets on the leaders, the partitions fetched
//! from their leaders (one Fetch per leader, [`Brokers::fetch`]), and the batches decoded into
//! records by the rules every consumer shares ([`vltava_record::decode_fetched`]).
//!
//! [`resolve`] and [`fetch_records`] are also the machinery of Consume streams.

use tonic::Status;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{
    FetchPartition, FetchRequest, ListOffsetsPartition, ListOffsetsRequest, PartitionRead, PartitionRecords,
    ReadRequest, ReadResponse,
};

use vltava_record::AbortedTransaction;

use super::convert;
use crate::brokers::Brokers;
use crate::routing::MAX_FETCH_WAIT;

/// Record data fetched at once when a request does not say (1 MiB).
pub(super) const DEFAULT_MAX_BYTES: usize = 1 << 20;

/// How much one fetch may wait for and return.
#[derive(Debug, Clone, Copy)]
pub(super) struct FetchLimits {
    /// Longest wait for records, in milliseconds (at most [`MAX_FETCH_WAIT`]).
    pub max_wait_ms: i32,
    /// Largest amount of record data in all.
    pub max_bytes: i32,
    /// Most records returned per partition.
    pub max_records: usize,
    /// `vltava.v1.IsolationLevel`: READ_COMMITTED reads to the last stable offset and drops the
    /// records of aborted transactions.
    pub isolation_level: i32,
}

/// Reads the requested partitions; see the module documentation. Each partition succeeds or fails
/// on its own; only a malformed request fails the call.
pub(super) async fn handle(brokers: &Brokers, request: ReadRequest) -> Result<ReadResponse, Status> {
    let ReadRequest { partitions, max_wait_ms, max_records, max_bytes, isolation_level } = request;
    if partitions.is_empty() {
        return Err(convert::invalid("a read needs at least one partition"));
    }
    for p in &partitions {
        convert::check_topic(&p.topic)?;
        if p.offset < convert::EARLIEST {
            return Err(convert::invalid(format!(
                "offset {} of {}-{} is not -2 (earliest), -1 (latest) or an offset",
                p.offset, p.topic, p.partition
            )));
        }
    }
    if max_wait_ms < 0 {
        return Err(convert::invalid(format!("max_wait_ms must not be negative, got {max_wait_ms}")));
    }
    let limits = FetchLimits {
        max_wait_ms: max_wait_ms.min(MAX_FETCH_WAIT.as_millis() as i32),
        max_bytes: i32::try_from(convert::count_or(max_bytes, "max_bytes", DEFAULT_MAX_BYTES)?).unwrap_or(i32::MAX),
        max_records: convert::count_or(max_records, "max_records", usize::MAX)?,
        isolation_level: convert::isolation(isolation_level)?,
    };

    let wanted: Vec<(&str, i32, i64)> = partitions.iter().map(|p| (p.topic.as_str(), p.partition, p.offset)).collect();
    let positions = resolve(brokers, &wanted, isolation_level).await;
    let mut out: Vec<PartitionRead> = Vec::with_capacity(partitions.len());
    let mut fetched_at = Vec::new();
    let mut fetches = Vec::new();
    for (p, position) in partitions.iter().zip(positions) {
        match position {
            Ok(offset) => {
                fetched_at.push(out.len());
                fetches.push(FetchPartition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    fetch_offset: offset,
                    partition_max_bytes: 0,
                });
                out.push(PartitionRead::default());
            }
            Err(e) => out.push(failed(&p.topic, p.partition, p.offset, e)),
        }
    }
    for (i, read) in fetched_at.into_iter().zip(fetch_records(brokers, fetches, limits).await) {
        out[i] = read;
    }
    Ok(ReadResponse { partitions: out })
}

/// Resolves `(topic, partition, spec)` triples, where the spec is -2 (earliest), -1 (latest: the
/// last stable offset for READ_COMMITTED) or an offset, to offsets: one ListOffsets per leader
/// for the specs, answers in input order.
pub(super) async fn resolve(
    brokers: &Brokers,
    wanted: &[(&str, i32, i64)],
    isolation_level: i32,
) -> Vec<Result<i64, WireError>> {
    let lookups: Vec<ListOffsetsPartition> = wanted
        .iter()
        .filter(|w| w.2 < 0)
        .map(|&(topic, partition, timestamp)| ListOffsetsPartition { topic: topic.to_string(), partition, timestamp })
        .collect();
    let answers = if lookups.is_empty() {
        Ok(Vec::new())
    } else {
        brokers.list_offsets(ListOffsetsRequest { partitions: lookups, isolation_level }).await.map(|r| r.partitions)
    };
    let mut answers = match answers {
        Ok(answers) => answers.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
        Err(status) => {
            let e = WireError::from_status(&status);
            wanted.iter().filter(|w| w.2 < 0).map(|_| Err(e.clone())).collect::<Vec<_>>().into_iter()
        }
    };
    wanted
        .iter()
        .map(|&(topic, partition, spec)| {
            if spec >= 0 {
                return Ok(spec);
            }
            let answer = answers.next().unwrap_or_else(|| {
                Err(WireError::new(
                    ErrorCode::UnknownServerError,
                    format!("no offset returned for {topic}-{partition}"),
                ))
            })?;
            match code_of(answer.error_code) {
                ErrorCode::None => Ok(answer.offset),
                code => Err(WireError::new(code, answer.error_message)),
            }
        })
        .collect()
}

/// Fetches `partitions` from their positions on their leaders (one Fetch per leader,
/// concurrently) and decodes what comes back; one answer per partition, in order.
pub(super) async fn fetch_records(
    brokers: &Brokers,
    partitions: Vec<FetchPartition>,
    limits: FetchLimits,
) -> Vec<PartitionRead> {
    if partitions.is_empty() {
        return Vec::new();
    }
    let positions: Vec<i64> = partitions.iter().map(|p| p.fetch_offset).collect();
    let keys: Vec<(String, i32)> = partitions.iter().map(|p| (p.topic.clone(), p.partition)).collect();
    let request = FetchRequest {
        max_wait_ms: limits.max_wait_ms,
        min_bytes: 1,
        max_bytes: limits.max_bytes,
        partitions,
        isolation_level: limits.isolation_level,
    };
    match brokers.fetch(request).await {
        Ok(response) => response
            .partitions
            .into_iter()
            .zip(positions)
            .map(|(answer, position)| decode(answer, position, limits.max_records))
            .collect(),
        Err(status) => {
            let e = WireError::from_status(&status);
            keys.iter().zip(positions).map(|((topic, p), position)| failed(topic, *p, position, e.clone())).collect()
        }
    }
}

/// One partition's fetched batches as records from `position` on, at most `max_records` of them.
/// Batches that do not decode make the partition `CORRUPT_MESSAGE`.
fn decode(answer: PartitionRecords, position: i64, max_records: usize) -> PartitionRead {
    let PartitionRecords {
        topic,
        partition,
        error_code,
        error_message,
        high_watermark,
        log_start_offset,
        records,
        last_stable_offset: _,
        aborted_transactions,
    } = answer;
    let aborted: Vec<AbortedTransaction> = aborted_transactions
        .iter()
        .map(|a| AbortedTransaction { producer_id: a.producer_id, first_offset: a.first_offset })
        .collect();
    let mut read = PartitionRead {
        error_code,
        error_message,
        records: Vec::new(),
        next_offset: position,
        high_watermark,
        log_start_offset,
        topic,
        partition,
    };
    if error_code != ErrorCode::None as i32 {
        return read;
    }
    // The broker checked each batch's CRC when it was produced.
    match vltava_record::decode_fetched_committed(records, position, false, &aborted) {
        Ok(mut fetched) => {
            read.next_offset = fetched.next_offset;
            if fetched.records.len() > max_records {
                fetched.records.truncate(max_records);
                read.next_offset = fetched.records.last().map_or(position, |r| r.offset + 1);
            }
            read.records =
                fetched.records.into_iter().map(|r| convert::consumed(&read.topic, read.partition, r)).collect();
        }
        Err(e) => {
            read.error_code = ErrorCode::CorruptMessage as i32;
            read.error_message = format!("{}-{} at offset {position}: {e}", read.topic, read.partition);
        }
    }
    read
}

/// The answer for a partition that could not be read from `position`.
fn failed(topic: &str, partition: i32, position: i64, e: WireError) -> PartitionRead {
    PartitionRead {
        topic: topic.to_string(),
        partition,
        error_code: e.code as i32,
        error_message: e.message,
        records: Vec::new(),
        next_offset: position,
        high_watermark: e.high_watermark,
        log_start_offset: e.log_start_offset,
    }
}

/// The error code of a per-partition answer (unknown codes are server errors).
pub(super) fn code_of(code: i32) -> ErrorCode {
    ErrorCode::try_from(code).unwrap_or(ErrorCode::UnknownServerError)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use vltava_record::{BatchBuilder, Compression};

    use super::*;

    fn answer(records: Bytes) -> PartitionRecords {
        PartitionRecords {
            topic: "t".into(),
            partition: 1,
            high_watermark: 10,
            log_start_offset: 0,
            records,
            ..Default::default()
        }
    }

    fn batch(base: i64, n: usize) -> Bytes {
        let mut b = BatchBuilder::new(Compression::Zstd);
        for i in 0..n {
            b.append(100 + i as i64, None, Some(format!("v{i}").as_bytes()), &[]);
        }
        b.build_at(base)
    }

    #[test]
    fn records_below_the_position_are_skipped_and_max_records_sets_the_next_offset() {
        let read = decode(answer(batch(4, 6)), 6, usize::MAX);
        let offsets: Vec<i64> = read.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![6, 7, 8, 9]);
        assert_eq!((read.next_offset, read.high_watermark), (10, 10));
        assert_eq!(read.records[0].value.as_deref(), Some(&b"v2"[..]));

        let read = decode(answer(batch(4, 6)), 6, 3);
        assert_eq!(read.records.len(), 3);
        assert_eq!(read.next_offset, 9);
    }

    #[test]
    fn undecodable_batches_make_the_partition_corrupt() {
        let read = decode(answer(Bytes::from_static(&[1u8; 30])), 3, usize::MAX);
        assert_eq!(read.error_code, ErrorCode::CorruptMessage as i32);
        assert!(read.records.is_empty());
        assert_eq!(read.next_offset, 3);
        assert!(read.error_message.starts_with("t-1 at offset 3"), "{}", read.error_message);
    }

    #[test]
    fn partition_errors_pass_through_with_the_position() {
        let mut a = answer(Bytes::new());
        a.error_code = ErrorCode::OffsetOutOfRange as i32;
        let read = decode(a, 42, usize::MAX);
        assert_eq!((read.error_code, read.next_offset), (ErrorCode::OffsetOutOfRange as i32, 42));
    }
}
