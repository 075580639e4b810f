//! [`Cluster`]: broker connections and the partition-leader metadata cache shared by every client.
//!
//! One `tonic` channel per broker (HTTP/2 multiplexes all calls to it, each carrying the caller's
//! trace context, see [`vltava_common::grpc::traced`]), created lazily from
//! the addresses `AdminService.Metadata` returns. Topic metadata is cached per topic with the
//! time it was fetched, in a [`ClusterView`] (the type the gateway routes by too); callers refresh
//! it on leadership errors and when it gets old.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tonic::transport::Endpoint;
use vltava_common::cluster::{ClusterView, TopicLayout};
use vltava_common::grpc::{TracedChannel, traced};
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::record_service_client::RecordServiceClient;
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
use vltava_proto::v1::{ErrorCode, MetadataRequest, MetadataResponse};

use crate::config::bootstrap_addresses;
use crate::error::ClientError;

/// Largest gRPC message a client accepts (fetch responses can be `fetch.max.bytes` = 50 MiB+).
pub(crate) const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// A broker's address and the connection to it.
#[derive(Debug, Clone)]
struct Broker {
    address: String,
    channel: TracedChannel,
}

/// The cached metadata ([`ClusterView`], shared with the gateway) and a connection per broker it
/// names (brokers whose address does not parse get none).
#[derive(Debug, Default)]
struct State {
    view: ClusterView,
    brokers: HashMap<i32, Broker>,
}

/// A connection to the node that can answer a call, with its address for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// `host:port`.
    pub address: String,
    /// The multiplexed connection.
    pub channel: TracedChannel,
}

impl Node {
    /// A `RecordService` client accepting large responses.
    pub fn records(&self) -> RecordServiceClient<TracedChannel> {
        RecordServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// An `AdminService` client.
    pub fn admin(&self) -> AdminServiceClient<TracedChannel> {
        AdminServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// A `GroupService` client.
    pub fn groups(&self) -> GroupServiceClient<TracedChannel> {
        GroupServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// A `TransactionService` client.
    pub fn transactions(&self) -> TransactionServiceClient<TracedChannel> {
        TransactionServiceClient::new(self.channel.clone())
    }
}

/// Connections and metadata of one Vltava cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    bootstrap: Vec<Node>,
    request_timeout: Duration,
    /// Every call goes to the first bootstrap node (a gateway) instead of the partition leader.
    via_gateway: bool,
    state: RwLock<State>,
    /// The coordinator last found for each group (Kafka clients cache it too); forgotten when a
    /// call to it fails.
    coordinators: parking_lot::Mutex<std::collections::HashMap<String, Node>>,
}

fn endpoint(address: &str) -> Result<Endpoint, ClientError> {
    let endpoint = vltava_common::grpc::data_endpoint(address)
        .map_err(|e| ClientError::Config(format!("invalid address {address:?}: {e}")))?;
    Ok(endpoint.connect_timeout(Duration::from_secs(10)))
}

impl Cluster {
    /// Connects to the first reachable bootstrap server (the others are connected lazily). With
    /// `via_gateway`, calls meant for partition leaders go to that server too.
    pub async fn connect(
        bootstrap: &str,
        request_timeout: Duration,
        via_gateway: bool,
    ) -> Result<Arc<Cluster>, ClientError> {
        let addresses = bootstrap_addresses(bootstrap);
        let mut nodes = Vec::with_capacity(addresses.len());
        let mut last_error = None;
        let mut connected = false;
        for address in addresses {
            let endpoint = endpoint(&address)?;
            if connected {
                nodes.push(Node { channel: traced(endpoint.connect_lazy()), address });
                continue;
            }
            match endpoint.connect().await {
                Ok(channel) => {
                    connected = true;
                    nodes.insert(0, Node { channel: traced(channel), address });
                }
                Err(e) => {
                    last_error = Some(ClientError::Connect { message: error_chain(&e), address: address.clone() });
                    nodes.push(Node { channel: traced(endpoint.connect_lazy()), address });
                }
            }
        }
        if !connected {
            return Err(last_error.unwrap_or_else(|| ClientError::Config("no bootstrap servers".into())));
        }
        Ok(Arc::new(Cluster {
            bootstrap: nodes,
            request_timeout,
            via_gateway,
            state: RwLock::new(State::default()),
            coordinators: parking_lot::Mutex::default(),
        }))
    }

    /// The cached coordinator of `group`, if any.
    pub fn cached_coordinator(&self, group: &str) -> Option<Node> {
        self.coordinators.lock().get(group).cloned()
    }

    /// Caches `node` as the coordinator of `group`, or forgets it (`None`).
    pub fn cache_coordinator(&self, group: &str, node: Option<Node>) {
        let mut cache = self.coordinators.lock();
        match node {
            Some(node) => {
                cache.insert(group.to_string(), node);
            }
            None => {
                cache.remove(group);
            }
        }
    }

    /// The request timeout used for metadata and admin calls.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Nodes to try for cluster-wide calls (admin, groups, metadata): bootstrap servers first,
    /// then the known brokers.
    pub fn any_nodes(&self) -> Vec<Node> {
        let mut nodes = self.bootstrap.clone();
        let state = self.state.read();
        let mut brokers: Vec<_> = state.brokers.iter().collect();
        brokers.sort_by_key(|(id, _)| **id);
        for (_, b) in brokers {
            if !nodes.iter().any(|n| n.address == b.address) {
                nodes.push(Node { address: b.address.clone(), channel: b.channel.clone() });
            }
        }
        nodes
    }

    /// Whether every call goes through the first bootstrap node (a gateway), which routes it.
    pub fn via_gateway(&self) -> Option<Node> {
        if self.via_gateway { self.bootstrap.first().cloned() } else { None }
    }

    /// A connection to broker `id` at `address`: the cached one when the address matches, else
    /// a new lazy one (and cached).
    pub fn broker_node(&self, id: i32, address: &str) -> Result<Node, ClientError> {
        if let Some(b) = self.state.read().brokers.get(&id).filter(|b| b.address == address) {
            return Ok(Node { address: b.address.clone(), channel: b.channel.clone() });
        }
        let broker = Broker { channel: traced(endpoint(address)?.connect_lazy()), address: address.to_string() };
        let node = Node { address: broker.address.clone(), channel: broker.channel.clone() };
        self.state.write().brokers.insert(id, broker);
        Ok(node)
    }

    /// Every broker the cached metadata names, by id.
    pub fn broker_nodes(&self) -> Vec<Node> {
        let state = self.state.read();
        let mut brokers: Vec<_> = state.brokers.iter().collect();
        brokers.sort_by_key(|(id, _)| **id);
        brokers.into_iter().map(|(_, b)| Node { address: b.address.clone(), channel: b.channel.clone() }).collect()
    }

    /// The cached metadata of a topic.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicLayout>> {
        self.state.read().view.topic(name).cloned()
    }

    /// The leader of a partition and a connection to it, if metadata knows one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<(i32, Node)> {
        let state = self.state.read();
        let leader = state.view.leader(topic, partition)?;
        if self.via_gateway {
            // The gateway routes the call; the leader id still groups partitions per request.
            return self.bootstrap.first().map(|gateway| (leader, gateway.clone()));
        }
        let broker = state.brokers.get(&leader)?;
        Some((leader, Node { address: broker.address.clone(), channel: broker.channel.clone() }))
    }

    /// Cached metadata of `topic`, fetched if missing or older than `max_age`.
    ///
    /// Fails with `UNKNOWN_TOPIC_OR_PARTITION` when a fresh fetch shows the topic does not exist.
    pub async fn topic_or_fetch(&self, topic: &str, max_age: Duration) -> Result<Arc<TopicLayout>, ClientError> {
        if let Some(meta) = self.topic(topic)
            && meta.fetched.elapsed() < max_age
        {
            return Ok(meta);
        }
        let missing = self.refresh(&[topic.to_string()]).await?;
        match self.topic(topic) {
            Some(meta) if missing.is_empty() => Ok(meta),
            _ => Err(unknown_topic(topic)),
        }
    }

    /// Fetches metadata for `topics` (all topics when empty) and updates the cache.
    ///
    /// Returns the requested topics that do not exist (they are dropped from the cache).
    pub async fn refresh(&self, topics: &[String]) -> Result<Vec<String>, ClientError> {
        match self.metadata(topics).await {
            Ok(response) => Ok(self.apply(topics, response)),
            // A server may refuse the whole request for one unknown topic: ask one by one.
            Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) && topics.len() > 1 => {
                let mut missing = Vec::new();
                for topic in topics {
                    missing.extend(Box::pin(self.refresh(std::slice::from_ref(topic))).await?);
                }
                Ok(missing)
            }
            Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {
                let mut state = self.state.write();
                for t in topics {
                    state.view.topics.remove(t);
                }
                Ok(topics.to_vec())
            }
            Err(e) => Err(e),
        }
    }

    /// One `Metadata` call, trying each known node until one answers.
    pub async fn metadata(&self, topics: &[String]) -> Result<MetadataResponse, ClientError> {
        let mut last_error = None;
        for node in self.any_nodes() {
            let mut request = tonic::Request::new(MetadataRequest { topics: topics.to_vec() });
            request.set_timeout(self.request_timeout);
            match node.admin().metadata(request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => {
                    let e = ClientError::from_status(&status, &node.address, self.request_timeout);
                    if matches!(e, ClientError::Server(_)) && e.code() != Some(ErrorCode::NotController) {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(ClientError::Closed))
    }

    fn apply(&self, requested: &[String], response: MetadataResponse) -> Vec<String> {
        let fetched = ClusterView::from_metadata(response);
        let mut state = self.state.write();
        for (&id, address) in &fetched.brokers {
            let same = state.brokers.get(&id).is_some_and(|old| old.address == *address);
            if !same {
                match endpoint(address) {
                    Ok(e) => {
                        let broker = Broker { channel: traced(e.connect_lazy()), address: address.clone() };
                        state.brokers.insert(id, broker);
                    }
                    Err(e) => tracing::warn!(broker = id, error = %e, "ignoring broker with a bad address"),
                }
            }
        }
        let missing: Vec<String> = requested.iter().filter(|t| !fetched.topics.contains_key(*t)).cloned().collect();
        state.view.merge(fetched);
        for t in &missing {
            state.view.topics.remove(t);
        }
        missing
    }
}

/// `UNKNOWN_TOPIC_OR_PARTITION` for a topic.
pub(crate) fn unknown_topic(topic: &str) -> ClientError {
    ClientError::server(ErrorCode::UnknownTopicOrPartition, format!("topic {topic:?} does not exist"))
}

/// An error and its sources, joined with `: `.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
