//! One request: its API and version pick the handler; every request runs in a `kafka.server`
//! span (while traces are exported) and is counted by API.
//!
//! Handlers run one at a time per connection, in request order, as Kafka runs them. What only
//! waits (a produce waiting for its replicas, a fetch long-polling) is handed back as
//! [`Reply::Later`], so the connection reads and starts the next request meanwhile; responses
//! still leave in request order.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use tracing::{Instrument, Span};
use vltava_broker::Broker;
use vltava_common::telemetry::{self, SPAN_TARGET};

use crate::api;
use crate::frame::Request;
use crate::{KafkaError, metrics};

/// What a request gets back.
pub enum Reply {
    /// No response: `acks=0` produce.
    Nothing,
    /// The response frame.
    Now(Bytes),
    /// A response still being worked out; it is sent when ready, after the responses of the
    /// requests before it.
    Later(tokio::task::JoinHandle<Result<Bytes, KafkaError>>),
}

/// Answers one request. `Err` closes the connection.
pub async fn handle(broker: &Arc<Broker>, req: Request) -> Result<Reply, KafkaError> {
    let span = request_span(&req);
    let started = Instant::now();
    let name = req.api.name;
    let reply = route(broker, req, span.clone()).instrument(span).await;
    if matches!(reply, Ok(Reply::Now(_) | Reply::Nothing)) {
        metrics::request(name, started);
    }
    reply
}

async fn route(broker: &Arc<Broker>, req: Request, span: Span) -> Result<Reply, KafkaError> {
    let v = req.version;
    match req.api.api {
        ApiKey::ApiVersions => api::api_versions::handle(&req).map(Reply::Now),
        ApiKey::Metadata => now(&req, api::metadata::handle(broker, req.decode()?, v).await),
        ApiKey::Produce => api::produce::handle(broker, &req, span).await,
        ApiKey::Fetch => {
            let fetch = api::fetch::handle(broker.clone(), req.decode()?, v);
            Ok(later(req, span, fetch))
        }
        ApiKey::ListOffsets => now(&req, api::list_offsets::handle(broker, req.decode()?, v).await),
        ApiKey::OffsetForLeaderEpoch => now(&req, api::offset_for_leader_epoch::handle(broker, req.decode()?)),
        ApiKey::CreateTopics => now(&req, api::create_topics::handle(broker, req.decode()?, v).await),
        ApiKey::DeleteTopics => now(&req, api::delete_topics::handle(broker, req.decode()?, v).await),
        ApiKey::CreatePartitions => now(&req, api::create_partitions::handle(broker, req.decode()?).await),
        ApiKey::DescribeConfigs => now(&req, api::describe_configs::handle(broker, req.decode()?)),
        ApiKey::AlterConfigs => now(&req, api::alter_configs::handle(broker, req.decode()?).await),
        ApiKey::IncrementalAlterConfigs => {
            now(&req, api::incremental_alter_configs::handle(broker, req.decode()?).await)
        }
        ApiKey::DescribeCluster => now(&req, api::describe_cluster::handle(broker, req.decode()?)),
        ApiKey::FindCoordinator => now(&req, api::find_coordinator::handle(broker, req.decode()?, v).await),
        ApiKey::JoinGroup => {
            let (client_id, host) = (req.client_id.clone(), req.client_host.clone());
            let joining = api::join_group::start(broker, req.decode()?, v, client_id, host).await;
            Ok(later(req, span, async move { api::join_group::answer(joining.outcome().await) }))
        }
        ApiKey::SyncGroup => {
            let sync = req.decode()?;
            let syncing = api::sync_group::start(broker, &sync).await;
            Ok(later(req, span, api::sync_group::answer(broker.clone(), sync, syncing)))
        }
        ApiKey::Heartbeat => now(&req, api::heartbeat::handle(broker, req.decode()?).await),
        ApiKey::LeaveGroup => now(&req, api::leave_group::handle(broker, req.decode()?, v).await),
        ApiKey::OffsetCommit => now(&req, api::offset_commit::handle(broker, req.decode()?).await),
        ApiKey::OffsetFetch => now(&req, api::offset_fetch::handle(broker, req.decode()?, v).await),
        ApiKey::ListGroups => now(&req, api::list_groups::handle(broker, req.decode()?).await),
        ApiKey::DescribeGroups => now(&req, api::describe_groups::handle(broker, req.decode()?).await),
        ApiKey::DeleteGroups => now(&req, api::delete_groups::handle(broker, req.decode()?).await),
        ApiKey::OffsetDelete => now(&req, api::offset_delete::handle(broker, req.decode()?).await),
        ApiKey::ConsumerGroupHeartbeat => {
            let (client_id, host) = (req.client_id.clone(), req.client_host.clone());
            let response = api::consumer_group_heartbeat::handle(broker, req.decode()?, client_id, host).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::InitProducerId => now(&req, api::init_producer_id::handle(broker, req.decode()?).await),
        ApiKey::AddPartitionsToTxn => now(&req, api::add_partitions_to_txn::handle(broker, req.decode()?).await),
        ApiKey::AddOffsetsToTxn => now(&req, api::add_offsets_to_txn::handle(broker, req.decode()?).await),
        ApiKey::EndTxn => now(&req, api::end_txn::handle(broker, req.decode()?).await),
        ApiKey::TxnOffsetCommit => now(&req, api::txn_offset_commit::handle(broker, req.decode()?).await),
        _ => Err(KafkaError::UnsupportedApi(req.api.api as i16)),
    }
}

/// The answer to `req`, ready now.
fn now<T: Encodable>(req: &Request, response: T) -> Result<Reply, KafkaError> {
    req.respond(&response, req.version).map(Reply::Now)
}

/// A [`Reply::Later`] answering `req` with what `work` returns, inside `span`.
pub fn later<T, F>(req: Request, span: Span, work: F) -> Reply
where
    T: Encodable + Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let started = Instant::now();
    let task = async move {
        let response = work.await;
        metrics::request(req.api.name, started);
        req.respond(&response, req.version)
    };
    Reply::Later(tokio::spawn(task.instrument(span)))
}

/// The request's span. Kafka requests carry no trace context, but a produce continues the trace
/// named by its first record's `traceparent` header (as the SDK writes it). Fetches get none, as
/// gRPC long-polls outside a trace get none, so that idle consumers export nothing.
fn request_span(req: &Request) -> Span {
    if !telemetry::exporting() || req.api.api == ApiKey::Fetch {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "kafka.server",
        otel.name = format!("kafka.{}", req.api.name),
        otel.kind = "server",
        rpc.system = "kafka",
        rpc.method = req.api.name,
        rpc.kafka.version = req.version,
        messaging.client.id = req.client_id.as_str(),
    );
    if req.api.api == ApiKey::Produce
        && let Some(traceparent) = api::produce::traceparent(req)
    {
        telemetry::set_remote_parent(&span, &traceparent);
    }
    span
}
