//! Fetching: one pipelined multi-partition `Fetch` per leader broker.
//!
//! [`Consumer`](super::Consumer) sends a fetch to every leader that has none outstanding, for
//! its assigned partitions that have a position and no buffered data. Each fetch runs as its
//! own task which also checks CRCs and decodes the records (so that work overlaps with the
//! application processing the previous `poll`) and sends the outcome back over a channel.
//! Every partition carries an epoch, bumped by `seek` and re-assignment; outcomes from an older
//! epoch are dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;
use vltava_proto::v1::{ErrorCode, FetchPartition, FetchRequest};
use vltava_record::AbortedTransaction;

use super::decode::{Decoded, decode_partition};
use super::{Buffered, Consumer, RETRY_BACKOFF};
use crate::cluster::Node;
use crate::config::OffsetReset;
use crate::error::ClientError;
use crate::types::{OffsetSpec, TopicPartition};

/// One partition of a fetch request.
#[derive(Debug, Clone)]
pub(crate) struct FetchPart {
    pub tp: TopicPartition,
    pub topic: Arc<str>,
    pub epoch: u64,
    pub offset: i64,
}

/// One partition's outcome.
#[derive(Debug)]
pub(crate) struct PartOutcome {
    pub part: FetchPart,
    pub result: Result<Decoded, ClientError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// What a fetch task reports.
#[derive(Debug)]
pub(crate) enum FetchResult {
    /// The broker answered.
    Done { broker: i32, parts: Vec<PartOutcome> },
    /// The whole call failed.
    Failed { broker: i32, parts: Vec<FetchPart>, error: ClientError },
}

/// Fetch settings, copied into each task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchParams {
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub check_crcs: bool,
    pub request_timeout: Duration,
    /// `vltava.v1.IsolationLevel`.
    pub isolation_level: i32,
}

/// Starts one fetch task.
pub(crate) fn spawn_fetch(
    node: Node,
    broker: i32,
    parts: Vec<FetchPart>,
    params: FetchParams,
    tx: UnboundedSender<FetchResult>,
) -> AbortHandle {
    let task = tokio::spawn(async move {
        let result = fetch(&node, broker, parts, params).await;
        let _ = tx.send(result);
    });
    task.abort_handle()
}

async fn fetch(node: &Node, broker: i32, parts: Vec<FetchPart>, params: FetchParams) -> FetchResult {
    let request = FetchRequest {
        max_wait_ms: i32::try_from(params.max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: params.min_bytes,
        max_bytes: params.max_bytes,
        partitions: parts
            .iter()
            .map(|p| FetchPartition {
                topic: p.tp.topic.clone(),
                partition: p.tp.partition,
                fetch_offset: p.offset,
                partition_max_bytes: params.partition_max_bytes,
            })
            .collect(),
        isolation_level: params.isolation_level,
    };
    let read_committed = params.isolation_level == vltava_proto::v1::IsolationLevel::ReadCommitted as i32;
    let timeout = params.request_timeout + params.max_wait;
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    let response = match node.records().fetch(request).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            let error = ClientError::from_status(&status, &node.address, timeout);
            return FetchResult::Failed { broker, parts, error };
        }
    };
    let mut answers = response.partitions;
    let mut outcomes = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        // Answers come in request order; fall back to a search if a server reorders them.
        let index = if answers.get(i).is_some_and(|a| a.topic == part.tp.topic && a.partition == part.tp.partition) {
            Some(i)
        } else {
            answers.iter().position(|a| a.topic == part.tp.topic && a.partition == part.tp.partition)
        };
        let Some(index) = index else {
            outcomes.push(PartOutcome {
                result: Ok(Decoded { records: Vec::new(), next_offset: part.offset }),
                high_watermark: -1,
                log_start_offset: -1,
                part,
            });
            continue;
        };
        let answer = &mut answers[index];
        let records = std::mem::take(&mut answer.records);
        let result = match ClientError::from_partition_code(answer.error_code, &answer.error_message) {
            Some(ClientError::Server(mut e)) => {
                e.log_start_offset = answer.log_start_offset;
                e.high_watermark = answer.high_watermark;
                Err(ClientError::Server(e))
            }
            Some(e) => Err(e),
            None => {
                let aborted: Vec<AbortedTransaction> = answer
                    .aborted_transactions
                    .iter()
                    .map(|a| AbortedTransaction { producer_id: a.producer_id, first_offset: a.first_offset })
                    .collect();
                decode_partition(&part.topic, part.tp.partition, records, part.offset, params.check_crcs, &aborted)
            }
        };
        // A read_committed consumer's end of the partition is the last stable offset.
        let high_watermark = if read_committed && answer.last_stable_offset >= 0 {
            answer.last_stable_offset
        } else {
            answer.high_watermark
        };
        outcomes.push(PartOutcome { result, high_watermark, log_start_offset: answer.log_start_offset, part });
    }
    FetchResult::Done { broker, parts: outcomes }
}

impl Consumer {
    /// Sends a fetch to every leader without one outstanding.
    pub(super) fn send_fetches(&mut self) {
        let now = Instant::now();
        let mut by_broker: std::collections::BTreeMap<i32, (Node, Vec<FetchPart>)> = Default::default();
        for (tp, st) in &self.assignment {
            if st.position.is_none() || st.reset.is_some() || st.fetching || st.buffered || st.paused {
                continue;
            }
            if st.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let Some((broker, node)) = self.cluster.leader(&tp.topic, tp.partition) else {
                self.metadata_stale = true;
                continue;
            };
            if self.in_flight.contains_key(&broker) {
                continue;
            }
            let part = FetchPart {
                tp: tp.clone(),
                topic: st.topic.clone(),
                epoch: st.epoch,
                offset: st.position.expect("checked"),
            };
            by_broker.entry(broker).or_insert_with(|| (node, Vec::new())).1.push(part);
        }
        let params = self.fetch_params();
        for (broker, (node, parts)) in by_broker {
            for p in &parts {
                if let Some(st) = self.assignment.get_mut(&p.tp) {
                    st.fetching = true;
                    st.retry_at = None;
                }
            }
            let handle = spawn_fetch(node, broker, parts, params, self.tx.clone());
            self.in_flight.insert(broker, handle);
        }
    }

    /// Applies a fetch task's outcome.
    pub(super) fn handle_fetch(&mut self, result: FetchResult) {
        let retry_at = Instant::now() + RETRY_BACKOFF;
        match result {
            FetchResult::Failed { broker, parts, error } => {
                self.in_flight.remove(&broker);
                tracing::debug!(broker, error = %error, "fetch failed");
                for p in parts {
                    if let Some(st) = self.assignment.get_mut(&p.tp) {
                        st.fetching = false;
                        st.retry_at = Some(retry_at);
                    }
                }
                if error.is_retriable() {
                    self.metadata_stale = true;
                } else {
                    self.pending_error.get_or_insert(error);
                }
            }
            FetchResult::Done { broker, parts } => {
                self.in_flight.remove(&broker);
                for outcome in parts {
                    let Some(st) = self.assignment.get_mut(&outcome.part.tp) else { continue };
                    st.fetching = false;
                    if st.epoch != outcome.part.epoch {
                        continue;
                    }
                    if outcome.high_watermark >= 0 {
                        st.high_watermark = Some(outcome.high_watermark);
                    }
                    if outcome.log_start_offset >= 0 {
                        st.log_start_offset = Some(outcome.log_start_offset);
                    }
                    match outcome.result {
                        Ok(decoded) if decoded.records.is_empty() => {
                            st.position = Some(decoded.next_offset.max(outcome.part.offset));
                        }
                        Ok(decoded) => {
                            st.buffered = true;
                            self.buffered.push_back(Buffered {
                                tp: outcome.part.tp,
                                epoch: st.epoch,
                                records: decoded.records.into_iter(),
                                next_offset: decoded.next_offset,
                            });
                        }
                        Err(e) if e.code() == Some(ErrorCode::OffsetOutOfRange) => {
                            match self.config.auto_offset_reset {
                                OffsetReset::Earliest => st.reset = Some(OffsetSpec::Earliest),
                                OffsetReset::Latest => st.reset = Some(OffsetSpec::Latest),
                                OffsetReset::None => {
                                    st.retry_at = Some(retry_at);
                                    self.pending_error.get_or_insert(e);
                                }
                            }
                        }
                        Err(e) if e.is_retriable() => {
                            st.retry_at = Some(retry_at);
                            self.metadata_stale = true;
                        }
                        Err(e) => {
                            st.retry_at = Some(retry_at);
                            self.pending_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
    }

    fn fetch_params(&self) -> FetchParams {
        FetchParams {
            max_wait: self.config.fetch_max_wait,
            min_bytes: self.config.fetch_min_bytes,
            max_bytes: self.config.fetch_max_bytes,
            partition_max_bytes: self.config.max_partition_fetch_bytes,
            check_crcs: self.config.check_crcs,
            request_timeout: self.config.request_timeout,
            isolation_level: self.config.isolation_level.wire(),
        }
    }
}
