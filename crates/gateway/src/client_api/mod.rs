//! The thin-client API, `vltava.v1.GatewayService`: records as protobuf messages rather than
//! Kafka RecordBatch bytes, for clients in any language.
//!
//! The gateway does what a full client (the Rust SDK) does itself: it places records on
//! partitions by the SDK's rules ([`vltava_record::place`]), builds and compresses the batches,
//! sends them to the partition leaders through the typed call layer, [`Brokers`] (which retries
//! leader changes), and decodes what it reads.
//!
//! # Layout
//! - [`GatewayApi`] (here): the tonic service, one call into a handler per method.
//! - `publish`: placement (explicit, murmur2 of the key, or one rotating partition per request
//!   for keyless records) and one Produce per partition, concurrently.
//! - `read`: offsets resolved with ListOffsets, a Fetch per leader, batches decoded into records.
//! - `consume/`: one task per stream, fetching from the leaders as the client takes messages
//!   (HTTP/2 flow control is the backpressure), plain or managed by a group: `validate` (the
//!   request's settings), `stream` (the task), `position` (where each partition reads, backoff),
//!   `commit` (group offsets: committed positions and auto-commit).
//! - [`membership`]: managed group subscriptions, each an ordinary member of the broker-side
//!   consumer group (a heartbeat task per stream), so streams behind several gateways share a
//!   group's partitions with SDK and CLI consumers.
//! - `convert`: message ↔ record conversions and the request checks the handlers share.
//! - `topic`: partition counts from the router's metadata.

mod consume;
mod convert;
pub mod membership;
mod publish;
mod read;
mod topic;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vltava_proto::v1::gateway_service_server::GatewayService;
use vltava_proto::v1::{ConsumeRequest, PublishRequest, PublishResponse, ReadRequest, ReadResponse};

pub use consume::ConsumeStream;
pub use membership::Membership;

use crate::brokers::Brokers;

/// The `GatewayService` implementation. Cheap to clone: every clone shares the call layer, the
/// group memberships and the keyless-record rotation.
#[derive(Clone)]
pub struct GatewayApi {
    brokers: Brokers,
    membership: Arc<Membership>,
    rotation: Arc<publish::KeylessRotation>,
}

impl GatewayApi {
    /// The service, calling the brokers through `brokers`, with no group members yet.
    pub fn new(brokers: Brokers) -> Self {
        Self { membership: Arc::new(Membership::new(brokers.clone())), brokers, rotation: Arc::default() }
    }

    /// The managed group subscriptions of this gateway (e.g. for [`Membership::rebalances`]).
    pub fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }
}

#[tonic::async_trait]
impl GatewayService for GatewayApi {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<PublishResponse>, Status> {
        publish::handle(&self.brokers, &self.rotation, request.into_inner()).await.map(Response::new)
    }

    async fn read(&self, request: Request<ReadRequest>) -> Result<Response<ReadResponse>, Status> {
        read::handle(&self.brokers, request.into_inner()).await.map(Response::new)
    }

    type ConsumeStream = ConsumeStream;

    async fn consume(&self, request: Request<ConsumeRequest>) -> Result<Response<Self::ConsumeStream>, Status> {
        consume::start(self.brokers.clone(), &self.membership, request.into_inner()).await.map(Response::new)
    }
}
