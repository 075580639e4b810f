//! [`Brokers`]: the gateway's one typed layer of calls to the brokers, used by both faces of the
//! gateway: the broker-compatible services (`RecordService`, `AdminService`, `GroupService` in
//! [`crate::server`]) and the thin-client `GatewayService` ([`crate::client_api`]).
//!
//! Each call goes where it can be answered, with the [`Router`]'s retries and metadata refreshes:
//! - `records`: Produce and Subscribe to the partition leader ([`Router::call_leader`]: leader
//!   changes and unreachable brokers are retried); Fetch and ListOffsets split by leader and merged
//!   back in request order ([`Router::scatter_gather`]), a long poll ending when the first leader
//!   has something to return.
//! - `transactions`: InitProducerId without a transactional id and FindCoordinator to any broker;
//!   every call naming a transactional id to its coordinator, TxnOffsetCommit to the group's.
//! - `admin` and `groups`: to any broker, bootstrap brokers first ([`Router::call_any`]); admin
//!   calls that change the layout of the cluster invalidate the cached metadata.
//!
//! Every call answers with the broker's own error, unchanged (status code, `ErrorDetail` and the
//! `vltava-error-code` header), so the gateway is transparent to clients.

mod admin;
mod groups;
mod records;
mod transactions;

use std::future::Future;
use std::sync::Arc;

pub use records::RecordStream;
use tonic::Status;
use vltava_common::ErrorCode;
use vltava_common::grpc::TracedChannel as Channel;

use crate::routing::{Router, broker_error_code, is_transport_error};

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

    /// Runs `call` on the coordinator of `key` (a group or a transactional id), whose address
    /// `find` looks up. A coordinator that moved, is loading or cannot be reached is looked up
    /// again, up to the configured retries with a growing backoff.
    async fn on_coordinator<T, Find, FindFut, F, Fut>(
        &self,
        key: &str,
        mut find: Find,
        mut call: F,
    ) -> Result<T, Status>
    where
        Find: FnMut() -> FindFut,
        FindFut: Future<Output = Result<String, Status>>,
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let config = self.router.config();
        let mut attempt: u32 = 0;
        loop {
            let status = match find().await {
                Ok(address) => {
                    let channel = self.router.channel(&address)?;
                    match call(channel).await {
                        Ok(v) => return Ok(v),
                        Err(status) => status,
                    }
                }
                Err(status) => status,
            };
            let retriable = is_transport_error(&status)
                || matches!(
                    broker_error_code(&status),
                    Some(
                        ErrorCode::NotCoordinator
                            | ErrorCode::CoordinatorLoadInProgress
                            | ErrorCode::CoordinatorNotAvailable
                    )
                );
            if !retriable || attempt >= config.retries {
                return Err(status);
            }
            attempt += 1;
            tracing::debug!(key, attempt, error = %status, "retrying on the coordinator");
            tokio::time::sleep(config.retry_backoff * attempt).await;
        }
    }
}
