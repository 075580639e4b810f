//! `RecordService` calls to the partition leaders: Produce and Subscribe to one leader, Fetch and
//! ListOffsets split by leader and merged back in request order.
//!
//! A long-polling Fetch must not wait for the slowest leader: as soon as one leader answers with
//! records (or an error), the leaders still waiting are asked again with no wait, so the caller
//! gets what every leader has now, as a Kafka consumer fetching from each broker separately would.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;
use tonic::Status;
use vltava_proto::v1::{
    ErrorCode, FetchPartition, FetchRequest, FetchResponse, ListOffsetsPartition, ListOffsetsPartitionResponse,
    ListOffsetsRequest, ListOffsetsResponse, PartitionRecords, ProduceRequest, ProduceResponse, SubscribeRequest,
};

use super::Brokers;
use crate::routing::MAX_FETCH_WAIT;

/// The record stream of a forwarded subscription.
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<PartitionRecords, Status>> + Send + 'static>>;

impl Brokers {
    /// Appends the request's batches on the partition leader. Leadership changes, unreachable
    /// brokers and a topic not yet known to its leader are retried (see
    /// [`Router::call_leader`](crate::routing::Router::call_leader)); any other broker error is
    /// returned unchanged, code, detail and `vltava-error-code` included.
    pub async fn produce(&self, request: ProduceRequest) -> Result<ProduceResponse, Status> {
        let router = &*self.router;
        let (topic, partition) = (request.topic.clone(), request.partition);
        router
            .call_leader(&topic, partition, |channel| {
                let mut client = router.records(channel);
                let request = request.clone(); // `records` is `Bytes`: cloning shares the payload
                async move { client.produce(request).await.map(|r| r.into_inner()) }
            })
            .await
    }

    /// Reads the requested partitions from their leaders. Each leader gets the request's
    /// `max_wait_ms` (at most [`MAX_FETCH_WAIT`]), `min_bytes` and `max_bytes` for its share of
    /// the partitions, and the call ends when the first leader has something to return (see the
    /// module documentation). A partition whose topic is unknown (or whose leader's call failed)
    /// gets a per-partition `error_code` rather than failing the call.
    pub async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, Status> {
        let router = &*self.router;
        let FetchRequest { max_wait_ms, min_bytes, max_bytes, partitions, isolation_level } = request;
        let max_wait_ms = max_wait_ms.clamp(0, MAX_FETCH_WAIT.as_millis() as i32);
        // Set when a leader has answered with records or an error: the others stop waiting.
        let (answered, answered_rx) = watch::channel(false);
        let answered = &answered;
        let partitions = router
            .scatter_gather(
                &partitions,
                |p: &FetchPartition| (p.topic.as_str(), p.partition),
                unreadable,
                |r: &PartitionRecords| r.error_code,
                |channel, partitions| {
                    let mut client = router.records(channel);
                    let mut others = answered_rx.clone();
                    let sub = FetchRequest { max_wait_ms, min_bytes, max_bytes, partitions, isolation_level };
                    async move {
                        if max_wait_ms == 0 {
                            return client.fetch(sub).await.map(|r| r.into_inner().partitions);
                        }
                        let now = FetchRequest { max_wait_ms: 0, ..sub.clone() };
                        let mut waiting = client.clone();
                        tokio::select! {
                            result = waiting.fetch(sub) => {
                                let result = result.map(|r| r.into_inner().partitions);
                                let answer = match &result {
                                    Ok(ps) => ps.iter().any(has_answer),
                                    Err(_) => true,
                                };
                                if answer {
                                    answered.send_replace(true);
                                }
                                result
                            }
                            // Another leader answered: drop this long poll, take what is here now.
                            // (The watch's guard is dropped inside the block, not held across the fetch.)
                            true = async { others.wait_for(|a| *a).await.is_ok() } => {
                                client.fetch(now).await.map(|r| r.into_inner().partitions)
                            }
                        }
                    }
                },
            )
            .await;
        Ok(FetchResponse { partitions })
    }

    /// Finds offsets on each partition's leader, one call per leader, answers in request order.
    pub async fn list_offsets(&self, request: ListOffsetsRequest) -> Result<ListOffsetsResponse, Status> {
        let router = &*self.router;
        let isolation_level = request.isolation_level;
        let partitions = router
            .scatter_gather(
                &request.partitions,
                |p: &ListOffsetsPartition| (p.topic.as_str(), p.partition),
                |p, code, message| ListOffsetsPartitionResponse {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    error_code: code as i32,
                    error_message: message,
                    offset: -1,
                    timestamp: -1,
                },
                |r: &ListOffsetsPartitionResponse| r.error_code,
                |channel, partitions| {
                    let mut client = router.records(channel);
                    async move {
                        let request = ListOffsetsRequest { partitions, isolation_level };
                        client.list_offsets(request).await.map(|r| r.into_inner().partitions)
                    }
                },
            )
            .await;
        Ok(ListOffsetsResponse { partitions })
    }

    /// Opens the subscription on the partition leader (retrying like a produce) and forwards its
    /// stream; dropping the returned stream cancels the broker's.
    pub async fn subscribe(&self, request: SubscribeRequest) -> Result<RecordStream, Status> {
        let router = &*self.router;
        let (topic, partition) = (request.topic.clone(), request.partition);
        let stream = router
            .call_leader(&topic, partition, |channel| {
                let mut client = router.records(channel);
                let request = request.clone();
                async move { client.subscribe(request).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(Box::pin(stream))
    }
}

/// Whether a partition's answer is worth returning at once: records, or an error.
fn has_answer(p: &PartitionRecords) -> bool {
    !p.records.is_empty() || p.error_code != ErrorCode::None as i32
}

/// The answer for a partition that could not be read.
fn unreadable(p: &FetchPartition, code: ErrorCode, message: String) -> PartitionRecords {
    PartitionRecords {
        topic: p.topic.clone(),
        partition: p.partition,
        error_code: code as i32,
        error_message: message,
        high_watermark: -1,
        log_start_offset: -1,
        records: Default::default(),
        last_stable_offset: -1,
        aborted_transactions: Vec::new(),
    }
}
