//! Offset look-ups and group offset storage shared by the consumer and the admin client.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use vltava_proto::v1::{
    CommitOffsetsRequest, DeleteGroupsRequest, ErrorCode, FetchOffsetsRequest, FindCoordinatorRequest,
    ListGroupsRequest, ListOffsetsPartition, ListOffsetsRequest, OffsetCommit,
};

use crate::cluster::{Cluster, Node};
use crate::error::ClientError;
use crate::types::TopicPartition;

/// Pause between attempts of a retriable look-up.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Attempts of a retriable look-up.
const MAX_ATTEMPTS: u32 = 10;

/// `ListOffsets` for each `(partition, timestamp)` (-2 earliest, -1 latest), asked of each
/// partition's leader. Retriable failures refresh metadata and retry a bounded number of times.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    requests: &[(TopicPartition, i64)],
) -> Result<HashMap<TopicPartition, i64>, ClientError> {
    let mut result = HashMap::with_capacity(requests.len());
    let mut todo: Vec<(TopicPartition, i64)> = requests.to_vec();
    let started = Instant::now();
    let mut attempt = 0;
    while !todo.is_empty() {
        attempt += 1;
        let mut by_leader: BTreeMap<i32, (Node, Vec<(TopicPartition, i64)>)> = BTreeMap::new();
        let mut retry = Vec::new();
        let mut last_error = None;
        for (tp, ts) in todo.drain(..) {
            match cluster.leader(&tp.topic, tp.partition) {
                Some((id, node)) => by_leader.entry(id).or_insert_with(|| (node, Vec::new())).1.push((tp, ts)),
                None => {
                    last_error = Some(ClientError::server(
                        vltava_proto::v1::ErrorCode::LeaderNotAvailable,
                        format!("no known leader for {tp}"),
                    ));
                    retry.push((tp, ts));
                }
            }
        }
        for (_, (node, parts)) in by_leader {
            let request = ListOffsetsRequest {
                partitions: parts
                    .iter()
                    .map(|(tp, ts)| ListOffsetsPartition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        timestamp: *ts,
                    })
                    .collect(),
            };
            let mut request = tonic::Request::new(request);
            request.set_timeout(cluster.request_timeout());
            match node.records().list_offsets(request).await {
                Ok(response) => {
                    for p in response.into_inner().partitions {
                        let tp = TopicPartition::new(p.topic, p.partition);
                        let Some(ts) = parts.iter().find(|(t, _)| *t == tp).map(|(_, ts)| *ts) else { continue };
                        match ClientError::from_partition_code(p.error_code, &p.error_message) {
                            None => {
                                result.insert(tp, p.offset);
                            }
                            Some(e) if e.is_retriable() => {
                                last_error = Some(e);
                                retry.push((tp, ts));
                            }
                            Some(e) => return Err(e),
                        }
                    }
                }
                Err(status) => {
                    let e = ClientError::from_status(&status, &node.address, cluster.request_timeout());
                    if !e.is_retriable() {
                        return Err(e);
                    }
                    last_error = Some(e);
                    retry.extend(parts);
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        if attempt >= MAX_ATTEMPTS || started.elapsed() > cluster.request_timeout() {
            return Err(
                last_error.unwrap_or(ClientError::Timeout { what: "listing offsets".into(), after: started.elapsed() })
            );
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
        let mut topics: Vec<String> = retry.iter().map(|(tp, _)| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        if let Err(e) = cluster.refresh(&topics).await {
            tracing::debug!(error = %e, "metadata refresh failed");
        }
        todo = retry;
    }
    Ok(result)
}

/// Runs `call` against each cluster-wide node until one answers with something other than a
/// transport failure.
pub(crate) async fn on_any_node<T, F, Fut>(cluster: &Cluster, mut call: F) -> Result<T, ClientError>
where
    F: FnMut(Node) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let mut last_error = None;
    for node in cluster.any_nodes() {
        let address = node.address.clone();
        match call(node).await {
            Ok(v) => return Ok(v),
            Err(status) => {
                let e = ClientError::from_status(&status, &address, cluster.request_timeout());
                let try_next = matches!(e, ClientError::Transport { .. } | ClientError::Connect { .. })
                    || e.code() == Some(vltava_proto::v1::ErrorCode::NotController);
                if !try_next {
                    return Err(e);
                }
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or(ClientError::Closed))
}

/// The group's committed offsets for `partitions` (all it committed when empty); -1 = none.
pub(crate) async fn fetch_committed(
    cluster: &Cluster,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<Vec<(TopicPartition, i64)>, ClientError> {
    let request = FetchOffsetsRequest {
        group_id: group.to_string(),
        partitions: partitions
            .iter()
            .map(|tp| vltava_proto::v1::TopicPartition { topic: tp.topic.clone(), partition: tp.partition })
            .collect(),
    };
    let timeout = cluster.request_timeout();
    let response = on_coordinator(cluster, group, |node| {
        let mut request = tonic::Request::new(request.clone());
        request.set_timeout(timeout);
        async move { node.groups().fetch_offsets(request).await }
    })
    .await?;
    Ok(response
        .into_inner()
        .offsets
        .into_iter()
        .map(|o| (TopicPartition::new(o.topic, o.partition), o.offset))
        .collect())
}

/// Commits `offsets` (the next offsets to read) for `group`; fails on the first partition error.
pub(crate) async fn commit(
    cluster: &Cluster,
    group: &str,
    offsets: &HashMap<TopicPartition, i64>,
) -> Result<(), ClientError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<_> = offsets.iter().collect();
    sorted.sort();
    let request = CommitOffsetsRequest {
        group_id: group.to_string(),
        offsets: sorted
            .into_iter()
            .map(|(tp, offset)| OffsetCommit {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: *offset,
                metadata: String::new(),
            })
            .collect(),
        member_id: String::new(),
        member_epoch: -1,
    };
    let timeout = cluster.request_timeout();
    let response = on_coordinator(cluster, group, |node| {
        let mut request = tonic::Request::new(request.clone());
        request.set_timeout(timeout);
        async move { node.groups().commit_offsets(request).await }
    })
    .await?;
    for r in response.into_inner().results {
        if let Some(e) = ClientError::from_partition_code(r.error_code, &r.error_message) {
            return Err(e);
        }
    }
    Ok(())
}

/// Every group with members or committed offsets: each broker lists the groups it coordinates
/// (through a gateway, the gateway asks them all).
pub(crate) async fn list_groups(cluster: &Cluster) -> Result<Vec<String>, ClientError> {
    let timeout = cluster.request_timeout();
    let nodes = match cluster.via_gateway() {
        Some(gateway) => vec![gateway],
        None => {
            cluster.refresh(&[]).await?;
            cluster.broker_nodes()
        }
    };
    let mut groups = std::collections::BTreeSet::new();
    for node in nodes {
        let mut request = tonic::Request::new(ListGroupsRequest {});
        request.set_timeout(timeout);
        let response = node
            .groups()
            .list_groups(request)
            .await
            .map_err(|status| ClientError::from_status(&status, &node.address, timeout))?;
        groups.extend(response.into_inner().group_ids);
    }
    Ok(groups.into_iter().collect())
}

/// Deletes `group` on its coordinator.
pub(crate) async fn delete_group(cluster: &Cluster, group: &str) -> Result<(), ClientError> {
    let timeout = cluster.request_timeout();
    let request = DeleteGroupsRequest { group_ids: vec![group.to_string()] };
    let response = on_coordinator(cluster, group, |node| {
        let mut request = tonic::Request::new(request.clone());
        request.set_timeout(timeout);
        async move {
            let response = node.groups().delete_groups(request).await?.into_inner();
            // A per-group NOT_COORDINATOR is a coordinator that moved: look it up again.
            match response.results.first() {
                Some(r) if r.error_code == ErrorCode::NotCoordinator as i32 => {
                    Err(vltava_common::WireError::new(ErrorCode::NotCoordinator, r.error_message.clone()).into_status())
                }
                _ => Ok(response),
            }
        }
    })
    .await?;
    match response.results.first() {
        Some(r) => match ClientError::from_partition_code(r.error_code, &r.error_message) {
            Some(e) => Err(e),
            None => Ok(()),
        },
        None => Err(ClientError::server(ErrorCode::UnknownServerError, format!("no answer for group {group}"))),
    }
}

/// Runs `call` on the coordinator of `group` (found with `FindCoordinator`; through a gateway,
/// on the gateway, which routes it). A coordinator that moved, is loading or cannot be reached
/// is looked up again, a bounded number of times.
pub(crate) async fn on_coordinator<T, F, Fut>(cluster: &Cluster, group: &str, mut call: F) -> Result<T, ClientError>
where
    F: FnMut(Node) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let timeout = cluster.request_timeout();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let node = match cluster.via_gateway() {
            Some(gateway) => Ok(gateway),
            None => find_coordinator(cluster, group).await,
        };
        let error = match node {
            Ok(node) => {
                let address = node.address.clone();
                match call(node).await {
                    Ok(v) => return Ok(v),
                    Err(status) => ClientError::from_status(&status, &address, timeout),
                }
            }
            Err(e) => e,
        };
        let again = matches!(error, ClientError::Transport { .. } | ClientError::Connect { .. })
            || matches!(
                error.code(),
                Some(
                    ErrorCode::NotCoordinator
                        | ErrorCode::CoordinatorLoadInProgress
                        | ErrorCode::CoordinatorNotAvailable
                )
            );
        if !again || attempt >= MAX_ATTEMPTS {
            return Err(error);
        }
        tokio::time::sleep(RETRY_BACKOFF * attempt).await;
    }
}

/// The coordinator of `group`, as any broker names it.
async fn find_coordinator(cluster: &Cluster, group: &str) -> Result<Node, ClientError> {
    let timeout = cluster.request_timeout();
    let found = on_any_node(cluster, |node| {
        let mut request = tonic::Request::new(FindCoordinatorRequest { group_id: group.to_string() });
        request.set_timeout(timeout);
        async move { node.groups().find_coordinator(request).await }
    })
    .await?
    .into_inner();
    cluster.broker_node(found.node_id, &found.address)
}
