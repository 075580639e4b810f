//! The produce path: request checks, `acks`, then the append on the leader's log.
//!
//! Per-batch work only: the log validates each batch's CRC and size and stamps offsets; records
//! are never decoded here.

use std::time::Duration;

use vltava_common::time::now_ms;
use vltava_proto::v1::{ProduceRequest, ProduceResponse};

use crate::error::BrokerError;
use crate::server::Broker;

/// Kafka's `acks=all`.
pub const ACKS_ALL: i32 = -1;

/// Appends the request's batches to the partition this broker leads.
pub async fn handle(broker: &Broker, req: ProduceRequest) -> Result<ProduceResponse, BrokerError> {
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
        Err(BrokerError::UnknownTopicOrPartition { .. })
            if broker.config.auto_create_topics_enable && broker.replicas.image().topic(&req.topic).is_none() =>
        {
            crate::admin::auto_create(broker, &req.topic).await?;
            broker.replicas.leader_partition(&req.topic, req.partition)?
        }
        other => other?,
    };
    let state = part.ensure_leader()?;
    if req.acks == ACKS_ALL && (state.isr.len() as i32) < state.min_insync_replicas {
        return Err(BrokerError::NotEnoughReplicas {
            topic: req.topic,
            partition: req.partition,
            isr: state.isr.len(),
            min: state.min_insync_replicas,
        });
    }
    let appender = part.clone();
    let records = req.records;
    let info = tokio::task::spawn_blocking(move || appender.append_blocking(records, state.leader_epoch, now_ms()))
        .await
        .map_err(|e| BrokerError::Internal(e.to_string()))??;
    if req.acks == ACKS_ALL {
        let timeout = match req.timeout_ms {
            t if t > 0 => Duration::from_millis(t as u64),
            _ => broker.config.produce_timeout,
        };
        let mut hw = part.watch_high_watermark();
        let wanted = info.last_offset + 1;
        if tokio::time::timeout(timeout, hw.wait_for(|hw| *hw >= wanted)).await.is_err() {
            return Err(BrokerError::Timeout(timeout.as_millis() as u64));
        }
    }
    Ok(ProduceResponse {
        base_offset: info.first_offset,
        last_offset: info.last_offset,
        log_start_offset: part.log_start_offset(),
        log_append_time_ms: -1,
    })
}
