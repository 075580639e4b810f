//! Calls that are forwarded rather than merged: ListOffsets (per leader), Subscribe (a leader's
//! stream), and admin and group calls (any bootstrap broker).

use std::pin::Pin;

use futures::Stream;
use tonic::Status;
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::*;

use crate::routing::Router;

/// The record stream of a forwarded subscription.
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<PartitionRecords, Status>> + Send + 'static>>;

/// Finds offsets on each partition's leader, one call per leader, answers in request order.
pub async fn list_offsets(router: &Router, request: ListOffsetsRequest) -> Result<ListOffsetsResponse, Status> {
    let partitions = router
        .scatter_gather(
            &request.partitions,
            |p: &ListOffsetsPartition| (p.topic.as_str(), p.partition),
            |p, code, message| ListOffsetsPartitionResponse {
                topic: p.topic.clone(),
                partition: p.partition,
                error_code: code as i32,
                error_message: message,
                offset: -1,
                timestamp: -1,
            },
            |r: &ListOffsetsPartitionResponse| r.error_code,
            |channel, partitions| {
                let mut client = router.records(channel);
                async move {
                    client.list_offsets(ListOffsetsRequest { partitions }).await.map(|r| r.into_inner().partitions)
                }
            },
        )
        .await;
    Ok(ListOffsetsResponse { partitions })
}

/// Opens the subscription on the partition leader (retrying like a produce) and forwards its
/// stream; dropping the returned stream cancels the broker's.
pub async fn subscribe(router: &Router, request: SubscribeRequest) -> Result<RecordStream, Status> {
    let (topic, partition) = (request.topic.clone(), request.partition);
    let stream = router
        .call_leader(&topic, partition, |channel| {
            let mut client = router.records(channel);
            let request = request.clone();
            async move { client.subscribe(request).await.map(|r| r.into_inner()) }
        })
        .await?;
    Ok(Box::pin(stream))
}

/// Forwards one `AdminService` call to a bootstrap broker: `forward_admin!(router, method, request)`.
macro_rules! forward_admin {
    ($router:expr, $method:ident, $request:expr) => {{
        let request = $request;
        $router
            .call_any(|channel| {
                let request = request.clone();
                async move { AdminServiceClient::new(channel).$method(request).await.map(|r| r.into_inner()) }
            })
            .await
    }};
}

/// Forwards one `GroupService` call to a bootstrap broker.
macro_rules! forward_group {
    ($router:expr, $method:ident, $request:expr) => {{
        let request = $request;
        $router
            .call_any(|channel| {
                let request = request.clone();
                async move { GroupServiceClient::new(channel).$method(request).await.map(|r| r.into_inner()) }
            })
            .await
    }};
}

/// `AdminService.CreateTopic` on a bootstrap broker; invalidates the cached metadata.
pub async fn create_topic(router: &Router, request: CreateTopicRequest) -> Result<CreateTopicResponse, Status> {
    let result = forward_admin!(router, create_topic, request);
    router.invalidate();
    result
}

/// `AdminService.DeleteTopic` on a bootstrap broker; invalidates the cached metadata.
pub async fn delete_topic(router: &Router, request: DeleteTopicRequest) -> Result<DeleteTopicResponse, Status> {
    let result = forward_admin!(router, delete_topic, request);
    router.invalidate();
    result
}

/// `AdminService.ListTopics` on a bootstrap broker.
pub async fn list_topics(router: &Router, request: ListTopicsRequest) -> Result<ListTopicsResponse, Status> {
    forward_admin!(router, list_topics, request)
}

/// `AdminService.DescribeTopic` on a bootstrap broker.
pub async fn describe_topic(router: &Router, request: DescribeTopicRequest) -> Result<DescribeTopicResponse, Status> {
    forward_admin!(router, describe_topic, request)
}

/// `AdminService.Metadata` on a bootstrap broker (broker addresses are the brokers' own: clients
/// of the gateway should keep talking to the gateway).
pub async fn metadata(router: &Router, request: MetadataRequest) -> Result<MetadataResponse, Status> {
    forward_admin!(router, metadata, request)
}

/// `AdminService.CreatePartitions` on a bootstrap broker; invalidates the cached metadata.
pub async fn create_partitions(
    router: &Router,
    request: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, Status> {
    let result = forward_admin!(router, create_partitions, request);
    router.invalidate();
    result
}

/// `AdminService.AlterConfigs` on a bootstrap broker.
pub async fn alter_configs(router: &Router, request: AlterConfigsRequest) -> Result<AlterConfigsResponse, Status> {
    forward_admin!(router, alter_configs, request)
}

/// `AdminService.DescribeCluster` on a bootstrap broker.
pub async fn describe_cluster(
    router: &Router,
    request: DescribeClusterRequest,
) -> Result<DescribeClusterResponse, Status> {
    forward_admin!(router, describe_cluster, request)
}

/// `AdminService.AlterPartitionReassignments` on a bootstrap broker; invalidates the cached
/// metadata (a move that completes at once may change the leader).
pub async fn alter_partition_reassignments(
    router: &Router,
    request: AlterPartitionReassignmentsRequest,
) -> Result<AlterPartitionReassignmentsResponse, Status> {
    let result = forward_admin!(router, alter_partition_reassignments, request);
    router.invalidate();
    result
}

/// `AdminService.ListPartitionReassignments` on a bootstrap broker.
pub async fn list_partition_reassignments(
    router: &Router,
    request: ListPartitionReassignmentsRequest,
) -> Result<ListPartitionReassignmentsResponse, Status> {
    forward_admin!(router, list_partition_reassignments, request)
}

/// `GroupService.CommitOffsets` on a bootstrap broker.
pub async fn commit_offsets(router: &Router, request: CommitOffsetsRequest) -> Result<CommitOffsetsResponse, Status> {
    forward_group!(router, commit_offsets, request)
}

/// `GroupService.FetchOffsets` on a bootstrap broker.
pub async fn fetch_offsets(router: &Router, request: FetchOffsetsRequest) -> Result<FetchOffsetsResponse, Status> {
    forward_group!(router, fetch_offsets, request)
}

/// `GroupService.ListGroups` on a bootstrap broker.
pub async fn list_groups(router: &Router, request: ListGroupsRequest) -> Result<ListGroupsResponse, Status> {
    forward_group!(router, list_groups, request)
}
