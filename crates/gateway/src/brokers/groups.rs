//! `GroupService` calls: committed offsets and groups to any broker (bootstrap brokers first),
//! consumer-group heartbeats to the group's coordinator.

use tonic::Status;
use vltava_common::ErrorCode;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::{
    CommitOffsetsRequest, CommitOffsetsResponse, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    FetchOffsetsRequest, FetchOffsetsResponse, FindCoordinatorRequest, FindCoordinatorResponse, ListGroupsRequest,
    ListGroupsResponse,
};

use crate::routing::{broker_error_code, is_transport_error};

use super::Brokers;

/// One `GroupService` call on any broker: `group_call!(self, method, request)`.
macro_rules! group_call {
    ($brokers:expr, $method:ident, $request:expr) => {{
        let request = $request;
        $brokers
            .router
            .call_any(|channel| {
                let request = request.clone();
                async move { GroupServiceClient::new(channel).$method(request).await.map(|r| r.into_inner()) }
            })
            .await
    }};
}

impl Brokers {
    /// `GroupService.CommitOffsets`.
    pub async fn commit_offsets(&self, request: CommitOffsetsRequest) -> Result<CommitOffsetsResponse, Status> {
        group_call!(self, commit_offsets, request)
    }

    /// `GroupService.FetchOffsets`.
    pub async fn fetch_offsets(&self, request: FetchOffsetsRequest) -> Result<FetchOffsetsResponse, Status> {
        group_call!(self, fetch_offsets, request)
    }

    /// `GroupService.ListGroups`.
    pub async fn list_groups(&self, request: ListGroupsRequest) -> Result<ListGroupsResponse, Status> {
        group_call!(self, list_groups, request)
    }

    /// `GroupService.FindCoordinator`.
    pub async fn find_coordinator(&self, request: FindCoordinatorRequest) -> Result<FindCoordinatorResponse, Status> {
        group_call!(self, find_coordinator, request)
    }

    /// `GroupService.ConsumerGroupHeartbeat`, sent to the group's coordinator. A coordinator
    /// that moved, is loading or cannot be reached is looked up again, up to `retries` times.
    pub async fn consumer_group_heartbeat(
        &self,
        request: ConsumerGroupHeartbeatRequest,
    ) -> Result<ConsumerGroupHeartbeatResponse, Status> {
        let config = self.router.config();
        let mut attempt: u32 = 0;
        loop {
            let find = FindCoordinatorRequest { group_id: request.group_id.clone() };
            let status = match self.find_coordinator(find).await {
                Ok(coordinator) => {
                    let channel = self.router.channel(&coordinator.address)?;
                    match GroupServiceClient::new(channel).consumer_group_heartbeat(request.clone()).await {
                        Ok(r) => return Ok(r.into_inner()),
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
            tokio::time::sleep(config.retry_backoff * attempt).await;
        }
    }
}
