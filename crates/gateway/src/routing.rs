//! The metadata cache, a small pool of connections per broker, and the two ways of reaching a broker: the leader
//! of a partition ([`Router::call_leader`], [`Router::scatter_gather`]) or any of them
//! ([`Router::call_any`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tonic::{Code, Status};
use vltava_common::cluster::{ClusterView, TopicLayout};
use vltava_common::error::{ERROR_CODE_METADATA, WireError};
// Every call to a broker carries the caller's trace context.
use vltava_common::grpc::{TracedChannel as Channel, traced};
use vltava_proto::v1::admin_service_client::AdminServiceClient;
use vltava_proto::v1::record_service_client::RecordServiceClient;
use vltava_proto::v1::{ErrorCode, MetadataRequest, MetadataResponse};

use crate::config::GatewayConfig;

/// Longest long-poll the gateway passes on to a broker (the broker's default `fetch_max_wait`).
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

/// The router's snapshot of the cluster: a [`ClusterView`] (the metadata type the Rust SDK caches
/// too) and when it was learned.
#[derive(Debug, Default)]
pub struct CachedView {
    /// Brokers, topics and partition leaders.
    pub cluster: ClusterView,
    /// Bumped at every successful refresh (0: never fetched).
    pub generation: u64,
    fetched_at: Option<Instant>,
}

impl CachedView {
    fn from_response(resp: MetadataResponse, generation: u64) -> Self {
        Self { cluster: ClusterView::from_metadata(resp), generation, fetched_at: Some(Instant::now()) }
    }

    /// A view of a cluster image streamed from the controllers (live brokers only).
    pub fn from_image(image: &vltava_metadata::ClusterImage, generation: u64) -> Self {
        let now = Instant::now();
        let brokers = image.live_brokers().map(|b| (b.id, b.address.clone())).collect();
        let topics = image
            .topics
            .values()
            .map(|t| {
                let layout = TopicLayout::new(t.partitions.iter().map(|p| (p.partition, p.leader)), now);
                (t.name.clone(), Arc::new(layout))
            })
            .collect();
        Self { cluster: ClusterView { brokers, topics }, generation, fetched_at: Some(now) }
    }
}

/// Routes calls to brokers: caches cluster metadata and keeps one lazily connected channel per
/// broker address. Cheap to share behind an `Arc`.
pub struct Router {
    config: GatewayConfig,
    view: RwLock<Arc<CachedView>>,
    stale: AtomicBool,
    /// Set while the controllers' metadata stream feeds the view (no polling needed).
    streamed: AtomicBool,
    refreshing: tokio::sync::Mutex<()>,
    channels: Mutex<HashMap<String, ChannelPool>>,
}

/// The connections to one broker, used in turn.
struct ChannelPool {
    channels: Vec<Channel>,
    next: AtomicUsize,
}

impl ChannelPool {
    fn next(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }
}

/// `INVALID_CONFIG` (gRPC `INVALID_ARGUMENT`) for a broker address that does not parse: it comes
/// from the configured bootstrap list or from a broker's advertised address, and no retry fixes
/// it, so the routing codes (`BROKER_NOT_AVAILABLE`, `LEADER_NOT_AVAILABLE`, both retriable and
/// `UNAVAILABLE`) would mislead.
fn bad_address(address: &str, e: &dyn std::fmt::Display) -> Status {
    WireError::new(ErrorCode::InvalidConfig, format!("bad broker address {address:?}: {e}")).into_status()
}

/// Whether a failed call never reached a broker's handler (connection refused, reset, ...).
pub fn is_transport_error(status: &Status) -> bool {
    status.code() == Code::Unavailable && status.metadata().get(ERROR_CODE_METADATA).is_none()
}

/// The Kafka error code a broker put on a failed call, if a broker answered.
pub fn broker_error_code(status: &Status) -> Option<ErrorCode> {
    status.metadata().get(ERROR_CODE_METADATA).map(|_| WireError::from_status(status).code)
}

impl Router {
    /// A router with an empty cache; the first call fetches metadata.
    pub fn new(config: GatewayConfig) -> Self {
        Self {
            config,
            view: RwLock::new(Arc::new(CachedView::default())),
            stale: AtomicBool::new(true),
            streamed: AtomicBool::new(false),
            refreshing: tokio::sync::Mutex::new(()),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// A (lazily connected) channel to a broker address. The gateway keeps
    /// `connections_per_broker` HTTP/2 connections to each broker, created on first use, and hands
    /// them out in turn: one connection's stream limit and flow-control window do not cap the
    /// gateway's throughput to a busy leader.
    pub fn channel(&self, address: &str) -> Result<Channel, Status> {
        let mut pools = self.channels.lock();
        if let Some(pool) = pools.get(address) {
            return Ok(pool.next());
        }
        // 1 MiB frames and large windows: fetch responses pass through the gateway.
        let endpoint = vltava_common::grpc::data_endpoint(address)
            .map_err(|e| bad_address(address, &e))?
            .connect_timeout(self.config.request_timeout)
            // A fetch may long-poll for up to MAX_FETCH_WAIT before the broker answers.
            .timeout(self.config.request_timeout + MAX_FETCH_WAIT);
        // Each lazily connected channel is its own connection.
        let channels =
            (0..self.config.connections_per_broker.max(1)).map(|_| traced(endpoint.connect_lazy())).collect();
        let pool = ChannelPool { channels, next: AtomicUsize::new(0) };
        let channel = pool.next();
        pools.insert(address.to_string(), pool);
        Ok(channel)
    }

    /// A `RecordService` client on `channel` with the gateway's message size limits.
    pub fn records(&self, channel: Channel) -> RecordServiceClient<Channel> {
        let limit = self.config.grpc_message_limit();
        RecordServiceClient::new(channel).max_decoding_message_size(limit).max_encoding_message_size(limit)
    }

    /// Installs a view pushed by the controllers' metadata stream.
    pub fn install_image(&self, image: &vltava_metadata::ClusterImage) {
        let mut view = self.view.write();
        *view = Arc::new(CachedView::from_image(image, view.generation + 1));
        self.streamed.store(true, Ordering::Release);
        self.stale.store(false, Ordering::Release);
    }

    /// Marks the cached metadata out of date; the next use refreshes it.
    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// The cached view, refreshed first when older than `metadata_max_age` or invalidated. If the
    /// refresh fails the old view is returned (callers then fall back to a bootstrap broker).
    pub async fn view(&self) -> Arc<CachedView> {
        let current = self.view.read().clone();
        let young = self.streamed.load(Ordering::Acquire)
            || current.fetched_at.is_some_and(|t| t.elapsed() < self.config.metadata_max_age);
        if young && !self.stale.load(Ordering::Acquire) {
            return current;
        }
        match self.refresh().await {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!(error = %e, "metadata refresh failed; using the cached view");
                current
            }
        }
    }

    /// Fetches metadata from a broker now. Concurrent callers share one fetch.
    pub async fn refresh(&self) -> Result<Arc<CachedView>, Status> {
        let seen = self.view.read().generation;
        let _guard = self.refreshing.lock().await;
        let current = self.view.read().clone();
        if current.generation != seen {
            return Ok(current);
        }
        self.stale.store(false, Ordering::Release);
        let fetched = self
            .call_any(|ch| async move {
                AdminServiceClient::new(ch).metadata(MetadataRequest::default()).await.map(|r| r.into_inner())
            })
            .await;
        match fetched {
            Ok(resp) => {
                let view = Arc::new(CachedView::from_response(resp, seen + 1));
                let (brokers, partitions) = (view.cluster.brokers.len(), view.cluster.partitions());
                tracing::debug!(brokers, partitions, "metadata refreshed");
                *self.view.write() = view.clone();
                Ok(view)
            }
            Err(e) => {
                self.stale.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Bootstrap addresses first, then every other known broker.
    fn any_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = self.config.bootstrap.iter().filter(|a| !a.trim().is_empty()).cloned().collect();
        let view = self.view.read().clone();
        let mut known: Vec<&String> = view.cluster.brokers.values().filter(|a| !out.contains(a)).collect();
        known.sort();
        out.extend(known.into_iter().cloned());
        out
    }

    /// Runs `call` against a bootstrap broker, trying the next one on transport errors. Any answer
    /// from a broker (success or error status) is returned as is.
    pub async fn call_any<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        // No address to try at all (the answer when every broker is unreachable is the last
        // broker's transport error).
        let mut last = WireError::new(ErrorCode::BrokerNotAvailable, "no broker address configured").into_status();
        for address in self.any_addresses() {
            match call(self.channel(&address)?).await {
                Err(status) if is_transport_error(&status) => {
                    tracing::debug!(%address, error = %status, "broker unreachable; trying the next");
                    last = status;
                }
                other => return other,
            }
        }
        Err(last)
    }

    /// Runs `call` against the leader of a partition. Retriable failures (transport errors,
    /// `NOT_LEADER_OR_FOLLOWER`, `LEADER_NOT_AVAILABLE`, and `UNKNOWN_TOPIC_OR_PARTITION` for a
    /// partition fresh metadata does know) are retried up to `retries` times after a metadata
    /// refresh and a backoff; every other failure is the broker's status, unchanged. A partition
    /// with no known leader is sent to a bootstrap broker, so that a broker gives the answer.
    pub async fn call_leader<T, F, Fut>(&self, topic: &str, partition: i32, mut call: F) -> Result<T, Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut attempt: u32 = 0;
        loop {
            let view = self.view().await;
            let address = match view.cluster.leader_address(topic, partition) {
                Some(a) => a.to_string(),
                None => {
                    let any = self.any_addresses();
                    any.get(attempt as usize % any.len().max(1)).cloned().unwrap_or_default()
                }
            };
            let status = match call(self.channel(&address)?).await {
                Ok(v) => return Ok(v),
                Err(status) => status,
            };
            if attempt >= self.config.retries || !self.worth_retrying(&status, topic, partition).await {
                return Err(status);
            }
            attempt += 1;
            tracing::debug!(topic, partition, %address, attempt, error = %status, "retrying on the partition leader");
            self.invalidate();
            tokio::time::sleep(self.config.retry_backoff * attempt).await;
        }
    }

    async fn worth_retrying(&self, status: &Status, topic: &str, partition: i32) -> bool {
        if is_transport_error(status) {
            return true;
        }
        match broker_error_code(status) {
            Some(ErrorCode::NotLeaderOrFollower | ErrorCode::LeaderNotAvailable) => true,
            // Right after a creation the broker may not have applied the topic yet.
            Some(ErrorCode::UnknownTopicOrPartition) => {
                self.refresh().await.is_ok_and(|v| v.cluster.has_partition(topic, partition))
            }
            _ => false,
        }
    }

    /// Sends `parts` to their partition leaders, one `call` per leader, concurrently, and returns
    /// one result per part in the order of `parts`. Parts without a leader get
    /// `fail(part, code, message)`, and so do all parts of a leader whose call failed (with the
    /// broker's code). Per-partition leadership errors invalidate the cached metadata.
    pub async fn scatter_gather<P, R, K, E, C, F, Fut>(
        &self,
        parts: &[P],
        key: K,
        fail: E,
        error_of: C,
        call: F,
    ) -> Vec<R>
    where
        P: Clone,
        R: Default,
        K: Fn(&P) -> (&str, i32),
        E: Fn(&P, ErrorCode, String) -> R,
        C: Fn(&R) -> i32,
        F: Fn(Channel, Vec<P>) -> Fut,
        Fut: Future<Output = Result<Vec<R>, Status>>,
    {
        let mut view = self.view().await;
        if parts.iter().any(|p| {
            let (t, i) = key(p);
            view.cluster.leader_address(t, i).is_none()
        }) {
            view = self.refresh().await.unwrap_or(view);
        }
        let mut out: Vec<R> = parts.iter().map(|_| R::default()).collect();
        let mut by_leader: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in parts.iter().enumerate() {
            let (topic, partition) = key(p);
            match view.cluster.leader_address(topic, partition) {
                Some(address) => by_leader.entry(address).or_default().push(i),
                None => {
                    let code = view.cluster.unroutable_code(topic, partition);
                    out[i] = fail(p, code, format!("no leader known for {topic}-{partition}"));
                }
            }
        }
        let calls = by_leader.into_iter().map(|(address, idxs)| {
            let sub: Vec<P> = idxs.iter().map(|&i| parts[i].clone()).collect();
            let sent = self.channel(address).map(|ch| call(ch, sub));
            async move {
                let result = match sent {
                    Ok(fut) => fut.await,
                    Err(e) => Err(e),
                };
                (idxs, result)
            }
        });
        for (idxs, result) in futures::future::join_all(calls).await {
            match result {
                Ok(rs) if rs.len() == idxs.len() => idxs.into_iter().zip(rs).for_each(|(i, r)| out[i] = r),
                Ok(rs) => {
                    let msg = format!("broker answered {} partitions for {}", rs.len(), idxs.len());
                    idxs.into_iter().for_each(|i| out[i] = fail(&parts[i], ErrorCode::UnknownServerError, msg.clone()));
                }
                Err(status) => {
                    let e = WireError::from_status(&status);
                    idxs.into_iter().for_each(|i| out[i] = fail(&parts[i], e.code, e.message.clone()));
                }
            }
        }
        let leadership = [ErrorCode::NotLeaderOrFollower, ErrorCode::LeaderNotAvailable];
        if out.iter().any(|r| leadership.iter().any(|c| *c as i32 == error_of(r))) {
            self.invalidate();
        }
        out
    }
}
