//! Produce: each partition's batches go through the broker's produce path (the same checks,
//! idempotence and transaction state, `acks` and `min.insync.replicas` as gRPC `Produce`).
//!
//! The batches are appended in request order before the connection reads on; waiting for the
//! replicas (`acks=all`) happens beside the next requests ([`crate::dispatch::Reply::Later`]).
//! `acks=0` gets no response; when its append fails the connection is closed, as Kafka does,
//! so that the producer refreshes its metadata.

use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, ProduceResponse, TopicProduceResponse};
use tracing::Span;
use vltava_broker::Broker;
use vltava_broker::produce::{self, Appended};
use vltava_common::telemetry::TRACEPARENT_HEADER;
use vltava_common::{ErrorCode, WireError};

use super::{code, str_bytes};
use crate::KafkaError;
use crate::dispatch::{Reply, later};
use crate::frame::Request;

/// One partition's append, waiting for its acknowledgement.
struct Pending {
    index: i32,
    appended: Result<Appended, WireError>,
}

/// Appends every partition's batches, then answers once they are acknowledged.
pub async fn handle(broker: &Arc<Broker>, req: &Request, span: Span) -> Result<Reply, KafkaError> {
    let body: ProduceRequest = req.decode()?;
    let acks = i32::from(body.acks);
    let mut topics = Vec::with_capacity(body.topic_data.len());
    for t in body.topic_data {
        let mut partitions = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let appended = match p.records {
                Some(records) => {
                    let one = vltava_proto::v1::ProduceRequest {
                        topic: t.name.to_string(),
                        partition: p.index,
                        acks,
                        timeout_ms: body.timeout_ms,
                        records,
                    };
                    produce::append(broker, one).await.map_err(WireError::from)
                }
                None => Err(WireError::new(ErrorCode::InvalidRequest, "the partition carries no records")),
            };
            partitions.push(Pending { index: p.index, appended });
        }
        topics.push((t.name, partitions));
    }
    if acks == 0 {
        let failed = topics.iter().flat_map(|(_, ps)| ps).find_map(|p| p.appended.as_ref().err());
        return match failed {
            Some(e) => Err(KafkaError::AcksZeroFailed(e.to_string())),
            None => Ok(Reply::Nothing),
        };
    }
    let acknowledged = async move {
        let responses = join_all(topics.into_iter().map(|(name, partitions)| async move {
            let partition_responses = join_all(partitions.into_iter().map(acknowledge)).await;
            TopicProduceResponse::default().with_name(name).with_partition_responses(partition_responses)
        }))
        .await;
        ProduceResponse::default().with_responses(responses)
    };
    Ok(later(req.clone(), span, acknowledged))
}

async fn acknowledge(p: Pending) -> PartitionProduceResponse {
    let answer = match p.appended {
        Ok(appended) => appended.acknowledged().await.map_err(WireError::from),
        Err(e) => Err(e),
    };
    let response = PartitionProduceResponse::default().with_index(p.index);
    match answer {
        Ok(r) => response
            .with_base_offset(r.base_offset)
            .with_log_append_time_ms(r.log_append_time_ms)
            .with_log_start_offset(r.log_start_offset),
        Err(e) => response
            .with_error_code(code(&e))
            .with_base_offset(-1)
            .with_log_start_offset(-1)
            .with_error_message(Some(str_bytes(e.message))),
    }
}

/// The `traceparent` header of the request's first record, so that the produce span continues
/// the trace of a producer that put its context in its records (as the Vltava SDK does).
/// Decodes one batch; only called while traces are exported.
pub fn traceparent(req: &Request) -> Option<String> {
    let body: ProduceRequest = req.decode().ok()?;
    let records = body.topic_data.first()?.partition_data.first()?.records.clone()?;
    let batch = vltava_record::iter::batches(records).next()?.ok()?;
    let first = batch.records().ok()?.into_iter().next()?;
    let header = first.headers.into_iter().find(|h| h.key == TRACEPARENT_HEADER)?;
    String::from_utf8(header.value?.to_vec()).ok()
}
