//! A producer batch and how its outcome reaches the records in it.
//!
//! Each batch owns one [`BatchShared`] (Kafka's `ProduceRequestResult`): the outcome of the
//! batch, set once, plus the wakers of everyone waiting. A [`DeliveryFuture`] is just that
//! `Arc` plus the record's index, so `send` allocates nothing per record; callbacks are kept
//! in the batch and run in order when it completes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use vltava_record::BatchBuilder;

use crate::error::ClientError;
use crate::types::RecordMetadata;

/// A completion callback given to `Producer::send_with_callback`.
pub type Callback = Box<dyn FnOnce(Result<RecordMetadata, ClientError>) + Send + 'static>;

#[derive(Default)]
struct SharedState {
    /// Base offset of the batch (or -1 with acks=0), or why it failed.
    result: Option<Result<i64, ClientError>>,
    wakers: Vec<Waker>,
}

/// The outcome of one batch, shared by the batch, its records' futures and `flush`.
pub(crate) struct BatchShared {
    state: Mutex<SharedState>,
}

impl BatchShared {
    pub fn new() -> Arc<Self> {
        Arc::new(BatchShared { state: Mutex::new(SharedState::default()) })
    }

    /// Sets the outcome (first call wins) and wakes every waiter.
    pub fn complete(&self, result: Result<i64, ClientError>) {
        let wakers = {
            let mut state = self.state.lock();
            if state.result.is_some() {
                return;
            }
            state.result = Some(result);
            std::mem::take(&mut state.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// The outcome if set, else registers `cx`'s waker.
    fn poll_result(&self, cx: &mut Context<'_>) -> Poll<Result<i64, ClientError>> {
        let mut state = self.state.lock();
        match &state.result {
            Some(r) => Poll::Ready(r.clone()),
            None => {
                if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    state.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Waits until the batch is complete.
    pub async fn wait(self: Arc<Self>) {
        std::future::poll_fn(|cx| self.poll_result(cx).map(|_| ())).await;
    }
}

/// Resolves to where a sent record was stored, once its batch is acknowledged (or failed).
///
/// Returned by `Producer::send`. Dropping it does not cancel the send.
#[must_use = "a DeliveryFuture tells whether the record was stored; await it or drop it knowingly"]
pub struct DeliveryFuture {
    pub(crate) shared: Arc<BatchShared>,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) index: u32,
    pub(crate) timestamp: i64,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.shared.poll_result(cx).map(|r| {
            r.map(|base| RecordMetadata {
                topic: this.topic.clone(),
                partition: this.partition,
                offset: offset_of(base, this.index),
                timestamp: this.timestamp,
            })
        })
    }
}

/// Offset of record `index` of a batch stored at `base` (-1 stays -1 for acks=0).
fn offset_of(base: i64, index: u32) -> i64 {
    if base < 0 { -1 } else { base + i64::from(index) }
}

/// The records of a batch: being filled, or encoded and ready to (re)send.
pub(crate) enum Body {
    /// Still open or sealed but not yet encoded.
    Open(BatchBuilder),
    /// Encoded (kept for retries).
    Built(Bytes),
}

/// One batch of one partition, from creation to completion.
pub(crate) struct ProducerBatch {
    pub body: Body,
    pub shared: Arc<BatchShared>,
    /// `(index, timestamp, callback)` of records sent with a callback.
    pub callbacks: Vec<(u32, i64, Callback)>,
    /// Records appended.
    pub count: u32,
    /// Bytes of `buffer.memory` reserved by the records; released on completion.
    pub reserved: usize,
    /// When the first record was appended (linger and delivery timeout start here).
    pub created: Instant,
    /// Send attempts so far.
    pub attempts: u32,
    /// `(producer id, epoch, base sequence)` once an idempotent producer numbered the batch
    /// (just before its first send; retries keep them, so the broker recognises a retry).
    pub sequence: Option<(i64, i16, i32)>,
    /// Why the last attempt failed (reported if the batch expires).
    pub last_error: Option<ClientError>,
    /// `traceparent` of the records sent within a sampled trace (at most [`MAX_TRACES`]): the
    /// produce request continues the first trace and links to the others.
    pub traces: Vec<String>,
}

/// Most trace contexts one batch remembers.
pub(crate) const MAX_TRACES: usize = 32;

impl ProducerBatch {
    pub fn new(builder: BatchBuilder, now: Instant) -> Self {
        ProducerBatch {
            body: Body::Open(builder),
            shared: BatchShared::new(),
            callbacks: Vec::new(),
            count: 0,
            reserved: 0,
            created: now,
            attempts: 0,
            sequence: None,
            last_error: None,
            traces: Vec::new(),
        }
    }

    /// Uncompressed size so far (for `batch.size`).
    pub fn size(&self) -> usize {
        match &self.body {
            Body::Open(b) => b.estimated_size(),
            Body::Built(b) => b.len(),
        }
    }

    /// Numbers the batch for an idempotent producer (before it is encoded); a transactional
    /// producer's batches carry the transactional flag too.
    pub fn set_sequence(&mut self, producer_id: i64, epoch: i16, base_sequence: i32, transactional: bool) {
        if let Body::Open(builder) = &mut self.body {
            let open = std::mem::replace(builder, BatchBuilder::new(Default::default()));
            *builder = open.with_producer(producer_id, epoch, base_sequence);
            builder.set_transactional(transactional);
            self.sequence = Some((producer_id, epoch, base_sequence));
        }
    }

    /// Encodes the batch if not done yet and returns its bytes.
    pub fn encode(&mut self) -> Bytes {
        if let Body::Open(builder) = &mut self.body {
            let builder = std::mem::replace(builder, BatchBuilder::new(Default::default()));
            self.body = Body::Built(builder.build());
        }
        match &self.body {
            Body::Built(b) => b.clone(),
            Body::Open(_) => unreachable!("encoded above"),
        }
    }

    /// Resolves every record of the batch: futures through the shared outcome, callbacks in
    /// record order. `base` is the batch's base offset (-1 for acks=0).
    ///
    /// Callbacks run before the shared outcome is set, so that `flush` (which waits on the shared
    /// outcome) returns only after they ran.
    pub fn complete(self, topic: &Arc<str>, partition: i32, result: Result<i64, ClientError>) {
        for (index, timestamp, callback) in self.callbacks {
            let r = match &result {
                Ok(base) => {
                    Ok(RecordMetadata { topic: topic.clone(), partition, offset: offset_of(*base, index), timestamp })
                }
                Err(e) => Err(e.clone()),
            };
            callback(r);
        }
        self.shared.complete(result);
    }
}
