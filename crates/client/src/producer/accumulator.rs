//! The record accumulator: one open batch plus a queue of sealed batches per partition.
//!
//! `send` takes one short, uncontended lock of the partition's queue and appends to its open
//! [`BatchBuilder`]; a batch is sealed when the next record would push it past `batch.size`
//! (by `send`) or when `linger.ms` expires or a flush asks for it (by the sender task). Sealing
//! and opening a batch wake the sender; nothing else per record does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, Semaphore};
use vltava_record::{BatchBuilder, Compression};

use super::batch::{BatchShared, Callback, DeliveryFuture, ProducerBatch};
use crate::partitioner::random_other;
use crate::types::ProducerRecord;

/// A partition's batches.
pub(crate) struct PartitionQueue {
    pub topic: Arc<str>,
    pub partition: i32,
    pub inner: Mutex<PartitionInner>,
    /// Batches sealed so far; the sticky partitioner moves on when it changes.
    pub seals: AtomicU64,
}

/// The mutable part of a [`PartitionQueue`].
#[derive(Default)]
pub(crate) struct PartitionInner {
    /// The batch records are appended to.
    pub open: Option<ProducerBatch>,
    /// Sealed batches waiting to be sent, oldest first (retried batches go back to the front).
    pub ready: VecDeque<ProducerBatch>,
    /// A produce request of this partition is outstanding (at most one, so order is kept).
    pub in_flight: bool,
    /// Do not send before this instant (retry backoff).
    pub retry_at: Option<Instant>,
    /// The producer id and epoch the next sequence number belongs to, and that number.
    pub next_sequence: Option<((i64, i16), i32)>,
}

impl PartitionInner {
    /// The base sequence for a batch of `count` records of producer `identity` (id and epoch),
    /// and moves the partition's next sequence past it (a new producer id or epoch starts at 0).
    pub fn take_sequence(&mut self, identity: (i64, i16), count: u32) -> i32 {
        let next = match self.next_sequence {
            Some((used, next)) if used == identity => next,
            _ => 0,
        };
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        self.next_sequence = Some((identity, vltava_record::increment_sequence(next, count)));
        next
    }
}

impl PartitionQueue {
    fn new(topic: Arc<str>, partition: i32) -> Arc<Self> {
        Arc::new(PartitionQueue {
            topic,
            partition,
            inner: Mutex::new(PartitionInner::default()),
            seals: AtomicU64::new(0),
        })
    }

    /// Moves the open batch (if any) to the ready queue.
    pub fn seal(&self, inner: &mut PartitionInner) -> bool {
        match inner.open.take() {
            Some(batch) => {
                inner.ready.push_back(batch);
                self.seals.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

#[derive(Default)]
struct Sticky {
    partition: Option<i32>,
    seals_seen: u64,
}

/// A topic's partition queues and sticky-partitioner state.
pub(crate) struct TopicState {
    pub name: Arc<str>,
    pub partitions: Vec<Arc<PartitionQueue>>,
    sticky: Arc<Mutex<Sticky>>,
}

impl TopicState {
    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }
}

/// How a record was appended.
pub(crate) enum Completion {
    /// Return a [`DeliveryFuture`].
    Future,
    /// Run this callback on completion.
    Callback(Callback),
}

/// Everything `send` and the sender task share.
pub(crate) struct Accumulator {
    compression: Compression,
    batch_size: usize,
    topics: RwLock<HashMap<String, Arc<TopicState>>>,
    /// Batches not yet completed, for `flush`, keyed by their shared state's address.
    incomplete: Mutex<HashMap<usize, Arc<BatchShared>>>,
    /// `buffer.memory`, in bytes.
    pub memory: Semaphore,
    /// Wakes the sender task.
    pub wake: Notify,
    /// Flushes in progress: while positive every batch is sendable at once.
    pub flushing: AtomicUsize,
    /// Set by `close` (or when the last producer handle is dropped): send what is left, then stop.
    pub closing: AtomicBool,
}

impl Accumulator {
    pub fn new(compression: Compression, batch_size: usize, buffer_memory: usize) -> Self {
        Accumulator {
            compression,
            batch_size,
            topics: RwLock::new(HashMap::new()),
            incomplete: Mutex::new(HashMap::new()),
            memory: Semaphore::new(buffer_memory),
            wake: Notify::new(),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
        }
    }

    /// The topic's state, if it is known.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicState>> {
        self.topics.read().get(name).cloned()
    }

    /// Every known topic.
    pub fn topics(&self) -> Vec<Arc<TopicState>> {
        self.topics.read().values().cloned().collect()
    }

    /// Creates the topic's state, or grows it when the topic gained partitions.
    pub fn ensure_topic(&self, name: &str, partitions: i32) -> Arc<TopicState> {
        let partitions = partitions.max(1);
        let mut topics = self.topics.write();
        if let Some(t) = topics.get(name)
            && t.partition_count() >= partitions
        {
            return t.clone();
        }
        let old = topics.get(name).cloned();
        let topic_name: Arc<str> = old.as_ref().map_or_else(|| Arc::from(name), |t| t.name.clone());
        let mut queues = old.as_ref().map(|t| t.partitions.clone()).unwrap_or_default();
        for p in queues.len() as i32..partitions {
            queues.push(PartitionQueue::new(topic_name.clone(), p));
        }
        let sticky = old.map(|t| t.sticky.clone()).unwrap_or_default();
        let state = Arc::new(TopicState { name: topic_name, partitions: queues, sticky });
        topics.insert(name.to_string(), state.clone());
        state
    }

    /// The sticky partition for a key-less record (KIP-480): the current one until its batch
    /// is sealed, then a random other one.
    pub fn sticky_partition(&self, topic: &TopicState) -> i32 {
        let mut sticky = topic.sticky.lock();
        if let Some(p) = sticky.partition
            && let Some(q) = topic.partitions.get(p as usize)
            && q.seals.load(Ordering::Relaxed) == sticky.seals_seen
        {
            return p;
        }
        let p = random_other(sticky.partition, topic.partition_count());
        sticky.partition = Some(p);
        sticky.seals_seen = topic.partitions[p as usize].seals.load(Ordering::Relaxed);
        p
    }

    /// Appends a record to a partition's open batch.
    ///
    /// `size` is the record's reserved `buffer.memory` share. With `abort_on_new_batch` (sticky
    /// records), a record that does not fit the open batch is not appended: the full batch is
    /// sealed and `Err(completion)` is returned so the caller can pick another partition. `trace`
    /// is the `traceparent` the record was sent in, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &self,
        queue: &PartitionQueue,
        record: &ProducerRecord,
        timestamp: i64,
        size: usize,
        completion: Completion,
        abort_on_new_batch: bool,
        trace: Option<&str>,
    ) -> Result<Option<DeliveryFuture>, Completion> {
        let mut notify = false;
        let mut inner = queue.inner.lock();
        if let Some(open) = &inner.open
            && open.count > 0
            && open.size() + size > self.batch_size
        {
            queue.seal(&mut inner);
            if abort_on_new_batch {
                drop(inner);
                self.wake.notify_one();
                return Err(completion);
            }
            notify = true;
        }
        let batch = match &mut inner.open {
            Some(batch) => batch,
            None => {
                let batch = ProducerBatch::new(BatchBuilder::new(self.compression), Instant::now());
                self.incomplete.lock().insert(Arc::as_ptr(&batch.shared) as usize, batch.shared.clone());
                notify = true;
                inner.open.insert(batch)
            }
        };
        if let super::batch::Body::Open(builder) = &mut batch.body {
            builder.append(timestamp, record.key.as_deref(), record.value.as_deref(), &record.headers);
        }
        if let Some(t) = trace
            && batch.traces.len() < super::batch::MAX_TRACES
            && !batch.traces.iter().any(|known| known == t)
        {
            batch.traces.push(t.to_string());
        }
        let index = batch.count;
        batch.count += 1;
        batch.reserved += size;
        let result = match completion {
            Completion::Future => Some(DeliveryFuture {
                shared: batch.shared.clone(),
                topic: queue.topic.clone(),
                partition: queue.partition,
                index,
                timestamp,
            }),
            Completion::Callback(cb) => {
                batch.callbacks.push((index, timestamp, cb));
                None
            }
        };
        if batch.size() >= self.batch_size {
            queue.seal(&mut inner);
            notify = true;
        }
        drop(inner);
        if notify {
            self.wake.notify_one();
        }
        Ok(result)
    }

    /// Forgets a completed batch (see [`Accumulator::incomplete`]).
    pub fn completed(&self, shared: &Arc<BatchShared>) {
        self.incomplete.lock().remove(&(Arc::as_ptr(shared) as usize));
    }

    /// Every batch not yet completed.
    pub fn incomplete(&self) -> Vec<Arc<BatchShared>> {
        self.incomplete.lock().values().cloned().collect()
    }

    /// Whether no batch is pending anywhere.
    pub fn is_idle(&self) -> bool {
        self.incomplete.lock().is_empty()
    }
}
