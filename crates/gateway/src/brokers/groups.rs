//! `GroupService` calls: `FindCoordinator` to any broker (bootstrap brokers first), everything
//! about one group (heartbeats, offset commits and fetches) to that group's coordinator, and
//! `ListGroups` to every broker (each lists the groups it coordinates).

use std::collections::BTreeSet;
use std::future::Future;

use tonic::Status;
use vltava_common::grpc::TracedChannel as Channel;
use vltava_common::{ErrorCode, WireError};
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::{
    AlterConsumerGroupOffsetsRequest, AlterConsumerGroupOffsetsResponse, CommitOffsetsRequest, CommitOffsetsResponse,
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FetchOffsetsRequest, FetchOffsetsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupDescription, GroupResult, ListGroupsRequest, ListGroupsResponse,
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

    /// `GroupService.AlterConsumerGroupOffsets`, on the group's coordinator.
    pub async fn alter_consumer_group_offsets(
        &self,
        request: AlterConsumerGroupOffsetsRequest,
    ) -> Result<AlterConsumerGroupOffsetsResponse, Status> {
        let group = request.group_id.clone();
        self.call_coordinator(&group, |mut client| {
            let request = request.clone();
            async move { client.alter_consumer_group_offsets(request).await.map(|r| r.into_inner()) }
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
        let results = self
            .each_group(
                request.group_ids,
                |mut client, group| async move {
                    let one = DeleteGroupsRequest { group_ids: vec![group] };
                    Ok(client.delete_groups(one).await?.into_inner().results)
                },
                |r: &GroupResult| r.error_code,
                |group_id, error_code, error_message| GroupResult { group_id, error_code, error_message },
            )
            .await?;
        Ok(DeleteGroupsResponse { results })
    }

    /// `GroupService.DescribeGroups`, each group on its own coordinator; one description per
    /// group, in order (a group whose coordinator cannot be reached gets that failure's code).
    pub async fn describe_groups(&self, request: DescribeGroupsRequest) -> Result<DescribeGroupsResponse, Status> {
        let groups = self
            .each_group(
                request.group_ids,
                |mut client, group| async move {
                    let one = DescribeGroupsRequest { group_ids: vec![group] };
                    Ok(client.describe_groups(one).await?.into_inner().groups)
                },
                |d: &GroupDescription| d.error_code,
                |group_id, error_code, error_message| GroupDescription {
                    group_id,
                    error_code,
                    error_message,
                    ..Default::default()
                },
            )
            .await?;
        Ok(DescribeGroupsResponse { groups })
    }

    /// Runs `call` for each group on its own coordinator and collects the one result each
    /// answers, in order. A result whose `code` says the coordinator moved or is loading is
    /// retried like a failed call; a group whose coordinator cannot answer gets `failed`.
    async fn each_group<R, F, Fut>(
        &self,
        groups: Vec<String>,
        call: F,
        code: fn(&R) -> i32,
        failed: fn(String, i32, String) -> R,
    ) -> Result<Vec<R>, Status>
    where
        F: Fn(GroupServiceClient<Channel>, String) -> Fut,
        Fut: Future<Output = Result<Vec<R>, Status>>,
    {
        let mut results = Vec::with_capacity(groups.len());
        for group in groups {
            let answer = self
                .call_coordinator(&group, |client| {
                    let one = call(client, group.clone());
                    async move {
                        let mut answers = one.await?;
                        if answers.len() != 1 {
                            return Err(Status::internal("the coordinator answered no result"));
                        }
                        let answer = answers.remove(0);
                        let moved = [ErrorCode::NotCoordinator, ErrorCode::CoordinatorLoadInProgress];
                        match moved.into_iter().find(|c| *c as i32 == code(&answer)) {
                            Some(c) => Err(WireError::new(c, "the group's coordinator moved").into_status()),
                            None => Ok(answer),
                        }
                    }
                })
                .await;
            results.push(answer.unwrap_or_else(|status| {
                let code = broker_error_code(&status).unwrap_or(ErrorCode::UnknownServerError) as i32;
                failed(group, code, status.message().to_string())
            }));
        }
        Ok(results)
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
        self.on_coordinator(
            group,
            || async {
                let find = FindCoordinatorRequest { group_id: group.to_string() };
                self.find_coordinator(find).await.map(|c| c.address)
            },
            |channel| call(GroupServiceClient::new(channel)),
        )
        .await
    }
}
