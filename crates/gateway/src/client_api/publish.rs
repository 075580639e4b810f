//! Publish: each record is placed on a partition, the records of a partition are encoded into
//! RecordBatch v2 batches, and every partition's batches go to its leader in one Produce, all
//! partitions concurrently.
//!
//! Placement is the Rust SDK's (Kafka's default partitioner, [`vltava_record::place`], which both
//! share): an explicit partition wins, a keyed record goes to `toPositive(murmur2(key)) %
//! partitions`, and the keyless records of one request all go to one partition, which rotates
//! round-robin from request to request (Kafka's sticky idea, with the request as the batch).
//! Leader changes are retried by [`Brokers::produce`].
//!
//! Inside a sampled trace (the caller sent a `traceparent`), every record without a `traceparent`
//! header gets the Publish span's, as the Rust SDK's producer does, so that consumers can link
//! their processing to the publish.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tonic::Status;
use vltava_common::telemetry::TRACEPARENT_HEADER;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::{ProduceRequest, PublishRequest, PublishResponse, PublishResult, Record};
use vltava_record::{BatchBuilder, Compression, Placement};

use super::{convert, topic};
use crate::brokers::Brokers;

/// Largest (uncompressed) batch the gateway builds: below Kafka's default `max.message.bytes`
/// (1 MiB + 12), so that a large publish is split rather than refused. A single larger record still
/// gets a batch of its own (and the broker's verdict on it).
const BATCH_BYTES: usize = 1_000_000;

/// Kafka's default `acks`: every in-sync replica.
const ACKS_ALL: i32 = -1;

/// The partition the keyless records of the next request of each topic go to.
#[derive(Debug, Default)]
pub(super) struct KeylessRotation {
    next: Mutex<HashMap<String, u32>>,
}

impl KeylessRotation {
    /// The partition for the keyless records of one request: the next one in turn, skipping
    /// partitions without a known leader when some partition has one.
    fn pick(&self, topic: &str, partitions: i32, has_leader: impl Fn(i32) -> bool) -> i32 {
        let start = {
            let mut next = self.next.lock();
            let counter = next.entry(topic.to_string()).or_default();
            let start = *counter;
            *counter = counter.wrapping_add(1);
            start
        };
        let first = (start % partitions as u32) as i32;
        (0..partitions).map(|i| (first + i) % partitions).find(|&p| has_leader(p)).unwrap_or(first)
    }
}

/// The partition a record goes to ([`vltava_record::place`], with `keyless` picking the partition
/// of a record with neither partition nor key), or why it cannot be placed.
fn place(record: &Record, partitions: i32, keyless: impl FnOnce() -> i32) -> Result<i32, String> {
    match vltava_record::place(record.partition, record.key.as_deref(), partitions) {
        Placement::Partition(p) => Ok(p),
        Placement::Keyless => Ok(keyless()),
        Placement::NoSuchPartition(p) => {
            Err(format!("partition {p} does not exist: the topic has partitions 0..{partitions}"))
        }
    }
}

/// The records bound for one partition: sealed batches, the batch being filled, and the request
/// positions of the records, in offset order.
struct PartitionBatches {
    sealed: BytesMut,
    open: BatchBuilder,
    codec: Compression,
    indices: Vec<usize>,
}

impl PartitionBatches {
    fn new(codec: Compression) -> Self {
        Self { sealed: BytesMut::new(), open: BatchBuilder::new(codec), codec, indices: Vec::new() }
    }

    fn append(&mut self, index: usize, timestamp: i64, record: &Record, trace: Option<&Bytes>) {
        let size = record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + record.headers.iter().map(|h| h.key.len() + h.value.len() + 10).sum::<usize>()
            + 24;
        if !self.open.is_empty() && self.open.estimated_size() + size > BATCH_BYTES {
            let full = std::mem::replace(&mut self.open, BatchBuilder::new(self.codec));
            self.sealed.extend_from_slice(&full.build());
        }
        let mut headers = convert::record_headers(&record.headers);
        if let Some(t) = trace
            && !record.headers.iter().any(|h| h.key == TRACEPARENT_HEADER)
        {
            headers.push(vltava_record::Header { key: TRACEPARENT_HEADER.to_string(), value: Some(t.clone()) });
        }
        self.open.append(timestamp, record.key.as_deref(), record.value.as_deref(), &headers);
        self.indices.push(index);
    }

    /// The request positions of the records, and their batches back to back, as one Produce
    /// carries them.
    fn finish(mut self) -> (Vec<usize>, Bytes) {
        if self.sealed.is_empty() {
            return (self.indices, self.open.build());
        }
        self.sealed.extend_from_slice(&self.open.build());
        (self.indices, self.sealed.freeze())
    }
}

/// Publishes the request's records; see the module documentation. A malformed request (bad topic
/// name, no records, unknown compression, bad `acks`) fails as a whole; anything that happens to
/// one partition (unknown topic, partition out of range, a broker error) is reported on that
/// partition's records only.
pub(super) async fn handle(
    brokers: &Brokers,
    rotation: &KeylessRotation,
    request: PublishRequest,
) -> Result<PublishResponse, Status> {
    let PublishRequest { topic, records, acks, timeout_ms, compression } = request;
    convert::check_topic(&topic)?;
    if records.is_empty() {
        return Err(convert::invalid("a publish needs at least one record"));
    }
    let codec = convert::codec(compression)?;
    let acks = acks.unwrap_or(ACKS_ALL);
    if !(-1..=1).contains(&acks) {
        let e = WireError::new(ErrorCode::InvalidRequiredAcks, format!("acks must be -1 (all), 0 or 1, got {acks}"));
        return Err(e.into_status());
    }
    let now = vltava_common::time::now_ms();
    let stamp = |r: &Record| if r.timestamp_ms == 0 { now } else { r.timestamp_ms };
    let router = brokers.router();
    let partitions = topic::partition_count(router, &topic).await?;
    if partitions == 0 {
        let message = format!("topic {topic:?} does not exist");
        let results =
            records.iter().map(|r| failed(-1, stamp(r), ErrorCode::UnknownTopicOrPartition, message.clone())).collect();
        return Ok(PublishResponse { results });
    }

    let view = router.view().await;
    // Once per request; each record's header shares the bytes.
    let trace = vltava_common::telemetry::current_traceparent().map(Bytes::from);
    let mut keyless = None;
    let mut results = Vec::with_capacity(records.len());
    let mut by_partition: BTreeMap<i32, PartitionBatches> = BTreeMap::new();
    for (index, record) in records.iter().enumerate() {
        let timestamp = stamp(record);
        let chosen = place(record, partitions, || {
            *keyless.get_or_insert_with(|| {
                rotation.pick(&topic, partitions, |p| view.cluster.leader_address(&topic, p).is_some())
            })
        });
        match chosen {
            Ok(partition) => {
                by_partition.entry(partition).or_insert_with(|| PartitionBatches::new(codec)).append(
                    index,
                    timestamp,
                    record,
                    trace.as_ref(),
                );
                results.push(PublishResult { partition, offset: -1, timestamp_ms: timestamp, ..Default::default() });
            }
            Err(message) => results.push(failed(
                record.partition.unwrap_or(-1),
                timestamp,
                ErrorCode::UnknownTopicOrPartition,
                message,
            )),
        }
    }

    let sends = by_partition.into_iter().map(|(partition, batches)| {
        let (indices, records) = batches.finish();
        let request = ProduceRequest { topic: topic.clone(), partition, acks, timeout_ms, records };
        async move { (indices, brokers.produce(request).await) }
    });
    for (indices, outcome) in futures::future::join_all(sends).await {
        match outcome {
            Ok(response) => {
                for (k, &i) in indices.iter().enumerate() {
                    let result = &mut results[i];
                    result.offset = if acks == 0 { -1 } else { response.base_offset + k as i64 };
                    if response.log_append_time_ms >= 0 {
                        result.timestamp_ms = response.log_append_time_ms;
                    }
                }
            }
            Err(status) => {
                let e = WireError::from_status(&status);
                for &i in &indices {
                    results[i].error_code = e.code as i32;
                    results[i].error_message.clone_from(&e.message);
                }
            }
        }
    }
    Ok(PublishResponse { results })
}

/// The result of a record that was not stored.
fn failed(partition: i32, timestamp_ms: i64, code: ErrorCode, message: String) -> PublishResult {
    PublishResult { partition, offset: -1, error_code: code as i32, error_message: message, timestamp_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &'static str) -> Record {
        Record { key: Some(Bytes::from_static(key.as_bytes())), ..Default::default() }
    }

    #[test]
    fn explicit_partitions_win_keys_hash_and_keyless_records_take_the_request_partition() {
        let explicit = Record { partition: Some(2), ..keyed("21") };
        assert_eq!(place(&explicit, 3, || unreachable!()), Ok(2));
        // Kafka's murmur2("21") = -973932308; toPositive = 1173551340; % 3 = 0.
        assert_eq!(place(&keyed("21"), 3, || unreachable!()), Ok(1_173_551_340 % 3));
        // An empty key is a key.
        let empty = place(&keyed(""), 7, || unreachable!()).unwrap();
        assert_eq!(empty, vltava_record::murmur2::partition_for_key(b"", 7) as i32);
        assert_eq!(place(&Record::default(), 3, || 1), Ok(1));
        let out_of_range = place(&Record { partition: Some(3), ..Default::default() }, 3, || 0).unwrap_err();
        assert!(out_of_range.contains("partition 3"), "{out_of_range}");
        assert!(place(&Record { partition: Some(-1), ..Default::default() }, 3, || 0).is_err());
    }

    #[test]
    fn keyless_rotation_goes_round_robin_per_topic_and_skips_leaderless_partitions() {
        let rotation = KeylessRotation::default();
        let picks: Vec<i32> = (0..4).map(|_| rotation.pick("a", 3, |_| true)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0]);
        assert_eq!(rotation.pick("b", 3, |_| true), 0, "each topic has its own turn");
        assert_eq!(rotation.pick("b", 3, |p| p != 1), 2, "partition 1 has no leader");
        assert_eq!(rotation.pick("b", 3, |_| false), 2, "no leader anywhere: the turn's partition");
    }

    #[test]
    fn large_partitions_are_split_into_batches_that_decode_back_in_order() {
        let mut batches = PartitionBatches::new(Compression::None);
        let value = Bytes::from(vec![7u8; 300_000]);
        for i in 0..5 {
            batches.append(i, 1_000 + i as i64, &Record { value: Some(value.clone()), ..Default::default() }, None);
        }
        let (indices, bytes) = batches.finish();
        assert_eq!(indices, vec![0, 1, 2, 3, 4]);
        let sizes: Vec<usize> = vltava_record::batches(bytes.clone()).map(|b| b.unwrap().size()).collect();
        assert!(sizes.len() >= 2 && sizes.iter().all(|&s| s <= BATCH_BYTES), "{sizes:?}");
        let decoded = vltava_record::decode_fetched(bytes, 0, true).unwrap();
        let stamps: Vec<i64> = decoded.records.iter().map(|r| r.timestamp).collect();
        assert_eq!(stamps, vec![1_000, 1_001, 1_002, 1_003, 1_004]);
    }

    #[test]
    fn records_in_a_trace_get_its_traceparent_unless_they_carry_their_own() {
        let trace = Bytes::from_static(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let own = vltava_proto::v1::Header { key: TRACEPARENT_HEADER.into(), value: Bytes::from_static(b"mine") };
        let mut batches = PartitionBatches::new(Compression::None);
        batches.append(0, 1, &Record::default(), Some(&trace));
        batches.append(1, 1, &Record { headers: vec![own], ..Default::default() }, Some(&trace));
        batches.append(2, 1, &Record::default(), None);
        let (_, bytes) = batches.finish();
        let decoded = vltava_record::decode_fetched(bytes, 0, true).unwrap();
        let traceparents: Vec<Vec<Option<Bytes>>> = decoded
            .records
            .iter()
            .map(|r| r.headers.iter().filter(|h| h.key == TRACEPARENT_HEADER).map(|h| h.value.clone()).collect())
            .collect();
        assert_eq!(
            traceparents,
            vec![vec![Some(trace.clone())], vec![Some(Bytes::from_static(b"mine"))], vec![]],
            "one traceparent each, the record's own first, none outside a trace"
        );
    }
}
