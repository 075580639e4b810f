//! [`ClientError`]: the one error type of the SDK.

use std::time::Duration;

use tonic::{Code, Status};
use vltava_common::WireError;
use vltava_common::error::code_name;
use vltava_proto::v1::{ErrorCode, ErrorDetail};
use vltava_record::RecordError;

/// Everything a producer, consumer or admin call can fail with.
///
/// Server-side failures keep their Kafka-style code ([`ClientError::code`]); use
/// [`ClientError::is_retriable`] to decide whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a Kafka-style error (a failed call or a per-partition error code).
    /// Displays as `NOT_LEADER_OR_FOLLOWER: <message>`.
    #[error("{0}")]
    Server(#[from] WireError),
    /// No connection could be established to a bootstrap server or broker.
    #[error("cannot connect to {address}: {message}")]
    Connect {
        /// The `host:port` that could not be reached.
        address: String,
        /// Why.
        message: String,
    },
    /// A call failed below the Vltava protocol (connection reset, HTTP/2 error, ...).
    #[error("transport error talking to {address}: {message}")]
    Transport {
        /// The `host:port` of the peer.
        address: String,
        /// Why.
        message: String,
    },
    /// Something did not complete in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long was waited.
        after: Duration,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The consumer has no position for a partition: nothing committed and `auto.offset.reset`
    /// is `none` (Kafka's `NoOffsetForPartitionException`).
    #[error("no offset for {topic}-{partition}: nothing committed and auto.offset.reset is none")]
    NoOffset {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A fetched record batch failed its CRC or could not be decoded.
    #[error("corrupt record batch in {topic}-{partition}: {source}")]
    Corrupt {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// What was wrong with the batch.
        #[source]
        source: RecordError,
    },
    /// A record is larger than a client limit (`max.request.size` or `buffer.memory`).
    #[error("record of {size} bytes is larger than {setting} ({max} bytes)")]
    RecordTooLarge {
        /// Estimated encoded size of the record.
        size: usize,
        /// The limit.
        max: usize,
        /// Kafka name of the setting that imposes the limit.
        setting: &'static str,
    },
    /// The consumer was asked about a partition it is not assigned.
    #[error("partition {topic}-{partition} is not assigned to this consumer")]
    NotAssigned {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// The client was closed.
    #[error("client is closed")]
    Closed,
    /// A transactional producer can go on no longer (Kafka's fatal errors, such as
    /// `ProducerFencedException`: a newer producer with the same `transactional.id` exists).
    /// Close the producer.
    #[error("fatal transactional error: {0}")]
    TransactionFatal(String),
    /// The current transaction cannot commit (a send failed, or the coordinator aborted it):
    /// call `abort_transaction`, then start again.
    #[error("the transaction must be aborted: {0}")]
    TransactionAbortable(String),
    /// A transactional call came out of order (Kafka's `IllegalStateException`), such as
    /// `send` before `begin_transaction`.
    #[error("illegal transactional state: {0}")]
    IllegalState(String),
}

impl ClientError {
    /// The Kafka-style code of this error, when there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server(e) => Some(e.code),
            ClientError::Timeout { .. } => Some(ErrorCode::RequestTimedOut),
            ClientError::Corrupt { .. } => Some(ErrorCode::CorruptMessage),
            ClientError::RecordTooLarge { .. } => Some(ErrorCode::RecordTooLarge),
            _ => None,
        }
    }

    /// The short name of [`ClientError::code`], e.g. `NOT_LEADER_OR_FOLLOWER`.
    pub fn code_name(&self) -> Option<&'static str> {
        self.code().map(code_name)
    }

    /// Whether the same operation may succeed if tried again (after a metadata refresh).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Server(e) => e.retriable(),
            ClientError::Connect { .. } | ClientError::Transport { .. } => true,
            ClientError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// A server error with a code and a message.
    pub(crate) fn server(code: ErrorCode, message: impl Into<String>) -> Self {
        ClientError::Server(WireError::new(code, message))
    }

    /// Decodes a failed call to `address`.
    ///
    /// A status carrying an [`ErrorDetail`] is a Vltava error ([`ClientError::Server`]); a bare
    /// `UNAVAILABLE`/`UNKNOWN`/`CANCELLED` status is a transport failure; a bare
    /// `DEADLINE_EXCEEDED` (the client-side request timeout) is a [`ClientError::Timeout`].
    pub(crate) fn from_status(status: &Status, address: &str, timeout: Duration) -> Self {
        if has_error_detail(status) {
            return ClientError::Server(WireError::from_status(status));
        }
        match status.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled => {
                ClientError::Transport { address: address.to_string(), message: status.message().to_string() }
            }
            Code::DeadlineExceeded => ClientError::Timeout { what: format!("request to {address}"), after: timeout },
            _ => ClientError::Server(WireError::from_status(status)),
        }
    }

    /// A per-partition error code from a response (`NONE` gives `None`).
    pub(crate) fn from_partition_code(code: i32, message: &str) -> Option<Self> {
        let code = ErrorCode::try_from(code).unwrap_or(ErrorCode::UnknownServerError);
        (code != ErrorCode::None).then(|| ClientError::server(code, message))
    }
}

/// Whether the status details hold a real [`ErrorDetail`] (a Vltava error, not a transport one).
fn has_error_detail(status: &Status) -> bool {
    use prost::Message;
    ErrorDetail::decode(status.details()).is_ok_and(|d| d.code != ErrorCode::None as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_keep_their_kafka_code() {
        let status = WireError::new(ErrorCode::NotLeaderOrFollower, "broker 2 leads it").into_status();
        let e = ClientError::from_status(&status, "h:1", Duration::from_secs(1));
        assert_eq!(e.code(), Some(ErrorCode::NotLeaderOrFollower));
        assert_eq!(e.to_string(), "NOT_LEADER_OR_FOLLOWER: broker 2 leads it");
        assert!(e.is_retriable());
        assert_eq!(e.code_name(), Some("NOT_LEADER_OR_FOLLOWER"));

        let status = WireError::new(ErrorCode::CorruptMessage, "bad crc").into_status();
        let e = ClientError::from_status(&status, "h:1", Duration::from_secs(1));
        assert!(!e.is_retriable());
    }

    #[test]
    fn bare_statuses_are_transport_or_timeout() {
        let e = ClientError::from_status(&Status::unavailable("tcp connect error"), "h:1", Duration::from_secs(1));
        assert!(matches!(e, ClientError::Transport { ref address, .. } if address == "h:1"), "{e:?}");
        assert!(e.is_retriable());
        let e = ClientError::from_status(&Status::deadline_exceeded("slow"), "h:1", Duration::from_secs(3));
        assert!(matches!(e, ClientError::Timeout { after, .. } if after == Duration::from_secs(3)));
        assert_eq!(e.code(), Some(ErrorCode::RequestTimedOut));
    }

    #[test]
    fn partition_codes_decode() {
        assert_eq!(ClientError::from_partition_code(0, ""), None);
        let e = ClientError::from_partition_code(ErrorCode::OffsetOutOfRange as i32, "out").unwrap();
        assert_eq!(e.code(), Some(ErrorCode::OffsetOutOfRange));
    }
}
