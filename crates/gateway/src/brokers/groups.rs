//! `GroupService` calls (committed offsets, groups), each to any broker (bootstrap brokers
//! first).

use tonic::Status;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::{
    CommitOffsetsRequest, CommitOffsetsResponse, FetchOffsetsRequest, FetchOffsetsResponse, ListGroupsRequest,
    ListGroupsResponse,
};

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
}
