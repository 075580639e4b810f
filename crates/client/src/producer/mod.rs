//! [`Producer`]: batches records per partition and sends them to partition leaders.
//!
//! `send` reserves `buffer.memory`, picks a partition ([`vltava_record::place`], the rule the
//! gateway shares, and the sticky choice of [`crate::partitioner`] for keyless records) and appends
//! the record to that partition's open batch in the `accumulator`; a single `sender` task
//! seals batches by size or `linger.ms` and ships them. Record outcomes arrive through the
//! [`DeliveryFuture`] or the callback.

pub(crate) mod accumulator;
pub(crate) mod batch;
pub(crate) mod identity;
pub(crate) mod sender;
pub(crate) mod transaction;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use tokio::sync::TryAcquireError;
use tokio::task::JoinHandle;
use vltava_common::telemetry::TRACEPARENT_HEADER;
use vltava_proto::v1::ErrorCode;
use vltava_record::{Header, Placement, place};

use self::accumulator::{Accumulator, Completion, TopicState};
pub use self::batch::DeliveryFuture;
use self::sender::SenderCtx;
pub use self::transaction::ConsumerGroupMetadata;
use crate::cluster::Cluster;
use crate::config::ProducerConfig;
use crate::error::ClientError;
use crate::types::{ProducerRecord, RecordMetadata};

/// A thread-safe, cheaply cloneable producer (Kafka's `KafkaProducer`).
///
/// All clones share one accumulator, one sender task and one connection per broker. Dropping
/// the last clone lets the sender deliver what is buffered and stop; [`Producer::close`] also
/// waits for that.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<SenderCtx>,
    sender: Mutex<Option<JoinHandle<()>>>,
    txn: transaction::Transactions,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ctx.acc.closing.store(true, Ordering::Release);
        self.ctx.acc.wake.notify_one();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("bootstrap", &self.inner.ctx.config.bootstrap).finish_non_exhaustive()
    }
}

/// Decrements the flush counter even if `flush` is cancelled.
struct FlushGuard<'a>(&'a Accumulator);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.flushing.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Producer {
    /// Validates `config`, connects to a bootstrap server and starts the sender task.
    ///
    /// Must be called inside a Tokio runtime.
    pub async fn connect(config: ProducerConfig) -> Result<Producer, ClientError> {
        config.validate()?;
        let cluster = Cluster::connect(&config.bootstrap, config.request_timeout, config.via_gateway).await?;
        Ok(Self::with_cluster(config, cluster))
    }

    pub(crate) fn with_cluster(config: ProducerConfig, cluster: Arc<Cluster>) -> Producer {
        let acc = Arc::new(Accumulator::new(config.compression, config.batch_size, config.buffer_memory));
        let ctx =
            Arc::new(SenderCtx { acc, cluster, config, identity: Default::default(), txn_failure: Default::default() });
        let sender = tokio::spawn(sender::run(ctx.clone()));
        Producer { inner: Arc::new(Inner { ctx, sender: Mutex::new(Some(sender)), txn: Default::default() }) }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.ctx.config
    }

    /// Queues a record for sending.
    ///
    /// Awaiting this only waits for buffer space (`buffer.memory`; fails with
    /// [`ClientError::Timeout`] after `delivery.timeout.ms`) and, the first time a topic is used,
    /// for its metadata (fails with `UNKNOWN_TOPIC_OR_PARTITION` if it does not exist). The
    /// returned [`DeliveryFuture`] resolves once the record's batch is acknowledged.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ClientError> {
        let future = self.enqueue(record, Completion::Future).await?;
        Ok(future.expect("a future was asked for"))
    }

    /// Like [`Producer::send`], but `callback` receives the outcome instead of a future (cheaper
    /// for high volumes: no per-record state). Callbacks run on the producer's I/O task, in record
    /// order per partition; keep them short. The callback is called only if this returns `Ok`.
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata, ClientError>) + Send + 'static,
    ) -> Result<(), ClientError> {
        self.enqueue(record, Completion::Callback(Box::new(callback))).await.map(|_| ())
    }

    /// Makes every buffered record sendable at once and waits until all records sent before
    /// this call are acknowledged or failed.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let acc = &self.inner.ctx.acc;
        acc.flushing.fetch_add(1, Ordering::AcqRel);
        let _guard = FlushGuard(acc);
        let pending = acc.incomplete();
        acc.wake.notify_one();
        for batch in pending {
            batch.wait().await;
        }
        Ok(())
    }

    /// Flushes, then stops the sender. Later sends (through other clones) fail with
    /// [`ClientError::Closed`].
    pub async fn close(self) {
        let _ = self.flush().await;
        let acc = &self.inner.ctx.acc;
        acc.closing.store(true, Ordering::Release);
        acc.wake.notify_one();
        let handle = self.inner.sender.lock().take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// Number of partitions of `topic` (Kafka's `partitionsFor`), from cached metadata.
    pub async fn partition_count(&self, topic: &str) -> Result<i32, ClientError> {
        Ok(self.topic_state(topic, false).await?.partition_count())
    }

    async fn topic_state(&self, topic: &str, force_refresh: bool) -> Result<Arc<TopicState>, ClientError> {
        let ctx = &self.inner.ctx;
        if !force_refresh && let Some(t) = ctx.acc.topic(topic) {
            return Ok(t);
        }
        let max_age = if force_refresh { std::time::Duration::ZERO } else { ctx.config.metadata_max_age };
        let meta = ctx.cluster.topic_or_fetch(topic, max_age).await?;
        if meta.leaders.is_empty() {
            return Err(crate::cluster::unknown_topic(topic));
        }
        Ok(ctx.acc.ensure_topic(topic, meta.partition_count()))
    }

    async fn reserve(&self, size: usize) -> Result<(), ClientError> {
        let config = &self.inner.ctx.config;
        if size > config.max_request_size {
            return Err(ClientError::RecordTooLarge {
                size,
                max: config.max_request_size,
                setting: "max.request.size",
            });
        }
        if size > config.buffer_memory {
            return Err(ClientError::RecordTooLarge { size, max: config.buffer_memory, setting: "buffer.memory" });
        }
        let memory = &self.inner.ctx.acc.memory;
        // `size` <= buffer.memory <= u32::MAX (validated).
        let permits = size as u32;
        match memory.try_acquire_many(permits) {
            Ok(p) => p.forget(),
            Err(TryAcquireError::Closed) => return Err(ClientError::Closed),
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout(config.delivery_timeout, memory.acquire_many(permits)).await {
                    Ok(Ok(p)) => p.forget(),
                    Ok(Err(_)) => return Err(ClientError::Closed),
                    Err(_) => {
                        return Err(ClientError::Timeout {
                            what: format!("waiting for {size} bytes of buffer.memory"),
                            after: config.delivery_timeout,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn enqueue(
        &self,
        record: ProducerRecord,
        completion: Completion,
    ) -> Result<Option<DeliveryFuture>, ClientError> {
        let acc = &self.inner.ctx.acc;
        if acc.closing.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        let (record, trace) = stamp_trace_context(record);
        let size = record.estimated_size();
        self.reserve(size).await?;
        match self.place_and_append(&record, size, completion, trace.as_deref()).await {
            Ok(r) => Ok(r),
            Err(e) => {
                acc.memory.add_permits(size);
                Err(e)
            }
        }
    }

    /// Chooses the partition and appends.
    async fn place_and_append(
        &self,
        record: &ProducerRecord,
        size: usize,
        completion: Completion,
        trace: Option<&str>,
    ) -> Result<Option<DeliveryFuture>, ClientError> {
        let acc = &self.inner.ctx.acc;
        let mut topic = match acc.topic(&record.topic) {
            Some(t) => t,
            None => self.topic_state(&record.topic, false).await?,
        };
        let timestamp = record.timestamp.unwrap_or_else(vltava_common::time::now_ms);
        let key = record.key.as_deref();
        let mut placement = place(record.partition, key, topic.partition_count());
        if let Placement::NoSuchPartition(p) = placement
            && p >= topic.partition_count()
        {
            // Maybe the topic grew since metadata was fetched.
            topic = self.topic_state(&record.topic, true).await?;
            placement = place(record.partition, key, topic.partition_count());
        }
        let transactional = self.inner.ctx.config.transactional_id.is_some();
        match placement {
            Placement::Partition(p) => {
                if transactional {
                    self.join_transaction(&record.topic, p).await?;
                }
                let queue = &topic.partitions[p as usize];
                Ok(acc.append(queue, record, timestamp, size, completion, false, trace).ok().flatten())
            }
            Placement::NoSuchPartition(p) => Err(ClientError::server(
                ErrorCode::UnknownTopicOrPartition,
                format!(
                    "partition {p} of topic {:?} does not exist ({} partitions)",
                    record.topic,
                    topic.partition_count()
                ),
            )),
            Placement::Keyless => {
                let p = acc.sticky_partition(&topic);
                if transactional {
                    self.join_transaction(&record.topic, p).await?;
                }
                match acc.append(&topic.partitions[p as usize], record, timestamp, size, completion, true, trace) {
                    Ok(r) => Ok(r),
                    Err(completion) => {
                        // The sticky batch was full: it is sealed now, so this picks another partition.
                        let p = acc.sticky_partition(&topic);
                        if transactional {
                            self.join_transaction(&record.topic, p).await?;
                        }
                        Ok(acc
                            .append(&topic.partitions[p as usize], record, timestamp, size, completion, false, trace)
                            .ok()
                            .flatten())
                    }
                }
            }
        }
    }
}

/// When `send` runs inside a sampled trace: the record gets a `traceparent` header (unless it has
/// one), so that consumers can link to this trace, and its batch remembers the context, so that
/// the produce request continues the trace. Outside a trace this costs a thread-local lookup.
fn stamp_trace_context(mut record: ProducerRecord) -> (ProducerRecord, Option<String>) {
    let trace = vltava_common::telemetry::current_traceparent();
    if let Some(t) = &trace
        && !record.headers.iter().any(|h| h.key == TRACEPARENT_HEADER)
    {
        record.headers.push(Header { key: TRACEPARENT_HEADER.to_string(), value: Some(t.clone().into()) });
    }
    (record, trace)
}

#[cfg(test)]
mod tests;
