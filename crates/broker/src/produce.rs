//! The produce path: request checks, `acks`, then the append on the leader's log.
//!
//! Per-batch work only: the log validates each batch's CRC and size and stamps offsets; records
//! are never decoded here.

use std::time::Duration;

use tracing::Instrument;
use vltava_common::telemetry::SPAN_TARGET;
use vltava_common::time::now_ms;
use vltava_proto::v1::{ProduceRequest, ProduceResponse};

use crate::auto_create;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::replication::wait::wait_for_replication;

/// Kafka's `acks=all`.
pub const ACKS_ALL: i32 = -1;

/// Appends the request's batches to the partition this broker leads.
pub async fn handle(broker: &Broker, req: ProduceRequest) -> Result<ProduceResponse, BrokerError> {
    append(broker, req).await?.acknowledged().await
}

/// A produce request whose batches are in the leader's log, not yet acknowledged.
///
/// The Kafka listener appends one connection's requests in order and waits for their
/// replication side by side ([`append`], then [`Appended::acknowledged`]), so pipelined
/// `acks=all` requests do not wait for each other's replication.
pub struct Appended {
    part: std::sync::Arc<crate::partition::Partition>,
    info: vltava_storage::AppendInfo,
    wait: Option<(Duration, i32, usize)>,
}

/// The first phase of [`handle`]: checks the request and appends its batches to the log.
pub async fn append(broker: &Broker, req: ProduceRequest) -> Result<Appended, BrokerError> {
    if !matches!(req.acks, -1..=1) {
        return Err(BrokerError::InvalidAcks(req.acks));
    }
    if req.records.is_empty() {
        return Err(BrokerError::InvalidRequest("the request carries no record batch".into()));
    }
    if req.records.len() > broker.config.max_request_bytes {
        return Err(BrokerError::RequestTooLarge { size: req.records.len(), max: broker.config.max_request_bytes });
    }
    let part = match broker.replicas.leader_partition(&req.topic, req.partition) {
        // A topic nobody created yet is created here when `auto.create.topics.enable` is on.
        Err(BrokerError::UnknownTopicOrPartition { .. }) if broker.config.auto_create_topics_enable => {
            auto_create::ensure_topic(broker, &req.topic).await?;
            broker.replicas.leader_partition(&req.topic, req.partition)?
        }
        other => other?,
    };
    let appender = part.clone();
    let size = req.records.len() as u64;
    let records = req.records;
    let all = req.acks == ACKS_ALL;
    // Spans with SPAN_TARGET exist only while traces are exported (they are never logged).
    let append_span = tracing::info_span!(target: SPAN_TARGET, "log.append", bytes = size);
    let (info, state) = tokio::task::spawn_blocking(move || appender.append_as_leader_blocking(records, all, now_ms()))
        .instrument(append_span)
        .await
        .map_err(|e| BrokerError::Internal(e.to_string()))??;
    crate::metrics::get().bytes_in.add(size, &[]);
    let wait = all.then(|| {
        let timeout = match req.timeout_ms {
            t if t > 0 => Duration::from_millis(t as u64),
            _ => broker.config.produce_timeout,
        };
        (timeout, state.leader_epoch, state.isr.len())
    });
    Ok(Appended { part, info, wait })
}

impl Appended {
    /// The second phase of [`handle`]: with `acks=all`, waits until the ISR has the batches.
    pub async fn acknowledged(self) -> Result<ProduceResponse, BrokerError> {
        let Appended { part, info, wait } = self;
        // A test build that breaks acks=all on purpose (the chaos harness's proof that its
        // checker sees lost writes): answers before the followers have the records.
        let wait = if cfg!(feature = "unsafe-early-ack") { None } else { wait };
        if let Some((timeout, leader_epoch, isr)) = wait {
            let wait_span = tracing::info_span!(
                target: SPAN_TARGET,
                "replication.wait",
                messaging.destination.name = part.topic(),
                messaging.destination.partition.id = part.index(),
                offset = info.last_offset,
                isr,
            );
            wait_for_replication(&part, info.last_offset + 1, leader_epoch, timeout).instrument(wait_span).await?;
        }
        if info.duplicates > 0 {
            crate::metrics::get().duplicate_batches.add(info.duplicates as u64, &[]);
            tracing::debug!(
                topic = part.topic(),
                partition = part.index(),
                duplicates = info.duplicates,
                "retried batches answered with their original offsets"
            );
        }
        Ok(ProduceResponse {
            base_offset: info.first_offset,
            last_offset: info.last_offset,
            log_start_offset: part.log_start_offset(),
            log_append_time_ms: info.log_append_time,
            batch_base_offsets: info.batch_base_offsets,
        })
    }
}
