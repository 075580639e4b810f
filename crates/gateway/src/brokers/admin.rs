//! `AdminService` calls, each to any broker (bootstrap brokers first). Calls that change where
//! partitions are, or whether they exist, invalidate the cached metadata.
//!
//! `Metadata` answers with the brokers' own addresses: clients of the gateway should keep talking
//! to the gateway.

use tonic::Status;
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::{
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicRequest, CreateTopicResponse, DeleteTopicRequest,
    DeleteTopicResponse, DescribeClusterRequest, DescribeClusterResponse, DescribeTopicRequest, DescribeTopicResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ListTopicsRequest, ListTopicsResponse,
    MetadataRequest, MetadataResponse,
};

use super::Brokers;

/// One `AdminService` call on any broker: `admin_call!(self, method, request)`.
macro_rules! admin_call {
    ($brokers:expr, $method:ident, $request:expr) => {{
        let request = $request;
        $brokers
            .router
            .call_any(|channel| {
                let request = request.clone();
                async move { AdminServiceClient::new(channel).$method(request).await.map(|r| r.into_inner()) }
            })
            .await
    }};
}

impl Brokers {
    /// `AdminService.CreateTopic`; invalidates the cached metadata.
    pub async fn create_topic(&self, request: CreateTopicRequest) -> Result<CreateTopicResponse, Status> {
        let result = admin_call!(self, create_topic, request);
        self.router.invalidate();
        result
    }

    /// `AdminService.DeleteTopic`; invalidates the cached metadata.
    pub async fn delete_topic(&self, request: DeleteTopicRequest) -> Result<DeleteTopicResponse, Status> {
        let result = admin_call!(self, delete_topic, request);
        self.router.invalidate();
        result
    }

    /// `AdminService.ListTopics`.
    pub async fn list_topics(&self, request: ListTopicsRequest) -> Result<ListTopicsResponse, Status> {
        admin_call!(self, list_topics, request)
    }

    /// `AdminService.DescribeTopic`.
    pub async fn describe_topic(&self, request: DescribeTopicRequest) -> Result<DescribeTopicResponse, Status> {
        admin_call!(self, describe_topic, request)
    }

    /// `AdminService.Metadata` (broker addresses are the brokers' own).
    pub async fn metadata(&self, request: MetadataRequest) -> Result<MetadataResponse, Status> {
        admin_call!(self, metadata, request)
    }

    /// `AdminService.CreatePartitions`; invalidates the cached metadata.
    pub async fn create_partitions(
        &self,
        request: CreatePartitionsRequest,
    ) -> Result<CreatePartitionsResponse, Status> {
        let result = admin_call!(self, create_partitions, request);
        self.router.invalidate();
        result
    }

    /// `AdminService.AlterConfigs`.
    pub async fn alter_configs(&self, request: AlterConfigsRequest) -> Result<AlterConfigsResponse, Status> {
        admin_call!(self, alter_configs, request)
    }

    /// `AdminService.DescribeCluster`.
    pub async fn describe_cluster(&self, request: DescribeClusterRequest) -> Result<DescribeClusterResponse, Status> {
        admin_call!(self, describe_cluster, request)
    }

    /// `AdminService.AlterPartitionReassignments`; invalidates the cached metadata (a move that
    /// completes at once may change the leader).
    pub async fn alter_partition_reassignments(
        &self,
        request: AlterPartitionReassignmentsRequest,
    ) -> Result<AlterPartitionReassignmentsResponse, Status> {
        let result = admin_call!(self, alter_partition_reassignments, request);
        self.router.invalidate();
        result
    }

    /// `AdminService.ListPartitionReassignments`.
    pub async fn list_partition_reassignments(
        &self,
        request: ListPartitionReassignmentsRequest,
    ) -> Result<ListPartitionReassignmentsResponse, Status> {
        admin_call!(self, list_partition_reassignments, request)
    }
}
