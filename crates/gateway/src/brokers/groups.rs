//! `GroupService` calls: `FindCoordinator` to any broker (bootstrap brokers first), everything
//! about one group (heartbeats, offset commits and fetches) to that group's coordinator, and
//! `ListGroups` to every broker (each lists the groups it coordinates).

use std::collections::BTreeSet;
use std::future::Future;

use tonic::Status;
use vltava_common::ErrorCode;
use vltava_common::grpc::TracedChannel as Channel;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::{
    CommitOffsetsRequest, CommitOffsetsResponse, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    DeleteGroupsRequest, DeleteGroupsResponse, FetchOffsetsRequest, FetchOffsetsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupResult, ListGroupsRequest, ListGroupsResponse,
};

use super::Brokers;
use crate::routing::{broker_error_code, is_transport_error};

impl Brokers {
    /// `GroupService.FindCoordinator`, on any broker.
    pub async fn find_coordinator(&self, request: FindCoordinatorRequest) -> Result<FindCoordinatorResponse, Status> {
        self.router
            .call_any(|channel| {
                let request = request.clone();
                async move { GroupServiceClient::new(channel).find_coordinator(request).await.map(|r| r.into_inner()) }
            })
            .await
    }

    /// `GroupService.ConsumerGroupHeartbeat`, on the group's coordinator.
    pub async fn consumer_group_heartbeat(
        &self,
        request: ConsumerGroupHeartbeatRequest,
    ) -> Result<ConsumerGroupHeartbeatResponse, Status> {
        let group = request.group_id.clone();
        self.call_coordinator(&group, |mut client| {
            let request = request.clone();
            async move { client.consumer_group_heartbeat(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `GroupService.CommitOffsets`, on the group's coordinator.
    pub async fn commit_offsets(&self, request: CommitOffsetsRequest) -> Result<CommitOffsetsResponse, Status> {
        let group = request.group_id.clone();
        self.call_coordinator(&group, |mut client| {
            let request = request.clone();
            async move { client.commit_offsets(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `GroupService.FetchOffsets`, on the group's coordinator.
    pub async fn fetch_offsets(&self, request: FetchOffsetsRequest) -> Result<FetchOffsetsResponse, Status> {
        let group = request.group_id.clone();
        self.call_coordinator(&group, |mut client| {
            let request = request.clone();
            async move { client.fetch_offsets(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `GroupService.DeleteGroups`, each group on its own coordinator; one result per group, in
    /// order (a group whose coordinator cannot be reached gets that failure's code).
    pub async fn delete_groups(&self, request: DeleteGroupsRequest) -> Result<DeleteGroupsResponse, Status> {
        let mut results = Vec::with_capacity(request.group_ids.len());
        for group in request.group_ids {
            let one = DeleteGroupsRequest { group_ids: vec![group.clone()] };
            let answer = self
                .call_coordinator(&group, |mut client| {
                    let one = one.clone();
                    async move { client.delete_groups(one).await.map(|r| r.into_inner()) }
                })
                .await;
            match answer {
                Ok(mut r) if r.results.len() == 1 => results.push(r.results.remove(0)),
                Ok(_) => return Err(Status::internal(format!("the coordinator of {group} answered no result"))),
                Err(status) => results.push(GroupResult {
                    group_id: group,
                    error_code: broker_error_code(&status).unwrap_or(ErrorCode::UnknownServerError) as i32,
                    error_message: status.message().to_string(),
                }),
            }
        }
        Ok(DeleteGroupsResponse { results })
    }

    /// `GroupService.ListGroups` on every broker the metadata names, merged and sorted. Brokers
    /// that cannot be reached are skipped; if none answers, the last failure is returned.
    pub async fn list_groups(&self, request: ListGroupsRequest) -> Result<ListGroupsResponse, Status> {
        let view = self.router.refresh().await?;
        let mut groups = BTreeSet::new();
        let mut last = None;
        let mut answered = false;
        for address in view.cluster.brokers.values() {
            let channel = self.router.channel(address)?;
            match GroupServiceClient::new(channel).list_groups(request).await {
                Ok(r) => {
                    answered = true;
                    groups.extend(r.into_inner().group_ids);
                }
                Err(status) if is_transport_error(&status) => {
                    tracing::debug!(%address, error = %status, "broker unreachable while listing groups");
                    last = Some(status);
                }
                Err(status) => return Err(status),
            }
        }
        match (answered, last) {
            (false, Some(status)) => Err(status),
            _ => Ok(ListGroupsResponse { group_ids: groups.into_iter().collect() }),
        }
    }

    /// Runs `call` on the coordinator of `group`. A coordinator that moved, is loading or
    /// cannot be reached is looked up again, up to `retries` times with a growing backoff.
    async fn call_coordinator<T, F, Fut>(&self, group: &str, mut call: F) -> Result<T, Status>
    where
        F: FnMut(GroupServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let config = self.router.config();
        let mut attempt: u32 = 0;
        loop {
            let find = FindCoordinatorRequest { group_id: group.to_string() };
            let status = match self.find_coordinator(find).await {
                Ok(coordinator) => {
                    let channel = self.router.channel(&coordinator.address)?;
                    match call(GroupServiceClient::new(channel)).await {
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
            tracing::debug!(group, attempt, error = %status, "retrying on the group coordinator");
            tokio::time::sleep(config.retry_backoff * attempt).await;
        }
    }
}
