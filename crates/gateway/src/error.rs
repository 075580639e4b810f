//! What the gateway can fail with, and how the errors it makes itself reach clients.

use tonic::{Code, Status};
use vltava_common::WireError;

/// Why [`crate::run`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is unusable.
    #[error("invalid gateway configuration: {0}")]
    Config(String),
    /// The listener could not be used.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The status of an error the gateway makes itself, under the gRPC `code` the edge has always
/// answered with, which the Kafka code does not map to. Everything else is as
/// [`WireError::into_status`] builds every status: the `ErrorDetail` in the details and the code
/// name in the `vltava-error-code` header.
pub(crate) fn status_with_code(error: WireError, code: Code) -> Status {
    let status = error.into_status();
    Status::with_details_and_metadata(
        code,
        status.message(),
        bytes::Bytes::copy_from_slice(status.details()),
        status.metadata().clone(),
    )
}

#[cfg(test)]
mod tests {
    use vltava_common::ErrorCode;
    use vltava_common::error::ERROR_CODE_METADATA;

    use super::*;

    #[test]
    fn a_status_under_another_code_keeps_the_detail_and_the_header() {
        let e = WireError::new(ErrorCode::RequestTimedOut, "busy");
        let status = status_with_code(e.clone(), Code::ResourceExhausted);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.metadata().get(ERROR_CODE_METADATA).unwrap(), "REQUEST_TIMED_OUT");
        assert_eq!(status.message(), "REQUEST_TIMED_OUT: busy");
        assert_eq!(WireError::from_status(&status), e);
    }
}
