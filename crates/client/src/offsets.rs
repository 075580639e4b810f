//! Offset look-ups and group offset storage shared by the consumer and the admin client.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use vltava_proto::v1::{
    AlterConsumerGroupOffsetsRequest, CommitOffsetsRequest, DeleteGroupsRequest, DescribeGroupsRequest, ErrorCode,
    FetchOffsetsRequest, FindCoordinatorRequest, FindTransactionCoordinatorRequest, GroupDescription,
    ListGroupsRequest, ListOffsetsPartition, ListOffsetsRequest, OffsetCommit, PartitionResult,
};

use crate::cluster::{Cluster, Node};
use crate::config::IsolationLevel;
use crate::error::ClientError;
use crate::types::{OffsetAndMetadata, TopicPartition};

/// Pause between attempts of a retriable look-up.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Attempts of a retriable look-up.
const MAX_ATTEMPTS: u32 = 10;

/// `ListOffsets` for each `(partition, timestamp)` (-2 earliest, -1 latest: the high watermark,
/// or the last stable offset with read_committed), asked of each partition's leader. Retriable failures refresh metadata and retry a bounded number of times.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    requests: &[(TopicPartition, i64)],
    isolation: IsolationLevel,
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
                isolation_level: isolation.wire(),
            };
            match node.records().list_offsets(timed(request, cluster.request_timeout())).await {
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

/// `message` as a request that gives up after `timeout`.
pub(crate) fn timed<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
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
        let request = timed(request.clone(), timeout);
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

/// Commits `offsets` (the next offsets to read, with metadata) for `group`, as `member` (its id
/// and epoch; `None` outside the group's membership); fails on the first partition error.
pub(crate) async fn commit(
    cluster: &Cluster,
    group: &str,
    member: Option<(String, i32)>,
    offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
) -> Result<(), ClientError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<_> = offsets.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let (member_id, member_epoch) = member.unwrap_or((String::new(), -1));
    let request = CommitOffsetsRequest {
        group_id: group.to_string(),
        offsets: sorted.into_iter().map(|(tp, o)| offset_commit(tp, o.offset, &o.metadata)).collect(),
        member_id,
        member_epoch,
    };
    let timeout = cluster.request_timeout();
    let response = on_coordinator(cluster, group, |node| {
        let request = timed(request.clone(), timeout);
        async move { node.groups().commit_offsets(request).await }
    })
    .await?;
    first_refusal(response.into_inner().results)
}

fn offset_commit(tp: &TopicPartition, offset: i64, metadata: &str) -> OffsetCommit {
    OffsetCommit { topic: tp.topic.clone(), partition: tp.partition, offset, metadata: metadata.to_string() }
}

/// The first partition an offsets call refused, as an error.
fn first_refusal(results: Vec<PartitionResult>) -> Result<(), ClientError> {
    match results.into_iter().find_map(|r| ClientError::from_partition_code(r.error_code, &r.error_message)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
        let request = timed(ListGroupsRequest {}, timeout);
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
    one_group(
        cluster,
        group,
        |node| {
            let request = timed(request.clone(), timeout);
            async move { Ok(node.groups().delete_groups(request).await?.into_inner().results) }
        },
        |r| (r.error_code, r.error_message.clone()),
    )
    .await
    .map(|_| ())
}

/// Runs a per-group call (`DeleteGroups`, `DescribeGroups`) for `group` alone on its
/// coordinator and returns its one answer. An answer saying `NOT_COORDINATOR` is retried like a
/// coordinator that moved; any other error code in it is returned as the error.
async fn one_group<R, F, Fut>(
    cluster: &Cluster,
    group: &str,
    call: F,
    code: fn(&R) -> (i32, String),
) -> Result<R, ClientError>
where
    F: Fn(Node) -> Fut,
    Fut: Future<Output = Result<Vec<R>, tonic::Status>>,
{
    let answers = on_coordinator(cluster, group, |node| {
        let answers = call(node);
        async move {
            let answers = answers.await?;
            match answers.first().map(code) {
                Some((c, message)) if c == ErrorCode::NotCoordinator as i32 => {
                    Err(vltava_common::WireError::new(ErrorCode::NotCoordinator, message).into_status())
                }
                _ => Ok(answers),
            }
        }
    })
    .await?;
    let Some(answer) = answers.into_iter().next() else {
        return Err(ClientError::server(ErrorCode::UnknownServerError, format!("no answer for group {group}")));
    };
    let (c, message) = code(&answer);
    match ClientError::from_partition_code(c, &message) {
        Some(e) => Err(e),
        None => Ok(answer),
    }
}

/// Sets `group`'s committed offsets by hand (`AlterConsumerGroupOffsets`); fails on the first
/// refused partition (then nothing was stored).
pub(crate) async fn alter_group_offsets(
    cluster: &Cluster,
    group: &str,
    offsets: &[(TopicPartition, i64)],
) -> Result<(), ClientError> {
    let timeout = cluster.request_timeout();
    let request = AlterConsumerGroupOffsetsRequest {
        group_id: group.to_string(),
        offsets: offsets.iter().map(|(tp, offset)| offset_commit(tp, *offset, "")).collect(),
    };
    let response = on_coordinator(cluster, group, |node| {
        let request = timed(request.clone(), timeout);
        async move { node.groups().alter_consumer_group_offsets(request).await }
    })
    .await?;
    first_refusal(response.into_inner().results)
}

/// Describes `group` on its coordinator.
pub(crate) async fn describe_group(cluster: &Cluster, group: &str) -> Result<GroupDescription, ClientError> {
    let timeout = cluster.request_timeout();
    let request = DescribeGroupsRequest { group_ids: vec![group.to_string()] };
    one_group(
        cluster,
        group,
        |node| {
            let request = timed(request.clone(), timeout);
            async move { Ok(node.groups().describe_groups(request).await?.into_inner().groups) }
        },
        |d| (d.error_code, d.error_message.clone()),
    )
    .await
}

/// Whose coordinator a call needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CoordinatorKey<'a> {
    /// A consumer group's (`__consumer_offsets`).
    Group(&'a str),
    /// A transactional id's (`__transaction_state`).
    Transaction(&'a str),
}

impl CoordinatorKey<'_> {
    /// The key of the cluster's coordinator cache (transactional ids apart from groups).
    fn cache_key(&self) -> String {
        match self {
            CoordinatorKey::Group(g) => (*g).to_string(),
            CoordinatorKey::Transaction(t) => format!("\u{0}txn\u{0}{t}"),
        }
    }
}

/// Runs `call` on the coordinator of `group` (found with `FindCoordinator` and cached; through a
/// gateway, on the gateway, which routes it). A coordinator that moved, is loading or cannot be
/// reached is looked up again, a bounded number of times.
pub(crate) async fn on_coordinator<T, F, Fut>(cluster: &Cluster, group: &str, call: F) -> Result<T, ClientError>
where
    F: FnMut(Node) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    on_coordinator_of(cluster, CoordinatorKey::Group(group), call).await
}

/// Runs `call` on the coordinator of `key` (see [`on_coordinator`]).
pub(crate) async fn on_coordinator_of<T, F, Fut>(
    cluster: &Cluster,
    key: CoordinatorKey<'_>,
    mut call: F,
) -> Result<T, ClientError>
where
    F: FnMut(Node) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let timeout = cluster.request_timeout();
    let cache_key = key.cache_key();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let node = match cluster.via_gateway() {
            Some(gateway) => Ok(gateway),
            None => match cluster.cached_coordinator(&cache_key) {
                Some(node) => Ok(node),
                None => find_coordinator(cluster, key).await.inspect(|node| {
                    cluster.cache_coordinator(&cache_key, Some(node.clone()));
                }),
            },
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
        // Whatever failed, look the coordinator up afresh next time.
        cluster.cache_coordinator(&cache_key, None);
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

/// The coordinator of `key`, as any broker names it.
async fn find_coordinator(cluster: &Cluster, key: CoordinatorKey<'_>) -> Result<Node, ClientError> {
    let timeout = cluster.request_timeout();
    let (node_id, address) = match key {
        CoordinatorKey::Group(group) => {
            let found = on_any_node(cluster, |node| {
                let request = timed(FindCoordinatorRequest { group_id: group.to_string() }, timeout);
                async move { node.groups().find_coordinator(request).await }
            })
            .await?
            .into_inner();
            (found.node_id, found.address)
        }
        CoordinatorKey::Transaction(id) => {
            let found = on_any_node(cluster, |node| {
                let request = timed(FindTransactionCoordinatorRequest { transactional_id: id.to_string() }, timeout);
                async move { node.transactions().find_transaction_coordinator(request).await }
            })
            .await?
            .into_inner();
            (found.node_id, found.address)
        }
    };
    cluster.broker_node(node_id, &address)
}
