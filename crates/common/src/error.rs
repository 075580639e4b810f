//! Kafka-style error codes at the wire edge.
//!
//! A failed RPC is a `tonic::Status` whose details hold an encoded [`ErrorDetail`] and whose
//! metadata holds `vltava-error-code: <NAME>`, so that clients in any language (and `grpcurl`)
//! can tell what went wrong and whether to retry. [`WireError`] is the Rust view of it.

use prost::Message;
use tonic::{Code, Status};
pub use vltava_proto::v1::{ErrorCode, ErrorDetail};

/// Metadata key carrying the error code name on failed responses.
pub const ERROR_CODE_METADATA: &str = "vltava-error-code";

/// A Kafka-style error as it crosses the wire: a code, a message and, for offset errors, the valid range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str_name().trim_start_matches("ERROR_CODE_"))]
pub struct WireError {
    /// What went wrong.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// For `OFFSET_OUT_OF_RANGE`: first readable offset.
    pub log_start_offset: i64,
    /// For `OFFSET_OUT_OF_RANGE`: the high watermark.
    pub high_watermark: i64,
}

impl WireError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), log_start_offset: -1, high_watermark: -1 }
    }

    /// `OFFSET_OUT_OF_RANGE` with the valid range.
    pub fn offset_out_of_range(offset: i64, log_start_offset: i64, high_watermark: i64) -> Self {
        Self {
            code: ErrorCode::OffsetOutOfRange,
            message: format!(
                "offset {offset} is outside the log: valid offsets are {log_start_offset}..{high_watermark}"
            ),
            log_start_offset,
            high_watermark,
        }
    }

    /// Whether retrying the same request (after a metadata refresh) may succeed.
    pub fn retriable(&self) -> bool {
        is_retriable(self.code)
    }

    /// The code's short name, e.g. `NOT_LEADER_OR_FOLLOWER`.
    pub fn code_name(&self) -> &'static str {
        code_name(self.code)
    }

    /// Decodes a status produced by [`WireError::into_status`]; other statuses map to a
    /// best-effort code from the gRPC code.
    pub fn from_status(status: &Status) -> Self {
        if let Ok(detail) = ErrorDetail::decode(status.details())
            && let Ok(code) = ErrorCode::try_from(detail.code)
            && code != ErrorCode::None
        {
            return Self {
                code,
                message: detail.message,
                log_start_offset: detail.log_start_offset,
                high_watermark: detail.high_watermark,
            };
        }
        let code = match status.code() {
            Code::DeadlineExceeded => ErrorCode::RequestTimedOut,
            Code::Unavailable => ErrorCode::LeaderNotAvailable,
            Code::NotFound => ErrorCode::UnknownTopicOrPartition,
            Code::InvalidArgument => ErrorCode::InvalidRequest,
            _ => ErrorCode::UnknownServerError,
        };
        Self::new(code, status.message().to_string())
    }

    /// The gRPC status for this error, with the detail encoded and the code name in metadata.
    pub fn into_status(self) -> Status {
        let detail = ErrorDetail {
            code: self.code as i32,
            message: self.message.clone(),
            retriable: self.retriable(),
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark,
        };
        let message = self.to_string();
        let mut status = Status::with_details(grpc_code(self.code), message, detail.encode_to_vec().into());
        if let Ok(v) = code_name(self.code).parse() {
            status.metadata_mut().insert(ERROR_CODE_METADATA, v);
        }
        status
    }
}

impl From<WireError> for Status {
    fn from(e: WireError) -> Self {
        e.into_status()
    }
}

/// The code's short name without the proto prefix, e.g. `CORRUPT_MESSAGE`.
pub fn code_name(code: ErrorCode) -> &'static str {
    code.as_str_name().trim_start_matches("ERROR_CODE_")
}

/// Whether an error with this code may go away on retry.
pub fn is_retriable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::LeaderNotAvailable
            | ErrorCode::NotLeaderOrFollower
            | ErrorCode::RequestTimedOut
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::NotController
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::BrokerNotAvailable
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::NewLeaderElected
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::NotCoordinator
            | ErrorCode::StaleMemberEpoch
            | ErrorCode::ConcurrentTransactions
            | ErrorCode::RebalanceInProgress
            | ErrorCode::UnstableOffsetCommit
    )
}

/// The gRPC status code that best describes a Kafka error code.
pub fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::None => Code::Ok,
        ErrorCode::UnknownTopicOrPartition => Code::NotFound,
        ErrorCode::TopicAlreadyExists => Code::AlreadyExists,
        ErrorCode::OffsetOutOfRange => Code::OutOfRange,
        ErrorCode::CorruptMessage
        | ErrorCode::RecordTooLarge
        | ErrorCode::InvalidTopic
        | ErrorCode::InvalidRequiredAcks
        | ErrorCode::InvalidGroupId
        | ErrorCode::InvalidTimestamp
        | ErrorCode::InvalidPartitions
        | ErrorCode::InvalidReplicationFactor
        | ErrorCode::InvalidConfig
        | ErrorCode::InvalidRequest
        | ErrorCode::UnsupportedCompressionType
        | ErrorCode::InvalidVoterChange
        | ErrorCode::InvalidReplicaAssignment
        | ErrorCode::UnsupportedAssignor
        | ErrorCode::InvalidRegularExpression
        | ErrorCode::InvalidRecord => Code::InvalidArgument,
        ErrorCode::CoordinatorLoadInProgress | ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
            Code::Unavailable
        }
        ErrorCode::GroupIdNotFound => Code::NotFound,
        ErrorCode::IllegalGeneration
        | ErrorCode::UnknownMemberId
        | ErrorCode::NonEmptyGroup
        | ErrorCode::FencedInstanceId
        | ErrorCode::FencedMemberEpoch
        | ErrorCode::UnreleasedInstanceId
        | ErrorCode::StaleMemberEpoch
        | ErrorCode::InconsistentGroupProtocol
        | ErrorCode::MemberIdRequired
        | ErrorCode::GroupSubscribedToTopic => Code::FailedPrecondition,
        ErrorCode::InvalidSessionTimeout | ErrorCode::OffsetMetadataTooLarge => Code::InvalidArgument,
        ErrorCode::RebalanceInProgress => Code::Aborted,
        ErrorCode::UnstableOffsetCommit => Code::Unavailable,
        ErrorCode::OutOfOrderSequenceNumber
        | ErrorCode::DuplicateSequenceNumber
        | ErrorCode::InvalidProducerEpoch
        | ErrorCode::InvalidTxnState
        | ErrorCode::InvalidProducerIdMapping
        | ErrorCode::UnknownProducerId
        | ErrorCode::ProducerFenced
        | ErrorCode::TransactionCoordinatorFenced
        | ErrorCode::OperationNotAttempted => Code::FailedPrecondition,
        ErrorCode::InvalidTransactionTimeout => Code::InvalidArgument,
        ErrorCode::ConcurrentTransactions => Code::Unavailable,
        ErrorCode::TransactionalIdNotFound => Code::NotFound,
        ErrorCode::StaleBrokerEpoch | ErrorCode::DuplicateBrokerRegistration | ErrorCode::InconsistentClusterId => {
            Code::FailedPrecondition
        }
        ErrorCode::BrokerNotAvailable => Code::Unavailable,
        ErrorCode::LeaderNotAvailable
        | ErrorCode::NotLeaderOrFollower
        | ErrorCode::NotController
        | ErrorCode::NotEnoughReplicas => Code::Unavailable,
        ErrorCode::NotEnoughReplicasAfterAppend | ErrorCode::UnknownLeaderEpoch | ErrorCode::NewLeaderElected => {
            Code::Unavailable
        }
        ErrorCode::FencedLeaderEpoch
        | ErrorCode::InvalidUpdateVersion
        | ErrorCode::IneligibleReplica
        | ErrorCode::NoReassignmentInProgress => Code::FailedPrecondition,
        ErrorCode::RequestTimedOut => Code::DeadlineExceeded,
        ErrorCode::StorageError | ErrorCode::UnknownServerError => Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip_keeps_code_message_and_range() {
        let e = WireError::offset_out_of_range(99, 5, 42);
        let status = e.clone().into_status();
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(status.metadata().get(ERROR_CODE_METADATA).unwrap(), "OFFSET_OUT_OF_RANGE");
        assert!(status.message().starts_with("OFFSET_OUT_OF_RANGE: offset 99"), "{}", status.message());
        assert_eq!(WireError::from_status(&status), e);
    }

    #[test]
    fn plain_status_maps_to_a_best_effort_code() {
        let e = WireError::from_status(&Status::unavailable("connection refused"));
        assert_eq!(e.code, ErrorCode::LeaderNotAvailable);
        assert!(e.retriable());
        assert!(!WireError::new(ErrorCode::CorruptMessage, "x").retriable());
    }
}
