//! The sender task: seals lingering batches, ships ready ones to partition leaders, retries.
//!
//! One task per producer. Each pass it walks the partition queues, seals open batches whose
//! `linger.ms` expired (all of them during a flush), fails batches past `delivery.timeout.ms`,
//! and for each partition without an outstanding request takes the ready batches (up to
//! `max.request.size`) into one `Produce` call, spawned as its own task, as long as the leader
//! has fewer than `max.in.flight.requests.per.connection` calls outstanding. Request tasks
//! resolve their records and report back; retriable failures put the batches back at the front
//! of their queue with `retry.backoff.ms` and trigger a metadata refresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tracing::Instrument;
use vltava_common::telemetry::{self, TRACEPARENT_HEADER};
use vltava_proto::v1::ProduceRequest;

use super::accumulator::{Accumulator, PartitionQueue};
use super::batch::{MAX_TRACES, ProducerBatch};
use super::identity::{self, Identity};
use crate::cluster::{Cluster, Node};
use crate::config::{Acks, ProducerConfig};
use crate::error::ClientError;

/// What the sender needs.
pub(crate) struct SenderCtx {
    pub acc: Arc<Accumulator>,
    pub cluster: Arc<Cluster>,
    pub config: ProducerConfig,
    /// The idempotent producer's id and epoch (unused when not idempotent).
    pub identity: Identity,
    /// A transactional producer's first batch failure in the current transaction: it can only
    /// abort.
    pub txn_failure: parking_lot::Mutex<Option<String>>,
}

/// Reports to the sender loop.
enum Done {
    /// A produce request finished; `retry` holds the batches to send again.
    Request { queue: Arc<PartitionQueue>, broker: i32, retry: Vec<ProducerBatch>, refresh: bool },
    /// A metadata refresh finished.
    Refreshed,
    /// An InitProducerId call finished.
    Identity,
}

impl SenderCtx {
    /// Resolves a batch and gives its memory back.
    fn finish(&self, queue: &PartitionQueue, batch: ProducerBatch, result: Result<i64, ClientError>) {
        let reserved = batch.reserved;
        let shared = batch.shared.clone();
        batch.complete(&queue.topic, queue.partition, result);
        self.acc.memory.add_permits(reserved);
        self.acc.completed(&shared);
    }

    /// Resolves a batch that failed for good. A numbered batch leaves a gap in its partition's
    /// sequence: the producer id it used is dropped, so the next batches start a new sequence.
    /// A transactional producer keeps its identity; its transaction can only abort now.
    fn fail(&self, queue: &PartitionQueue, batch: ProducerBatch, error: ClientError) {
        if self.config.transactional_id.is_some() {
            self.txn_failure.lock().get_or_insert_with(|| error.to_string());
        } else if let Some((producer_id, _, _)) = batch.sequence {
            self.identity.reset(producer_id);
        }
        self.finish(queue, batch, Err(error));
    }

    fn expired(&self, batch: &ProducerBatch, now: Instant) -> bool {
        batch.created + self.config.delivery_timeout <= now
    }

    fn expiry_error(&self, queue: &PartitionQueue, batch: &ProducerBatch) -> ClientError {
        let last = batch.last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
        ClientError::Timeout {
            what: format!("delivery of {} record(s) to {}-{}{last}", batch.count, queue.topic, queue.partition),
            after: self.config.delivery_timeout,
        }
    }
}

/// Runs until the producer is closed and everything is delivered.
pub(crate) async fn run(ctx: Arc<SenderCtx>) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut per_broker: HashMap<i32, usize> = HashMap::new();
    let mut requests = 0usize;
    let mut refreshing = false;
    let mut need_refresh = false;
    let mut last_refresh = Instant::now();
    let mut identity_backoff: Option<Instant> = None;
    let config = &ctx.config;
    let idempotent = config.idempotent();
    let transactional = config.transactional_id.is_some();
    loop {
        let now = Instant::now();
        let force = ctx.acc.flushing.load(Ordering::Acquire) > 0 || ctx.acc.closing.load(Ordering::Acquire);
        let mut next_wake = now + Duration::from_secs(1);
        let mut expired = Vec::new();
        let mut need_identity = false;
        for topic in ctx.acc.topics() {
            for queue in &topic.partitions {
                let mut inner = queue.inner.lock();
                if let Some(open) = &inner.open {
                    let deadline = open.created + config.linger;
                    if force || deadline <= now {
                        queue.seal(&mut inner);
                    } else {
                        next_wake = next_wake.min(deadline);
                    }
                }
                if inner.in_flight || inner.ready.is_empty() {
                    continue;
                }
                while inner.ready.front().is_some_and(|b| ctx.expired(b, now)) {
                    expired.push((queue.clone(), inner.ready.pop_front().expect("checked")));
                }
                if inner.ready.is_empty() {
                    continue;
                }
                // An idempotent producer numbers batches with its producer id: none, no send.
                let identity = if idempotent {
                    match ctx.identity.current() {
                        Some(id) => Some(id),
                        None => {
                            need_identity = true;
                            continue;
                        }
                    }
                } else {
                    None
                };
                if let Some(at) = inner.retry_at
                    && at > now
                {
                    next_wake = next_wake.min(at);
                    continue;
                }
                let Some((broker, node)) = ctx.cluster.leader(&queue.topic, queue.partition) else {
                    need_refresh = true;
                    continue;
                };
                let slots = per_broker.entry(broker).or_default();
                if *slots >= config.max_in_flight_requests_per_connection {
                    continue;
                }
                let first = inner.ready.pop_front().expect("not empty");
                let mut size = first.size();
                let mut batches = vec![first];
                while let Some(next) = inner.ready.front() {
                    // No cap on batches for idempotence: the partition remembers whole runs of
                    // batches, so a retried request is recognised however many it carries.
                    if size + next.size() > config.max_request_size {
                        break;
                    }
                    size += next.size();
                    batches.push(inner.ready.pop_front().expect("front exists"));
                }
                if let Some((producer_id, epoch)) = identity {
                    for b in batches.iter_mut().filter(|b| b.sequence.is_none()) {
                        let sequence = inner.take_sequence((producer_id, epoch), b.count);
                        b.set_sequence(producer_id, epoch, sequence, transactional);
                    }
                }
                inner.in_flight = true;
                inner.retry_at = None;
                drop(inner);
                *slots += 1;
                requests += 1;
                let (ctx, queue, tx) = (ctx.clone(), queue.clone(), done_tx.clone());
                let span = send_span(&queue, &batches);
                tokio::spawn(async move {
                    let (retry, refresh) = produce(&ctx, &queue, &node, batches).instrument(span).await;
                    let _ = tx.send(Done::Request { queue, broker, retry, refresh });
                });
            }
        }
        for (queue, batch) in expired {
            let e = ctx.expiry_error(&queue, &batch);
            ctx.fail(&queue, batch, e);
        }
        // A transactional producer's identity comes from `init_transactions` only.
        if need_identity && !transactional {
            if identity_backoff.is_some_and(|at| at > now) {
                next_wake = next_wake.min(identity_backoff.expect("checked"));
            } else if ctx.identity.start_fetch() {
                let (ctx, tx) = (ctx.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let result = identity::init_producer_id(&ctx.cluster).await;
                    match &result {
                        Ok((id, epoch)) => tracing::debug!(producer_id = id, epoch, "producer id assigned"),
                        Err(e) => tracing::warn!(error = %e, "InitProducerId failed; will retry"),
                    }
                    ctx.identity.fetched(result.ok());
                    let _ = tx.send(Done::Identity);
                });
            }
        }

        let stale = last_refresh.elapsed() >= config.metadata_max_age;
        if !refreshing && (stale || (need_refresh && last_refresh.elapsed() >= config.retry_backoff)) {
            refreshing = true;
            need_refresh = false;
            let (ctx, tx) = (ctx.clone(), done_tx.clone());
            tokio::spawn(async move {
                refresh_metadata(&ctx).await;
                let _ = tx.send(Done::Refreshed);
            });
        } else if need_refresh && !refreshing {
            next_wake = next_wake.min(last_refresh + config.retry_backoff);
        }

        if ctx.acc.closing.load(Ordering::Acquire) && requests == 0 && ctx.acc.is_idle() {
            break;
        }

        let done = tokio::select! {
            done = done_rx.recv() => done,
            () = ctx.acc.wake.notified() => None,
            () = tokio::time::sleep_until(next_wake.into()) => None,
        };
        let mut next = done;
        while let Some(done) = next {
            match done {
                Done::Request { queue, broker, retry, refresh } => {
                    requests -= 1;
                    if let Some(n) = per_broker.get_mut(&broker) {
                        *n = n.saturating_sub(1);
                    }
                    need_refresh |= refresh;
                    let mut inner = queue.inner.lock();
                    inner.in_flight = false;
                    if !retry.is_empty() {
                        inner.retry_at = Some(Instant::now() + config.retry_backoff);
                        for batch in retry.into_iter().rev() {
                            inner.ready.push_front(batch);
                        }
                    }
                }
                Done::Refreshed => {
                    refreshing = false;
                    last_refresh = Instant::now();
                }
                Done::Identity => {
                    identity_backoff = ctx.identity.current().is_none().then(|| Instant::now() + config.retry_backoff);
                }
            }
            next = done_rx.try_recv().ok();
        }
    }
    tracing::debug!("producer sender stopped");
}

/// Refreshes metadata of every topic the producer uses and grows topics that gained partitions.
async fn refresh_metadata(ctx: &SenderCtx) {
    let names: Vec<String> = ctx.acc.topics().iter().map(|t| t.name.to_string()).collect();
    if names.is_empty() {
        return;
    }
    match ctx.cluster.refresh(&names).await {
        Ok(missing) => {
            if !missing.is_empty() {
                tracing::debug!(?missing, "topics missing from metadata");
            }
            for name in &names {
                if let Some(meta) = ctx.cluster.topic(name) {
                    ctx.acc.ensure_topic(name, meta.partition_count());
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "metadata refresh failed"),
    }
}

/// The span of a produce request carrying records sent within traces: it continues the first
/// record's trace and links to the others. Without traced records it is disabled (free).
fn send_span(queue: &PartitionQueue, batches: &[ProducerBatch]) -> tracing::Span {
    let mut traces = batches.iter().flat_map(|b| b.traces.iter());
    let Some(first) = traces.next() else {
        return tracing::Span::none();
    };
    let count: u32 = batches.iter().map(|b| b.count).sum();
    let span = tracing::info_span!(
        "send",
        otel.name = %format_args!("send {}", queue.topic),
        otel.kind = "producer",
        messaging.system = "vltava",
        messaging.operation.type = "send",
        messaging.destination.name = &*queue.topic,
        messaging.destination.partition.id = queue.partition,
        messaging.batch.message_count = count,
    );
    telemetry::set_remote_parent(&span, first);
    for t in traces.take(MAX_TRACES) {
        telemetry::add_link(&span, t);
    }
    span
}

/// The first trace context of the batches, as request metadata.
fn first_traceparent(batches: &[ProducerBatch]) -> Option<tonic::metadata::AsciiMetadataValue> {
    let first = batches.iter().find_map(|b| b.traces.first())?;
    first.parse().ok()
}

/// Concatenates the batches' encoded bytes.
fn request_body(batches: &mut [ProducerBatch]) -> Bytes {
    if let [single] = batches {
        return single.encode();
    }
    let encoded: Vec<Bytes> = batches.iter_mut().map(ProducerBatch::encode).collect();
    let mut body = BytesMut::with_capacity(encoded.iter().map(Bytes::len).sum());
    for b in encoded {
        body.extend_from_slice(&b);
    }
    body.freeze()
}

/// Sends one produce request and resolves its batches. Returns the batches to retry and
/// whether metadata should be refreshed.
async fn produce(
    ctx: &SenderCtx,
    queue: &PartitionQueue,
    node: &Node,
    mut batches: Vec<ProducerBatch>,
) -> (Vec<ProducerBatch>, bool) {
    let config = &ctx.config;
    let records = request_body(&mut batches);
    for b in &mut batches {
        b.attempts += 1;
    }
    let mut request = tonic::Request::new(ProduceRequest {
        topic: queue.topic.to_string(),
        partition: queue.partition,
        acks: config.acks.as_i32(),
        timeout_ms: i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX),
        records,
    });
    request.set_timeout(config.request_timeout);
    // Continues the records' trace even if no span is recorded here (the channel replaces it with
    // the `send` span's context when there is one).
    if let Some(traceparent) = first_traceparent(&batches) {
        request.metadata_mut().insert(TRACEPARENT_HEADER, traceparent);
    }
    if config.acks == Acks::None {
        // Fire and forget: records resolve with offset -1 once handed to the connection.
        for b in batches {
            ctx.finish(queue, b, Ok(-1));
        }
        let result = node.records().produce(request).await;
        let refresh = match result {
            Ok(_) => false,
            Err(status) => {
                let e = ClientError::from_status(&status, &node.address, config.request_timeout);
                tracing::debug!(topic = %queue.topic, partition = queue.partition, error = %e, "acks=0 produce failed");
                e.is_retriable()
            }
        };
        return (Vec::new(), refresh);
    }
    match node.records().produce(request).await {
        Ok(response) => {
            let response = response.into_inner();
            let total: i64 = batches.iter().map(|b| i64::from(b.count)).sum();
            // A retried batch the broker had stored gets its original offsets back, so each
            // batch's base offset comes from the response when it lists them.
            let listed = response.batch_base_offsets.len() == batches.len();
            if !listed && response.last_offset - response.base_offset + 1 != total {
                tracing::warn!(
                    topic = %queue.topic, partition = queue.partition, base = response.base_offset,
                    last = response.last_offset, total, "produce response does not cover the records sent"
                );
            }
            let mut base = response.base_offset;
            for (i, b) in batches.into_iter().enumerate() {
                let count = i64::from(b.count);
                let at = if listed { response.batch_base_offsets[i] } else { base };
                ctx.finish(queue, b, Ok(at));
                base += count;
            }
            (Vec::new(), false)
        }
        Err(status) => {
            let error = ClientError::from_status(&status, &node.address, config.request_timeout);
            if !error.is_retriable() {
                for b in batches {
                    ctx.fail(queue, b, error.clone());
                }
                return (Vec::new(), false);
            }
            tracing::debug!(topic = %queue.topic, partition = queue.partition, error = %error, "produce failed, will retry");
            let now = Instant::now();
            let mut retry = Vec::with_capacity(batches.len());
            for mut b in batches {
                b.last_error = Some(error.clone());
                if ctx.expired(&b, now) {
                    let e = ctx.expiry_error(queue, &b);
                    ctx.fail(queue, b, e);
                } else if b.attempts > config.retries {
                    ctx.fail(queue, b, error.clone());
                } else {
                    retry.push(b);
                }
            }
            (retry, true)
        }
    }
}
