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
        ApiKey::Metadata => {
            let response = api::metadata::handle(broker, req.decode()?, v).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::Produce => api::produce::handle(broker, &req, span).await,
        ApiKey::Fetch => {
            let fetch = api::fetch::handle(broker.clone(), req.decode()?, v);
            Ok(later(req, span, fetch))
        }
        ApiKey::ListOffsets => {
            let response = api::list_offsets::handle(broker, req.decode()?, v).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let response = api::offset_for_leader_epoch::handle(broker, req.decode()?);
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::CreateTopics => {
            let response = api::create_topics::handle(broker, req.decode()?, v).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::DeleteTopics => {
            let response = api::delete_topics::handle(broker, req.decode()?, v).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::CreatePartitions => {
            let response = api::create_partitions::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::DescribeConfigs => {
            let response = api::describe_configs::handle(broker, req.decode()?);
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::AlterConfigs => {
            let response = api::alter_configs::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::IncrementalAlterConfigs => {
            let response = api::incremental_alter_configs::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::DescribeCluster => {
            let response = api::describe_cluster::handle(broker, req.decode()?);
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::FindCoordinator => {
            let response = api::find_coordinator::handle(broker, req.decode()?, v).await;
            req.respond(&response, v).map(Reply::Now)
        }
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
        ApiKey::Heartbeat => {
            let response = api::heartbeat::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::LeaveGroup => {
            let response = api::leave_group::handle(broker, req.decode()?, v).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::OffsetCommit => {
            let response = api::offset_commit::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::OffsetFetch => {
            let response = api::offset_fetch::handle(broker, req.decode()?, v).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::ListGroups => {
            let response = api::list_groups::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::DescribeGroups => {
            let response = api::describe_groups::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::DeleteGroups => {
            let response = api::delete_groups::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::OffsetDelete => {
            let response = api::offset_delete::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let (client_id, host) = (req.client_id.clone(), req.client_host.clone());
            let response = api::consumer_group_heartbeat::handle(broker, req.decode()?, client_id, host).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::InitProducerId => {
            let response = api::init_producer_id::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::AddPartitionsToTxn => {
            let response = api::add_partitions_to_txn::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::AddOffsetsToTxn => {
            let response = api::add_offsets_to_txn::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::EndTxn => {
            let response = api::end_txn::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        ApiKey::TxnOffsetCommit => {
            let response = api::txn_offset_commit::handle(broker, req.decode()?).await;
            req.respond(&response, v).map(Reply::Now)
        }
        _ => Err(KafkaError::UnsupportedApi(req.api.api as i16)),
    }
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
