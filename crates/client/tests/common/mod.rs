//! A tiny in-process fake of a one-broker Vltava cluster (real gRPC over a real socket) so the
//! client's produce, fetch, retry and offset logic can be tested without the real server.
//!
//! It keeps each partition's log in memory, stamps base offsets like a broker, and can be told
//! to fail the next produce calls or to hold produce responses until released.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use vltava_common::WireError;
use vltava_proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use vltava_proto::v1::group_service_server::{GroupService, GroupServiceServer};
use vltava_proto::v1::record_service_server::{RecordService, RecordServiceServer};
use vltava_proto::v1::transaction_service_server::{TransactionService, TransactionServiceServer};
use vltava_proto::v1::*;

/// One partition's log.
#[derive(Default)]
pub struct Log {
    pub batches: Vec<Bytes>,
    pub next: i64,
    pub log_start: i64,
}

/// A produce call as the fake saw it.
#[derive(Debug, Clone)]
pub struct ProduceCall {
    pub at: Instant,
    pub topic: String,
    pub partition: i32,
    pub acks: i32,
    pub batches: usize,
    pub records: i64,
}

#[derive(Default)]
pub struct FakeState {
    pub topics: Mutex<BTreeMap<String, Vec<Log>>>,
    pub produce_calls: Mutex<Vec<ProduceCall>>,
    pub metadata_calls: AtomicUsize,
    pub fetch_calls: AtomicUsize,
    /// Every fetch offset received, in arrival order.
    pub fetch_offsets: Mutex<Vec<i64>>,
    /// Errors returned by the next produce calls, in order.
    pub produce_failures: Mutex<VecDeque<WireError>>,
    /// When set, every produce call waits for one permit first.
    pub produce_gate: Mutex<Option<Arc<Semaphore>>>,
    pub committed: Mutex<HashMap<(String, String, i32), i64>>,
    pub address: Mutex<String>,
    /// InitProducerId calls answered so far (the ids handed out are 100, 101, ...).
    pub init_producer_id_calls: AtomicUsize,
}

impl FakeState {
    pub fn create_topic(&self, name: &str, partitions: usize) {
        self.topics.lock().insert(name.to_string(), (0..partitions).map(|_| Log::default()).collect());
    }

    pub fn produce_calls(&self) -> Vec<ProduceCall> {
        self.produce_calls.lock().clone()
    }

    /// Every record of a partition, decoded.
    pub fn records(&self, topic: &str, partition: usize) -> Vec<vltava_record::Record> {
        let topics = self.topics.lock();
        let log = &topics[topic][partition];
        log.batches
            .iter()
            .flat_map(|b| vltava_record::RecordBatch::parse(b.clone()).unwrap().records().unwrap())
            .collect()
    }

    fn append(&self, topic: &str, partition: i32, records: Bytes) -> Result<(i64, i64, usize), WireError> {
        let mut topics = self.topics.lock();
        let log = topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(partition as usize))
            .ok_or_else(|| WireError::new(ErrorCode::UnknownTopicOrPartition, format!("{topic}-{partition}")))?;
        let base = log.next;
        let mut n = 0;
        for batch in vltava_record::batches(records) {
            let batch = batch.map_err(|e| WireError::new(ErrorCode::CorruptMessage, e.to_string()))?;
            batch.verify_crc().map_err(|e| WireError::new(ErrorCode::CorruptMessage, e.to_string()))?;
            let mut bytes = BytesMut::from(&batch.as_bytes()[..]);
            vltava_record::set_base_offset(&mut bytes, log.next);
            log.next += i64::from(batch.record_count());
            log.batches.push(bytes.freeze());
            n += 1;
        }
        Ok((base, log.next - 1, n))
    }
}

/// A running fake; stops when dropped.
pub struct FakeCluster {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeCluster {
    pub async fn start() -> FakeCluster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(FakeState::default());
        *state.address.lock() = addr.to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let svc = Svc(state.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(AdminServiceServer::new(svc.clone()))
                .add_service(RecordServiceServer::new(svc.clone()).max_decoding_message_size(64 << 20))
                .add_service(GroupServiceServer::new(svc.clone()))
                .add_service(TransactionServiceServer::new(svc))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        FakeCluster { addr, state, stop: Some(stop) }
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Clone)]
struct Svc(Arc<FakeState>);

#[tonic::async_trait]
impl TransactionService for Svc {
    async fn init_producer_id(
        &self,
        _r: Request<InitProducerIdRequest>,
    ) -> Result<Response<InitProducerIdResponse>, Status> {
        let n = self.0.init_producer_id_calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(InitProducerIdResponse { producer_id: 100 + n as i64, producer_epoch: 0 }))
    }
    // The fake cluster serves idempotent producers only: the transactional calls are refused.
    async fn find_transaction_coordinator(
        &self,
        _r: Request<FindTransactionCoordinatorRequest>,
    ) -> Result<Response<FindTransactionCoordinatorResponse>, Status> {
        Err(Status::unimplemented("the fake cluster has no transaction coordinator"))
    }

    async fn add_partitions_to_txn(
        &self,
        _r: Request<AddPartitionsToTxnRequest>,
    ) -> Result<Response<AddPartitionsToTxnResponse>, Status> {
        Err(Status::unimplemented("the fake cluster has no transaction coordinator"))
    }

    async fn add_offsets_to_txn(
        &self,
        _r: Request<AddOffsetsToTxnRequest>,
    ) -> Result<Response<AddOffsetsToTxnResponse>, Status> {
        Err(Status::unimplemented("the fake cluster has no transaction coordinator"))
    }

    async fn end_txn(&self, _r: Request<EndTxnRequest>) -> Result<Response<EndTxnResponse>, Status> {
        Err(Status::unimplemented("the fake cluster has no transaction coordinator"))
    }

    async fn txn_offset_commit(
        &self,
        _r: Request<TxnOffsetCommitRequest>,
    ) -> Result<Response<TxnOffsetCommitResponse>, Status> {
        Err(Status::unimplemented("the fake cluster has no transaction coordinator"))
    }

    async fn write_txn_markers(
        &self,
        _r: Request<WriteTxnMarkersRequest>,
    ) -> Result<Response<WriteTxnMarkersResponse>, Status> {
        Err(Status::unimplemented("the fake cluster has no transaction coordinator"))
    }

    async fn describe_transactions(
        &self,
        _r: Request<DescribeTransactionsRequest>,
    ) -> Result<Response<DescribeTransactionsResponse>, Status> {
        Err(Status::unimplemented("the fake cluster has no transaction coordinator"))
    }
}

fn describe(name: &str, partitions: usize) -> TopicDescription {
    TopicDescription {
        name: name.to_string(),
        topic_id: format!("id-{name}"),
        partitions: (0..partitions as i32)
            .map(|p| PartitionDescription {
                partition: p,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                ..Default::default()
            })
            .collect(),
        configs: Default::default(),
    }
}

#[tonic::async_trait]
impl AdminService for Svc {
    async fn create_topic(&self, r: Request<CreateTopicRequest>) -> Result<Response<CreateTopicResponse>, Status> {
        let r = r.into_inner();
        if self.0.topics.lock().contains_key(&r.name) {
            return Err(WireError::new(ErrorCode::TopicAlreadyExists, r.name).into());
        }
        self.0.create_topic(&r.name, r.partitions as usize);
        Ok(Response::new(CreateTopicResponse { topic: Some(describe(&r.name, r.partitions as usize)) }))
    }

    async fn delete_topic(&self, r: Request<DeleteTopicRequest>) -> Result<Response<DeleteTopicResponse>, Status> {
        let name = r.into_inner().name;
        match self.0.topics.lock().remove(&name) {
            Some(_) => Ok(Response::new(DeleteTopicResponse {})),
            None => Err(WireError::new(ErrorCode::UnknownTopicOrPartition, name).into()),
        }
    }

    async fn list_topics(&self, _: Request<ListTopicsRequest>) -> Result<Response<ListTopicsResponse>, Status> {
        let topics = self.0.topics.lock();
        let topics = topics
            .iter()
            .map(|(name, p)| TopicSummary {
                name: name.clone(),
                topic_id: format!("id-{name}"),
                partitions: p.len() as i32,
                replication_factor: 1,
            })
            .collect();
        Ok(Response::new(ListTopicsResponse { topics }))
    }

    async fn describe_topic(
        &self,
        r: Request<DescribeTopicRequest>,
    ) -> Result<Response<DescribeTopicResponse>, Status> {
        let name = r.into_inner().name;
        let n = self.0.topics.lock().get(&name).map(Vec::len);
        match n {
            Some(n) => Ok(Response::new(DescribeTopicResponse { topic: Some(describe(&name, n)) })),
            None => Err(WireError::new(ErrorCode::UnknownTopicOrPartition, name).into()),
        }
    }

    async fn metadata(&self, r: Request<MetadataRequest>) -> Result<Response<MetadataResponse>, Status> {
        self.0.metadata_calls.fetch_add(1, Ordering::SeqCst);
        let wanted = r.into_inner().topics;
        let topics = self.0.topics.lock();
        let topics = topics
            .iter()
            .filter(|(name, _)| wanted.is_empty() || wanted.contains(name))
            .map(|(name, p)| describe(name, p.len()))
            .collect();
        let brokers = vec![BrokerInfo { id: 1, address: self.0.address.lock().clone(), rack: String::new() }];
        Ok(Response::new(MetadataResponse { brokers, topics, cluster_id: "fake".into() }))
    }

    async fn create_partitions(
        &self,
        _: Request<CreatePartitionsRequest>,
    ) -> Result<Response<CreatePartitionsResponse>, Status> {
        Err(Status::unimplemented("not in the fake server"))
    }

    async fn alter_configs(&self, _: Request<AlterConfigsRequest>) -> Result<Response<AlterConfigsResponse>, Status> {
        Err(Status::unimplemented("not in the fake server"))
    }

    async fn describe_cluster(
        &self,
        _: Request<DescribeClusterRequest>,
    ) -> Result<Response<DescribeClusterResponse>, Status> {
        Err(Status::unimplemented("not in the fake server"))
    }

    async fn alter_partition_reassignments(
        &self,
        _: Request<AlterPartitionReassignmentsRequest>,
    ) -> Result<Response<AlterPartitionReassignmentsResponse>, Status> {
        Err(Status::unimplemented("not in the fake server"))
    }

    async fn list_partition_reassignments(
        &self,
        _: Request<ListPartitionReassignmentsRequest>,
    ) -> Result<Response<ListPartitionReassignmentsResponse>, Status> {
        Err(Status::unimplemented("not in the fake server"))
    }
}

type Stream = Pin<Box<dyn tokio_stream::Stream<Item = Result<PartitionRecords, Status>> + Send>>;

#[tonic::async_trait]
impl RecordService for Svc {
    async fn produce(&self, r: Request<ProduceRequest>) -> Result<Response<ProduceResponse>, Status> {
        let gate = self.0.produce_gate.lock().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        let r = r.into_inner();
        if let Some(e) = self.0.produce_failures.lock().pop_front() {
            return Err(e.into());
        }
        let (base, last, batches) = self.0.append(&r.topic, r.partition, r.records)?;
        self.0.produce_calls.lock().push(ProduceCall {
            at: Instant::now(),
            topic: r.topic,
            partition: r.partition,
            acks: r.acks,
            batches,
            records: last - base + 1,
        });
        Ok(Response::new(ProduceResponse {
            base_offset: base,
            last_offset: last,
            log_start_offset: 0,
            log_append_time_ms: -1,
            ..Default::default()
        }))
    }

    async fn fetch(&self, r: Request<FetchRequest>) -> Result<Response<FetchResponse>, Status> {
        self.0.fetch_calls.fetch_add(1, Ordering::SeqCst);
        let r = r.into_inner();
        self.0.fetch_offsets.lock().extend(r.partitions.iter().map(|p| p.fetch_offset));
        let deadline = Instant::now() + Duration::from_millis(r.max_wait_ms.clamp(0, 200) as u64);
        loop {
            let mut any = false;
            let mut out = Vec::new();
            {
                let topics = self.0.topics.lock();
                for p in &r.partitions {
                    let mut answer =
                        PartitionRecords { topic: p.topic.clone(), partition: p.partition, ..Default::default() };
                    match topics.get(&p.topic).and_then(|t| t.get(p.partition as usize)) {
                        None => answer.error_code = ErrorCode::UnknownTopicOrPartition as i32,
                        Some(log) => {
                            answer.high_watermark = log.next;
                            answer.log_start_offset = log.log_start;
                            if p.fetch_offset < log.log_start || p.fetch_offset > log.next {
                                answer.error_code = ErrorCode::OffsetOutOfRange as i32;
                                answer.error_message =
                                    format!("offset {} outside {}..{}", p.fetch_offset, log.log_start, log.next);
                            } else {
                                let mut buf = BytesMut::new();
                                for b in &log.batches {
                                    let batch = vltava_record::RecordBatch::parse(b.clone()).unwrap();
                                    if batch.next_offset() <= p.fetch_offset {
                                        continue;
                                    }
                                    if !buf.is_empty() && buf.len() + b.len() > p.partition_max_bytes as usize {
                                        break;
                                    }
                                    buf.extend_from_slice(b);
                                }
                                any |= !buf.is_empty();
                                answer.records = buf.freeze();
                            }
                        }
                    }
                    out.push(answer);
                }
            }
            if any || Instant::now() >= deadline {
                return Ok(Response::new(FetchResponse { partitions: out }));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    type SubscribeStream = Stream;

    async fn subscribe(&self, _: Request<SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn list_offsets(&self, r: Request<ListOffsetsRequest>) -> Result<Response<ListOffsetsResponse>, Status> {
        let topics = self.0.topics.lock();
        let mut out = Vec::new();
        for p in r.into_inner().partitions {
            let mut answer = ListOffsetsPartitionResponse {
                topic: p.topic.clone(),
                partition: p.partition,
                timestamp: -1,
                ..Default::default()
            };
            match topics.get(&p.topic).and_then(|t| t.get(p.partition as usize)) {
                None => answer.error_code = ErrorCode::UnknownTopicOrPartition as i32,
                Some(log) => {
                    answer.offset = match p.timestamp {
                        -2 => log.log_start,
                        -1 => log.next,
                        ts => log
                            .batches
                            .iter()
                            .flat_map(|b| vltava_record::RecordBatch::parse(b.clone()).unwrap().records().unwrap())
                            .find(|rec| rec.timestamp >= ts)
                            .map_or(-1, |rec| rec.offset),
                    }
                }
            }
            out.push(answer);
        }
        Ok(Response::new(ListOffsetsResponse { partitions: out }))
    }
}

#[tonic::async_trait]
impl GroupService for Svc {
    async fn find_coordinator(
        &self,
        _r: Request<FindCoordinatorRequest>,
    ) -> Result<Response<FindCoordinatorResponse>, Status> {
        // The fake's one broker coordinates every group.
        let address = self.0.address.lock().clone();
        Ok(Response::new(FindCoordinatorResponse { node_id: 1, address, partition: 0 }))
    }

    async fn consumer_group_heartbeat(
        &self,
        _r: Request<ConsumerGroupHeartbeatRequest>,
    ) -> Result<Response<ConsumerGroupHeartbeatResponse>, Status> {
        Err(Status::unimplemented("the SDK's fake cluster has no group membership"))
    }

    async fn delete_groups(&self, _r: Request<DeleteGroupsRequest>) -> Result<Response<DeleteGroupsResponse>, Status> {
        Err(Status::unimplemented("the SDK's fake cluster does not delete groups"))
    }

    async fn describe_groups(
        &self,
        _r: Request<DescribeGroupsRequest>,
    ) -> Result<Response<DescribeGroupsResponse>, Status> {
        Err(Status::unimplemented("the SDK's fake cluster does not describe groups"))
    }

    async fn alter_consumer_group_offsets(
        &self,
        _r: Request<AlterConsumerGroupOffsetsRequest>,
    ) -> Result<Response<AlterConsumerGroupOffsetsResponse>, Status> {
        Err(Status::unimplemented("the SDK's fake cluster does not alter group offsets"))
    }

    async fn commit_offsets(
        &self,
        r: Request<CommitOffsetsRequest>,
    ) -> Result<Response<CommitOffsetsResponse>, Status> {
        let r = r.into_inner();
        let mut committed = self.0.committed.lock();
        let results = r
            .offsets
            .into_iter()
            .map(|o| {
                committed.insert((r.group_id.clone(), o.topic.clone(), o.partition), o.offset);
                PartitionResult { topic: o.topic, partition: o.partition, error_code: 0, error_message: String::new() }
            })
            .collect();
        Ok(Response::new(CommitOffsetsResponse { results }))
    }

    async fn fetch_offsets(&self, r: Request<FetchOffsetsRequest>) -> Result<Response<FetchOffsetsResponse>, Status> {
        let r = r.into_inner();
        let committed = self.0.committed.lock();
        let offsets = if r.partitions.is_empty() {
            committed
                .iter()
                .filter(|((g, _, _), _)| *g == r.group_id)
                .map(|((_, t, p), o)| OffsetCommit {
                    topic: t.clone(),
                    partition: *p,
                    offset: *o,
                    metadata: String::new(),
                })
                .collect()
        } else {
            r.partitions
                .into_iter()
                .map(|tp| OffsetCommit {
                    offset: *committed.get(&(r.group_id.clone(), tp.topic.clone(), tp.partition)).unwrap_or(&-1),
                    topic: tp.topic,
                    partition: tp.partition,
                    metadata: String::new(),
                })
                .collect()
        };
        Ok(Response::new(FetchOffsetsResponse { offsets }))
    }

    async fn list_groups(&self, _: Request<ListGroupsRequest>) -> Result<Response<ListGroupsResponse>, Status> {
        let mut groups: Vec<String> = self.0.committed.lock().keys().map(|(g, _, _)| g.clone()).collect();
        groups.sort();
        groups.dedup();
        Ok(Response::new(ListGroupsResponse { group_ids: groups }))
    }
}
