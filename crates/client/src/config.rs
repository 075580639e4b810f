//! Typed client configuration, named after Kafka's client settings.
//!
//! Every field documents the Kafka property it mirrors; defaults are Kafka 3.x's unless noted.

use std::time::Duration;

use vltava_record::Compression;

use crate::error::ClientError;

/// Kafka's `acks`: how many replicas must acknowledge a produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=all` (-1): every in-sync replica. Kafka 3.0+'s default.
    #[default]
    All,
    /// `acks=1`: the leader only.
    Leader,
    /// `acks=0`: no acknowledgement; records resolve with offset -1 as soon as they are sent.
    None,
}

impl Acks {
    /// The wire value: -1, 1 or 0.
    pub fn as_i32(self) -> i32 {
        match self {
            Acks::All => -1,
            Acks::Leader => 1,
            Acks::None => 0,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = ClientError;

    /// Parses Kafka's spellings: `all`, `-1`, `1`, `0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" | "-1" => Ok(Acks::All),
            "1" | "leader" => Ok(Acks::Leader),
            "0" | "none" => Ok(Acks::None),
            other => Err(ClientError::Config(format!("acks must be all, -1, 1 or 0, not {other:?}"))),
        }
    }
}

/// Producer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`: one or more `host:port`, comma-separated.
    pub bootstrap: String,
    /// `acks`; default [`Acks::All`].
    pub acks: Acks,
    /// `batch.size`: a partition's batch is sealed once it holds this many (uncompressed) bytes.
    /// Default 16384.
    pub batch_size: usize,
    /// `linger.ms`: how long a non-full batch waits for more records. Default 5 ms (Kafka 3.9+/4.0).
    pub linger: Duration,
    /// `buffer.memory`: bytes of records waiting to be sent or acknowledged; `send` waits when
    /// it is exhausted. Default 32 MiB.
    pub buffer_memory: usize,
    /// `retries`: how often a failed batch is retried; default `u32::MAX`, so in practice
    /// bounded by `delivery_timeout`.
    pub retries: u32,
    /// `retry.backoff.ms`: pause before retrying a failed batch. Default 100 ms.
    pub retry_backoff: Duration,
    /// `max.in.flight.requests.per.connection`: produce requests outstanding per broker.
    /// Default 5, and at most 5 with idempotence. (Each partition has at most one request in
    /// flight, so order is kept on retry.)
    pub max_in_flight_requests_per_connection: usize,
    /// `enable.idempotence`: the producer gets a producer id and numbers its batches per
    /// partition, so that a retried batch the broker already stored is not stored twice and a
    /// lost one is noticed (`OUT_OF_ORDER_SEQUENCE_NUMBER`). Default true, as in Kafka 3+. It
    /// takes effect with `acks=all`; with `acks=0` or `1` the producer is not idempotent (what
    /// Kafka does when idempotence is not set explicitly).
    pub enable_idempotence: bool,
    /// `delivery.timeout.ms`: upper bound on the time from `send` to success or failure,
    /// retries included; also bounds how long `send` waits for buffer space (Kafka's
    /// `max.block.ms`). Default 120 s.
    pub delivery_timeout: Duration,
    /// `request.timeout.ms`: how long to wait for one produce response. Default 30 s.
    pub request_timeout: Duration,
    /// `compression.type`. Default none.
    pub compression: Compression,
    /// `max.request.size`: largest produce request (and so largest record). Default 1 MiB.
    pub max_request_size: usize,
    /// `metadata.max.age.ms`: metadata is refreshed at least this often. Default 5 min.
    pub metadata_max_age: Duration,
    /// Send every call to the bootstrap servers (a `vltava gateway`), which route each one to
    /// the partition leader, instead of connecting to the leaders directly. For clients that can
    /// reach only the gateway (another network, a load balancer in front). Default false.
    pub via_gateway: bool,
    /// `transactional.id`: makes the producer transactional (see [`crate::Producer::init_transactions`]).
    /// Needs idempotence (`enable.idempotence` and `acks=all`). Default none.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: a transaction open longer than this is aborted by its
    /// coordinator. Default 60 s.
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            bootstrap: "localhost:9092".to_string(),
            acks: Acks::All,
            batch_size: 16_384,
            linger: Duration::from_millis(5),
            buffer_memory: 32 * 1024 * 1024,
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            max_in_flight_requests_per_connection: 5,
            enable_idempotence: true,
            delivery_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            compression: Compression::None,
            max_request_size: 1024 * 1024,
            metadata_max_age: Duration::from_secs(300),
            via_gateway: false,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    /// The defaults with `bootstrap` set.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ProducerConfig { bootstrap: bootstrap.into(), ..Default::default() }
    }

    /// Whether the producer is idempotent: `enable.idempotence` with `acks=all`.
    pub fn idempotent(&self) -> bool {
        self.enable_idempotence && self.acks == Acks::All
    }

    /// Checks every value is usable; the error names the Kafka property.
    pub fn validate(&self) -> Result<(), ClientError> {
        validate_bootstrap(&self.bootstrap)?;
        let bad = |m: String| Err(ClientError::Config(m));
        if self.batch_size == 0 {
            return bad("batch.size must be positive".into());
        }
        if self.max_request_size == 0 || self.max_request_size > i32::MAX as usize {
            return bad(format!("max.request.size must be in 1..={}", i32::MAX));
        }
        if self.buffer_memory < self.batch_size {
            return bad(format!(
                "buffer.memory ({}) must be at least batch.size ({})",
                self.buffer_memory, self.batch_size
            ));
        }
        if self.buffer_memory > u32::MAX as usize {
            return bad(format!("buffer.memory must be at most {}", u32::MAX));
        }
        if self.max_in_flight_requests_per_connection == 0 {
            return bad("max.in.flight.requests.per.connection must be at least 1".into());
        }
        if self.idempotent() && self.max_in_flight_requests_per_connection > 5 {
            return bad(format!(
                "max.in.flight.requests.per.connection must be at most 5 with enable.idempotence (got {}); \
                 set enable_idempotence = false to allow more",
                self.max_in_flight_requests_per_connection
            ));
        }
        if self.request_timeout.is_zero() || self.request_timeout.as_millis() > i32::MAX as u128 {
            return bad("request.timeout.ms must be positive and fit an i32".into());
        }
        if self.delivery_timeout < self.linger + self.request_timeout {
            return bad(format!(
                "delivery.timeout.ms ({:?}) must be at least linger.ms + request.timeout.ms ({:?})",
                self.delivery_timeout,
                self.linger + self.request_timeout
            ));
        }
        if self.metadata_max_age.is_zero() {
            return bad("metadata.max.age.ms must be positive".into());
        }
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return bad("transactional.id must not be empty (leave it unset for no transactions)".into());
            }
            if !self.idempotent() {
                return bad("transactional.id needs enable.idempotence = true and acks = all".into());
            }
            if self.transaction_timeout.is_zero() || self.transaction_timeout.as_millis() > i32::MAX as u128 {
                return bad("transaction.timeout.ms must be positive and fit an i32".into());
            }
        }
        Ok(())
    }
}

/// Kafka's `auto.offset.reset`: where to start when there is no valid position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest` (the default): the high watermark, i.e. only new records.
    #[default]
    Latest,
    /// `none`: fail with [`ClientError::NoOffset`] (or the `OFFSET_OUT_OF_RANGE` error).
    None,
}

impl std::str::FromStr for OffsetReset {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "earliest" => Ok(OffsetReset::Earliest),
            "latest" => Ok(OffsetReset::Latest),
            "none" => Ok(OffsetReset::None),
            other => {
                Err(ClientError::Config(format!("auto.offset.reset must be earliest, latest or none, not {other:?}")))
            }
        }
    }
}

/// `isolation.level`: what a consumer sees of transactional records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted` (the default, as in Kafka): every record below the high watermark,
    /// including those of open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// `read_committed`: only committed transactional records (and all non-transactional ones),
    /// up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value (`vltava.v1.IsolationLevel`).
    pub fn wire(self) -> i32 {
        match self {
            IsolationLevel::ReadUncommitted => vltava_proto::v1::IsolationLevel::ReadUncommitted as i32,
            IsolationLevel::ReadCommitted => vltava_proto::v1::IsolationLevel::ReadCommitted as i32,
        }
    }
}

impl std::str::FromStr for IsolationLevel {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            other => Err(ClientError::Config(format!(
                "isolation.level must be read_uncommitted or read_committed, not {other:?}"
            ))),
        }
    }
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`: one or more `host:port`, comma-separated.
    pub bootstrap: String,
    /// `group.id`: the group whose committed offsets are used and written. Without one,
    /// positions come from `auto_offset_reset` and commits fail.
    pub group_id: Option<String>,
    /// `auto.offset.reset`; default [`OffsetReset::Latest`].
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit`: commit positions from `poll` every `auto_commit_interval` and on
    /// `close`. Default true (only effective with a `group_id`).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`. Default 5 s.
    pub auto_commit_interval: Duration,
    /// `fetch.min.bytes`: the broker answers once this much data is available. Default 1.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: largest fetch response. Default 50 MiB.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: largest amount returned per partition. Default 1 MiB.
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.wait.ms`: how long the broker may wait for `fetch_min_bytes`. Default 500 ms.
    pub fetch_max_wait: Duration,
    /// `check.crcs`: verify every fetched batch's CRC-32C. Default true.
    pub check_crcs: bool,
    /// `max.poll.records`: most records one `poll` returns. Default 500, as in Kafka: fetched
    /// data beyond it stays buffered and is returned by the next `poll` without a round trip,
    /// so the value only bounds the size of each returned `Vec`, not throughput.
    pub max_poll_records: usize,
    /// `request.timeout.ms`: how long to wait for one response (on top of `fetch_max_wait` for
    /// fetches). Default 30 s.
    pub request_timeout: Duration,
    /// Send every call to the bootstrap servers (a `vltava gateway`), which route each one to
    /// the partition leader, instead of connecting to the leaders directly. For clients that can
    /// reach only the gateway (another network, a load balancer in front). Default false.
    pub via_gateway: bool,
    /// `group.instance.id`: makes a subscribed consumer a static member. One that restarts with
    /// the same id within the group's session timeout gets its partitions back with no
    /// rebalance. Default none (a dynamic member).
    pub group_instance_id: Option<String>,
    /// `group.remote.assignor`: the coordinator's assignor, `uniform` or `range`. Default none
    /// (the coordinator's default, `uniform`).
    pub group_remote_assignor: Option<String>,
    /// `max.poll.interval.ms`: a subscribed consumer that does not call `poll` for this long
    /// leaves its group (its partitions go to the others) and rejoins on its next `poll`. Also
    /// the time the coordinator gives it to give up revoked partitions. Default 5 min.
    pub max_poll_interval: Duration,
    /// `client.id`: shown by `DescribeGroups`. Default `vltava-rust`.
    pub client_id: String,
    /// `client.rack`: the rack of this consumer's host. Default none.
    pub client_rack: Option<String>,
    /// `isolation.level`. Default `read_uncommitted`, as in Kafka.
    pub isolation_level: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            bootstrap: "localhost:9092".to_string(),
            group_id: None,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            fetch_max_wait: Duration::from_millis(500),
            check_crcs: true,
            max_poll_records: 500,
            request_timeout: Duration::from_secs(30),
            via_gateway: false,
            group_instance_id: None,
            group_remote_assignor: None,
            max_poll_interval: Duration::from_secs(300),
            client_id: "vltava-rust".to_string(),
            client_rack: None,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }
}

impl ConsumerConfig {
    /// The defaults with `bootstrap` set.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ConsumerConfig { bootstrap: bootstrap.into(), ..Default::default() }
    }

    /// Checks every value is usable; the error names the Kafka property.
    pub fn validate(&self) -> Result<(), ClientError> {
        validate_bootstrap(&self.bootstrap)?;
        let bad = |m: &str| Err(ClientError::Config(m.to_string()));
        if self.group_id.as_deref().is_some_and(|g| g.trim().is_empty()) {
            return bad("group.id must not be empty (leave it unset for no group)");
        }
        if self.fetch_min_bytes < 0 {
            return bad("fetch.min.bytes must not be negative");
        }
        if self.fetch_max_bytes <= 0 || self.max_partition_fetch_bytes <= 0 {
            return bad("fetch.max.bytes and max.partition.fetch.bytes must be positive");
        }
        if self.fetch_max_wait.as_millis() > i32::MAX as u128 {
            return bad("fetch.max.wait.ms must fit an i32");
        }
        if self.max_poll_records == 0 {
            return bad("max.poll.records must be at least 1");
        }
        if self.enable_auto_commit && self.auto_commit_interval.is_zero() {
            return bad("auto.commit.interval.ms must be positive");
        }
        if self.request_timeout.is_zero() {
            return bad("request.timeout.ms must be positive");
        }
        if self.max_poll_interval.is_zero() || self.max_poll_interval.as_millis() > i32::MAX as u128 {
            return bad("max.poll.interval.ms must be positive and fit an i32");
        }
        if self.group_instance_id.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return bad("group.instance.id must not be empty (leave it unset for a dynamic member)");
        }
        if self.group_remote_assignor.as_deref().is_some_and(|a| !matches!(a, "uniform" | "range")) {
            return bad("group.remote.assignor must be uniform or range");
        }
        Ok(())
    }
}

/// Splits `bootstrap.servers` into addresses.
pub(crate) fn bootstrap_addresses(bootstrap: &str) -> Vec<String> {
    bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.strip_prefix("http://").unwrap_or(s).to_string())
        .collect()
}

fn validate_bootstrap(bootstrap: &str) -> Result<(), ClientError> {
    let addresses = bootstrap_addresses(bootstrap);
    if addresses.is_empty() {
        return Err(ClientError::Config("bootstrap.servers must name at least one host:port".into()));
    }
    for a in &addresses {
        let ok = a.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(ClientError::Config(format!("bootstrap.servers entry {a:?} is not host:port")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let p = ProducerConfig::default();
        assert_eq!(p.acks, Acks::All);
        assert_eq!(p.batch_size, 16_384);
        assert_eq!(p.buffer_memory, 32 << 20);
        assert_eq!(p.max_in_flight_requests_per_connection, 5);
        p.validate().unwrap();
        let c = ConsumerConfig::default();
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert!(c.enable_auto_commit);
        c.validate().unwrap();
    }

    #[test]
    fn invalid_values_name_the_kafka_property() {
        let cases: Vec<(ProducerConfig, &str)> = vec![
            (ProducerConfig { batch_size: 0, ..Default::default() }, "batch.size"),
            (ProducerConfig { bootstrap: "nohost".into(), ..Default::default() }, "bootstrap.servers"),
            (ProducerConfig { bootstrap: " , ".into(), ..Default::default() }, "bootstrap.servers"),
            (ProducerConfig { buffer_memory: 100, ..Default::default() }, "buffer.memory"),
            (ProducerConfig { max_in_flight_requests_per_connection: 0, ..Default::default() }, "max.in.flight"),
            (ProducerConfig { delivery_timeout: Duration::from_secs(1), ..Default::default() }, "delivery.timeout.ms"),
        ];
        for (cfg, needle) in cases {
            let e = cfg.validate().unwrap_err();
            assert!(matches!(e, ClientError::Config(ref m) if m.contains(needle)), "{needle}: {e}");
        }
        let c = ConsumerConfig { group_id: Some(" ".into()), ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("group.id"));
        let c = ConsumerConfig { max_poll_records: 0, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("max.poll.records"));
    }

    #[test]
    fn parses_kafka_spellings() {
        assert_eq!("all".parse::<Acks>().unwrap(), Acks::All);
        assert_eq!("-1".parse::<Acks>().unwrap(), Acks::All);
        assert_eq!("1".parse::<Acks>().unwrap().as_i32(), 1);
        assert_eq!("0".parse::<Acks>().unwrap().as_i32(), 0);
        assert!("2".parse::<Acks>().is_err());
        assert_eq!("earliest".parse::<OffsetReset>().unwrap(), OffsetReset::Earliest);
        assert_eq!(bootstrap_addresses("a:1, http://b:2,"), vec!["a:1".to_string(), "b:2".to_string()]);
    }
}
