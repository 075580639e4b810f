//! What the gateway can fail with.

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
