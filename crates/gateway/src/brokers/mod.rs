//! [`Brokers`]: the gateway's one typed layer of calls to the brokers, used by both faces of the
//! gateway: the broker-compatible services (`RecordService`, `AdminService`, `GroupService` in
//! [`crate::server`]) and the thin-client `GatewayService` ([`crate::client_api`]).
//!
//! Each call goes where it can be answered, with the [`Router`]'s retries and metadata refreshes:
//! - `records`: Produce and Subscribe to the partition leader ([`Router::call_leader`]: leader
//!   changes and unreachable brokers are retried); Fetch and ListOffsets split by leader and merged
//!   back in request order ([`Router::scatter_gather`]), a long poll ending when the first leader
//!   has something to return.
//! - `transactions`: InitProducerId to any broker.
//! - `admin` and `groups`: to any broker, bootstrap brokers first ([`Router::call_any`]); admin
//!   calls that change the layout of the cluster invalidate the cached metadata.
//!
//! Every call answers with the broker's own error, unchanged (status code, `ErrorDetail` and the
//! `vltava-error-code` header), so the gateway is transparent to clients.

mod admin;
mod groups;
mod records;
mod transactions;

use std::sync::Arc;

pub use records::RecordStream;

use crate::routing::Router;

/// Typed calls to the cluster's brokers, routed by a shared [`Router`]. Cheap to clone.
#[derive(Clone)]
pub struct Brokers {
    router: Arc<Router>,
}

impl Brokers {
    /// Calls routed by `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }

    /// The router: cached metadata (partition counts, leaders) and the gateway's configuration.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }
}
