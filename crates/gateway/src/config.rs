//! Gateway configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything a gateway needs to start. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Address to listen on for gRPC (used by whoever binds the listener handed to [`crate::run`]).
    pub listen: String,
    /// Broker addresses (`host:port`) used to discover the cluster and to serve admin and group calls.
    pub bootstrap: Vec<String>,
    /// Controller addresses (`host:port`). When set, the gateway follows the controllers' metadata
    /// stream and routes by every change as it is committed, instead of polling a broker.
    pub controllers: Vec<String>,
    /// Cached cluster metadata older than this is refreshed before use (`metadata.max.age.ms`).
    #[serde(with = "humantime_serde")]
    pub metadata_max_age: Duration,
    /// Longest time one call to a broker may take before its response starts (`request.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How many times a call failing with a retriable error is retried (`retries`).
    pub retries: u32,
    /// Pause before the first retry; it grows linearly with each further attempt (`retry.backoff.ms`).
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Largest gRPC message exchanged with brokers, and largest response sent to clients, in bytes.
    pub max_message_bytes: usize,
    /// Largest request a client may send, in bytes; a larger one is refused with `OUT_OF_RANGE`
    /// before it is read into memory.
    pub max_request_bytes: usize,
    /// Unary calls served at once. One more is shed at once with `RESOURCE_EXHAUSTED` (it is not
    /// queued), so an overloaded gateway answers quickly instead of piling up work.
    pub max_concurrent_requests: usize,
    /// Streaming calls (`Subscribe`, `Consume`) open at once; further ones get `RESOURCE_EXHAUSTED`.
    pub max_concurrent_streams: usize,
    /// Longest a unary call may take at the gateway, retries included, before the client gets
    /// `DEADLINE_EXCEEDED`. A shorter `grpc-timeout` sent by the client wins.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// HTTP/2 connections kept to each broker; calls are spread over them in turn.
    pub connections_per_broker: usize,
    /// On shutdown, how long open streams (`Subscribe`, `Consume`) may go on before they end with
    /// `UNAVAILABLE`, so that their clients reconnect elsewhere. Unary calls in flight always finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7071".into(),
            bootstrap: vec!["127.0.0.1:7070".into()],
            controllers: Vec::new(),
            metadata_max_age: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            retries: 5,
            retry_backoff: Duration::from_millis(100),
            max_message_bytes: 100 << 20,
            max_request_bytes: 16 << 20,
            max_concurrent_requests: 1024,
            max_concurrent_streams: 1024,
            call_timeout: Duration::from_secs(60),
            connections_per_broker: 2,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl GatewayConfig {
    /// Checks the values that would make the gateway useless.
    pub fn validate(&self) -> Result<(), String> {
        if self.bootstrap.iter().all(|a| a.trim().is_empty()) {
            return Err("bootstrap must name at least one broker address".into());
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be positive".into());
        }
        if self.max_message_bytes == 0 || self.max_request_bytes == 0 {
            return Err("max_message_bytes and max_request_bytes must be positive".into());
        }
        if self.max_concurrent_requests == 0 || self.max_concurrent_streams == 0 {
            return Err("max_concurrent_requests and max_concurrent_streams must be positive".into());
        }
        if self.call_timeout.is_zero() {
            return Err("call_timeout must be positive".into());
        }
        if self.connections_per_broker == 0 {
            return Err("connections_per_broker must be at least 1".into());
        }
        Ok(())
    }

    /// The gRPC message size limit, with room for framing around the largest record payload.
    pub fn grpc_message_limit(&self) -> usize {
        self.max_message_bytes.saturating_add(64 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_gives_the_defaults() {
        use serde::de::value::{Error, MapDeserializer};
        let empty = MapDeserializer::<_, Error>::new(std::iter::empty::<(&str, &str)>());
        let c = GatewayConfig::deserialize(empty).unwrap();
        assert_eq!(c, GatewayConfig::default());
        assert!(c.validate().is_ok());
    }
}
