//! Kafka's binary protocol in front of a Vltava broker, so that unmodified Kafka clients
//! (librdkafka and kcat, confluent-kafka, kafka-python, the Java client) work with
//! `bootstrap.servers` pointed at Vltava.
//!
//! The listener is an adapter, not a second broker: every request is decoded with the
//! `kafka-protocol` crate and answered by the same broker handlers as its gRPC twin (produce,
//! fetch, admin, groups, transactions), on the same [`vltava_broker::Broker`] state. Errors keep
//! their codes: Vltava numbers them as Kafka does.
//!
//! # Layout
//! A request reads one hop per file:
//! [`listener`] (accept) → [`connection`] (frames in, responses out in request order) →
//! [`frame`] (header and bounds) → [`dispatch`] (API key and version → handler, span, metrics) →
//! `api/<name>.rs` (Kafka message ↔ broker handler) → `vltava_broker`.
//!
//! - [`versions`]: the APIs and version ranges served ([`versions::SUPPORTED`]), which
//!   ApiVersions announces and the README's compatibility table lists.
//! - [`metrics`]: requests and their latency by API, protocol errors, open connections.
//! - [`error`]: [`KafkaError`], what closes a connection.

pub mod api;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod frame;
pub mod listener;
pub mod metrics;
pub mod versions;

pub use error::KafkaError;
pub use listener::KafkaListener;
