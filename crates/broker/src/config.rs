//! Broker configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vltava_storage::LogConfig;

/// Everything a broker needs to start. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BrokerConfig {
    /// This broker's id, unique in the cluster (`node.id`).
    pub broker_id: i32,
    /// Address to listen on for gRPC.
    pub listen: String,
    /// Address clients are told to connect to; defaults to `listen` (with `127.0.0.1` for an
    /// unspecified host).
    pub advertised_address: Option<String>,
    /// Rack, for rack-aware replica placement.
    pub rack: Option<String>,
    /// Address of the Kafka protocol listener (Kafka's `listeners`), so that Kafka clients
    /// connect unchanged; `off` runs none. Its frames are bounded by `max_request_bytes`.
    pub kafka_listen: String,
    /// Address Kafka clients are told to connect to (`advertised.listeners`); defaults to
    /// `kafka_listen` (with `127.0.0.1` for an unspecified host).
    pub kafka_advertised_address: Option<String>,
    /// Directory of the partition logs (`logs/`).
    pub data_dir: PathBuf,
    /// Create unknown topics on first produce or metadata request (`auto.create.topics.enable`).
    pub auto_create_topics_enable: bool,
    /// Partition count of auto-created topics (`num.partitions`).
    pub num_partitions: i32,
    /// Replication factor of topics created without one (`default.replication.factor`).
    pub default_replication_factor: i32,
    /// Default `min.insync.replicas` for topics that do not set it.
    pub min_insync_replicas: i32,
    /// Log defaults; topics override them with Kafka's per-topic names.
    pub log: LogConfig,
    /// How often retention runs (`log.retention.check.interval.ms`).
    #[serde(with = "humantime_serde")]
    pub retention_check_interval: Duration,
    /// How often the log cleaner compacts the `cleanup.policy=compact` partitions
    /// (`log.cleaner.backoff.ms`).
    #[serde(with = "humantime_serde")]
    pub cleaner_interval: Duration,
    /// Most distinct keys one cleaning pass maps (bounds its memory, as
    /// `log.cleaner.dedupe.buffer.size` does); a pass stops at the segment that would exceed it.
    pub cleaner_max_keys: usize,
    /// The most bytes a second a cleaning pass reads (`log.cleaner.io.max.bytes.per.second`),
    /// so that compaction leaves the machine to producers and consumers; 0 (the default, as in
    /// Kafka) sets no limit.
    pub cleaner_io_max_bytes_per_sec: u64,
    /// How often `flush.ms` deadlines are checked.
    #[serde(with = "humantime_serde")]
    pub flush_check_interval: Duration,
    /// Largest gRPC request accepted, in bytes (`socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Default fetch response limit when a request gives none (`fetch.max.bytes`).
    pub fetch_max_bytes: usize,
    /// Longest long-poll a fetch may ask for.
    #[serde(with = "humantime_serde")]
    pub fetch_max_wait: Duration,
    /// Default time a produce with `acks=all` waits for replication.
    #[serde(with = "humantime_serde")]
    pub produce_timeout: Duration,
    /// Controller addresses, `host:port` separated by commas (`vltava broker` only; `vltava dev`
    /// runs its controller in process).
    pub controllers: String,
    /// The cluster id; registration with a controller of another cluster fails. Empty accepts any.
    pub cluster_id: String,
    /// Time between two heartbeats to the controller (`broker.heartbeat.interval.ms`).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long a stopping broker waits for the controller to move its leaderships away.
    #[serde(with = "humantime_serde")]
    pub controlled_shutdown_timeout: Duration,
    /// On shutdown, after the controlled shutdown, how long open `Subscribe` streams may go on
    /// before they end with `UNAVAILABLE` (their clients reconnect to the new leaders).
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How long a partition remembers an idempotent producer after its last batch
    /// (Kafka's `producer.id.expiration.ms`, default 1 day); a retry after that is stored again.
    #[serde(with = "humantime_serde")]
    pub producer_id_expiration: Duration,
    /// How often expired producers are looked for (`producer.id.expiration.check.interval.ms`).
    #[serde(with = "humantime_serde")]
    pub producer_id_expiration_check_interval: Duration,
    /// Follower replication and ISR management.
    pub replication: ReplicationConfig,
    /// The group coordinator (Kafka's `offsets.topic.*` and `group.consumer.*`).
    pub groups: GroupCoordinatorConfig,
    /// The transaction coordinator (`[transactions]`).
    pub transactions: TransactionCoordinatorConfig,
}

/// The transaction coordinator: the `__transaction_state` topic and transaction timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TransactionCoordinatorConfig {
    /// Partitions of `__transaction_state` when it is created
    /// (`transaction.state.log.num.partitions`).
    pub state_topic_num_partitions: i32,
    /// Its replication factor, capped at the live broker count when it is created
    /// (`transaction.state.log.replication.factor`).
    pub state_topic_replication_factor: i32,
    /// The longest `transaction.timeout.ms` a producer may ask for (`transaction.max.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub max_timeout: Duration,
    /// How often open transactions are checked for their timeout, and unfinished markers retried
    /// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    #[serde(with = "humantime_serde")]
    pub cleanup_interval: Duration,
    /// How long a write to `__transaction_state`, and a marker, waits for replication.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// A transactional id with no transaction open and no call for this long is forgotten
    /// (`transactional.id.expiration.ms`, 7 days): its next producer starts with a new producer id.
    #[serde(with = "humantime_serde")]
    pub transactional_id_expiration: Duration,
}

impl Default for TransactionCoordinatorConfig {
    fn default() -> Self {
        Self {
            state_topic_num_partitions: 50,
            state_topic_replication_factor: 3,
            max_timeout: Duration::from_secs(15 * 60),
            cleanup_interval: Duration::from_secs(1),
            write_timeout: Duration::from_secs(5),
            transactional_id_expiration: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The group coordinator: the `__consumer_offsets` topic and consumer group sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GroupCoordinatorConfig {
    /// Partitions of `__consumer_offsets` when it is created (`offsets.topic.num.partitions`).
    pub offsets_topic_num_partitions: i32,
    /// Its replication factor, capped at the live broker count when it is created
    /// (`offsets.topic.replication.factor`).
    pub offsets_topic_replication_factor: i32,
    /// A member that sends no heartbeat for this long is removed
    /// (`group.consumer.session.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How often members are told to heartbeat (`group.consumer.heartbeat.interval.ms`).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long a write to `__consumer_offsets` waits for replication (`offsets.commit.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long a classic group (Kafka clients' JoinGroup protocol) that was empty waits for more
    /// members before its first rebalance completes (`group.initial.rebalance.delay.ms`).
    #[serde(with = "humantime_serde")]
    pub initial_rebalance_delay: Duration,
    /// Shortest session timeout a classic group member may ask for (`group.min.session.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub min_session_timeout: Duration,
    /// Longest session timeout a classic group member may ask for (`group.max.session.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub max_session_timeout: Duration,
}

impl Default for GroupCoordinatorConfig {
    fn default() -> Self {
        Self {
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            initial_rebalance_delay: Duration::from_secs(3),
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// How followers fetch from leaders, and when leaders change the ISR (Kafka's `replica.*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReplicationConfig {
    /// A follower not caught up for this long leaves the ISR (`replica.lag.time.max.ms`).
    #[serde(with = "humantime_serde")]
    pub lag_time_max: Duration,
    /// Longest a follower's fetch waits on the leader for new records (`replica.fetch.wait.max.ms`).
    #[serde(with = "humantime_serde")]
    pub fetch_wait_max: Duration,
    /// Records per partition in one replica fetch (`replica.fetch.max.bytes`).
    pub fetch_max_bytes: usize,
    /// Size of one replica fetch response over all partitions (`replica.fetch.response.max.bytes`).
    pub fetch_response_max_bytes: usize,
    /// Pause after a failed replica fetch (`replica.fetch.backoff.ms`).
    #[serde(with = "humantime_serde")]
    pub fetch_backoff: Duration,
    /// How often a leader checks its partitions' ISR for members to drop or add.
    #[serde(with = "humantime_serde")]
    pub isr_check_interval: Duration,
    /// How often high watermarks are checkpointed to disk
    /// (`replica.high.watermark.checkpoint.interval.ms`).
    #[serde(with = "humantime_serde")]
    pub high_watermark_checkpoint_interval: Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            lag_time_max: Duration::from_secs(10),
            fetch_wait_max: Duration::from_millis(500),
            fetch_max_bytes: 1024 * 1024,
            fetch_response_max_bytes: 10 * 1024 * 1024,
            fetch_backoff: Duration::from_millis(100),
            isr_check_interval: Duration::from_millis(250),
            high_watermark_checkpoint_interval: Duration::from_secs(5),
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            broker_id: 1,
            listen: "127.0.0.1:7070".into(),
            advertised_address: None,
            rack: None,
            kafka_listen: "0.0.0.0:9092".into(),
            kafka_advertised_address: None,
            data_dir: PathBuf::from("./data/broker"),
            auto_create_topics_enable: false,
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            log: LogConfig::default(),
            retention_check_interval: Duration::from_secs(300),
            cleaner_interval: Duration::from_secs(15),
            cleaner_max_keys: 1_000_000,
            cleaner_io_max_bytes_per_sec: 0,
            flush_check_interval: Duration::from_secs(1),
            max_request_bytes: 100 * 1024 * 1024,
            fetch_max_bytes: 50 * 1024 * 1024,
            fetch_max_wait: Duration::from_secs(30),
            produce_timeout: Duration::from_secs(30),
            controllers: String::new(),
            cluster_id: String::new(),
            heartbeat_interval: Duration::from_millis(250),
            controlled_shutdown_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            producer_id_expiration: Duration::from_secs(24 * 3600),
            producer_id_expiration_check_interval: Duration::from_secs(600),
            replication: ReplicationConfig::default(),
            groups: GroupCoordinatorConfig::default(),
            transactions: TransactionCoordinatorConfig::default(),
        }
    }
}

impl BrokerConfig {
    /// Checks values that would only fail later, and at a worse moment.
    pub fn validate(&self) -> Result<(), String> {
        if self.broker_id < 0 {
            return Err(format!("broker_id must be >= 0, got {}", self.broker_id));
        }
        if self.num_partitions < 1 {
            return Err(format!("num_partitions must be >= 1, got {}", self.num_partitions));
        }
        if self.default_replication_factor < 1 || self.min_insync_replicas < 1 {
            return Err("default_replication_factor and min_insync_replicas must be >= 1".into());
        }
        if self.heartbeat_interval.is_zero() {
            return Err("heartbeat_interval must be positive".into());
        }
        let r = &self.replication;
        if r.lag_time_max.is_zero() || r.isr_check_interval.is_zero() || r.fetch_wait_max.is_zero() {
            return Err("replication.lag_time_max, isr_check_interval and fetch_wait_max must be positive".into());
        }
        if r.fetch_max_bytes < 1024 || r.fetch_response_max_bytes < r.fetch_max_bytes {
            return Err("replication.fetch_max_bytes must be >= 1024 and <= fetch_response_max_bytes".into());
        }
        let t = &self.transactions;
        if t.state_topic_num_partitions < 1 || t.state_topic_replication_factor < 1 {
            return Err(
                "transactions.state_topic_num_partitions and state_topic_replication_factor must be >= 1".into()
            );
        }
        if t.max_timeout.is_zero() || t.cleanup_interval.is_zero() || t.write_timeout.is_zero() {
            return Err("transactions.max_timeout, cleanup_interval and write_timeout must be positive".into());
        }
        let g = &self.groups;
        if g.offsets_topic_num_partitions < 1 || g.offsets_topic_replication_factor < 1 {
            return Err("groups.offsets_topic_num_partitions and offsets_topic_replication_factor must be >= 1".into());
        }
        if g.session_timeout.is_zero() || g.heartbeat_interval.is_zero() || g.write_timeout.is_zero() {
            return Err("groups.session_timeout, heartbeat_interval and write_timeout must be positive".into());
        }
        if g.heartbeat_interval >= g.session_timeout {
            return Err("groups.heartbeat_interval must be shorter than groups.session_timeout".into());
        }
        if self.max_request_bytes < 1024 {
            return Err(format!("max_request_bytes is too small: {}", self.max_request_bytes));
        }
        self.log.validate().map_err(|e| e.to_string())
    }

    /// The address advertised to clients, given the address the listener is bound to (so that
    /// port 0 advertises the real port, and an unspecified host advertises `127.0.0.1`).
    pub fn advertised(&self, bound: std::net::SocketAddr) -> String {
        if let Some(a) = &self.advertised_address {
            return a.clone();
        }
        if bound.ip().is_unspecified() { format!("127.0.0.1:{}", bound.port()) } else { bound.to_string() }
    }

    /// The address the Kafka protocol listener binds, or `None` when `kafka_listen` is `off`.
    pub fn kafka_listen_address(&self) -> Option<&str> {
        match self.kafka_listen.trim() {
            "" | "off" => None,
            a => Some(a),
        }
    }

    /// The address advertised to Kafka clients, given the address the Kafka listener is bound to
    /// (as [`BrokerConfig::advertised`] does for gRPC).
    pub fn kafka_advertised(&self, bound: std::net::SocketAddr) -> String {
        if let Some(a) = &self.kafka_advertised_address {
            return a.clone();
        }
        if bound.ip().is_unspecified() { format!("127.0.0.1:{}", bound.port()) } else { bound.to_string() }
    }

    /// The controller addresses.
    pub fn controller_addresses(&self) -> Vec<String> {
        self.controllers.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    }

    /// Directory of partition logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}
