//! Plain data types shared by the producer, consumer and admin client.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry::trace::SpanContext;
use vltava_common::telemetry::{self, TRACEPARENT_HEADER};
use vltava_record::Header;

/// A topic and a partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index, from 0.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// An offset to commit and the metadata stored with it (Kafka's `OffsetAndMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset the group will read.
    pub offset: i64,
    /// Free-form metadata stored with it.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// `offset` with no metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata { offset, metadata: String::new() }
    }

    /// `offset` with `metadata`.
    pub fn with_metadata(offset: i64, metadata: impl Into<String>) -> Self {
        OffsetAndMetadata { offset, metadata: metadata.into() }
    }
}

/// A record to send (Kafka's `ProducerRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic to send to.
    pub topic: String,
    /// Explicit partition; `None` lets the default partitioner choose.
    pub partition: Option<i32>,
    /// Record key; keyed records always go to `murmur2(key) % partitions`.
    pub key: Option<Bytes>,
    /// Record value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Record headers.
    pub headers: Vec<Header>,
    /// Create time in ms since the epoch; `None` stamps the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A record without a value (a tombstone when keyed).
    pub fn tombstone(topic: impl Into<String>) -> Self {
        ProducerRecord { value: None, ..ProducerRecord::new(topic, Bytes::new()) }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets an explicit partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header { key: key.into(), value: Some(value.into()) });
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Upper bound of the record's encoded size inside a batch (for `buffer.memory` and
    /// `max.request.size` accounting).
    pub(crate) fn estimated_size(&self) -> usize {
        // length, attributes, timestamp delta, offset delta, key and value lengths, header count:
        // at most 5 + 1 + 10 + 5 + 5 + 5 + 5 varint bytes.
        let headers: usize =
            self.headers.iter().map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len)).sum();
        36 + self.key.as_ref().map_or(0, Bytes::len) + self.value.as_ref().map_or(0, Bytes::len) + headers
    }
}

/// Where a record was stored (Kafka's `RecordMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic (shared, so resolving many records does not copy the name).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset, or -1 with `acks=0`.
    pub offset: i64,
    /// The record's timestamp (its create time, or the broker's append time if the topic uses
    /// `LogAppendTime`).
    pub timestamp: i64,
}

/// A record read by a consumer (Kafka's `ConsumerRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic (shared between the records of a partition).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms since the epoch.
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

impl ConsumerRecord {
    /// The producer's `traceparent` header value, if the record was sent within a sampled trace.
    pub fn traceparent(&self) -> Option<&str> {
        let header = self.headers.iter().rev().find(|h| h.key == TRACEPARENT_HEADER)?;
        std::str::from_utf8(header.value.as_deref()?).ok()
    }

    /// The trace context the record was produced in (its `traceparent` header), if any.
    pub fn trace_context(&self) -> Option<SpanContext> {
        telemetry::parse_traceparent(self.traceparent()?)
    }

    /// A span for processing this record (`process <topic>`, OpenTelemetry messaging
    /// attributes), linked to the trace that produced it, so a record can be followed from its
    /// producer to each consumer. Its parent is the current span, if any. Enter it (or
    /// `instrument` the processing with it) while handling the record:
    ///
    /// ```no_run
    /// # async fn demo(consumer: &mut vltava_client::Consumer) -> Result<(), vltava_client::ClientError> {
    /// for record in consumer.poll(std::time::Duration::from_secs(1)).await? {
    ///     let _span = record.process_span().entered();
    ///     // handle the record; spans and calls made here belong to the processing trace
    /// }
    /// # Ok(()) }
    /// ```
    pub fn process_span(&self) -> tracing::Span {
        let span = tracing::info_span!(
            "process",
            otel.name = %format_args!("process {}", self.topic),
            otel.kind = "consumer",
            messaging.system = "vltava",
            messaging.operation.type = "process",
            messaging.destination.name = &*self.topic,
            messaging.destination.partition.id = self.partition,
            messaging.vltava.offset = self.offset,
        );
        if let Some(traceparent) = self.traceparent() {
            telemetry::add_link(&span, traceparent);
        }
        span
    }
}

/// Which offset `Admin::list_offsets` looks up (Kafka's `OffsetSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    /// The log start offset (wire value -2).
    Earliest,
    /// The high watermark: the offset the next record gets (wire value -1).
    Latest,
    /// The first offset whose timestamp is at or after this one (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    /// The `ListOffsets` wire value.
    pub fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// A topic to create (Kafka's `NewTopic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: i32,
    /// Replicas per partition; 0 uses the server's default.
    pub replication_factor: i32,
    /// Topic configuration overrides, by Kafka's names (`retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with the server's default replication factor and no overrides.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopic { name: name.into(), partitions, replication_factor: 0, configs: BTreeMap::new() }
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, replication_factor: i32) -> Self {
        self.replication_factor = replication_factor;
        self
    }

    /// Adds a configuration override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}
