//! [`KafkaError`]: what ends a Kafka connection. Errors of a request that was understood are
//! answered with Kafka error codes instead and never close anything.

/// Why a Kafka connection was closed (each is logged with the peer's address).
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The size prefix is negative or above `socket.request.max.bytes`.
    #[error("frame of {size} bytes is outside 8..={max} (socket.request.max.bytes)")]
    FrameSize {
        /// The size the frame announced.
        size: i64,
        /// The largest accepted.
        max: usize,
    },
    /// The frame ended inside the request header or body.
    #[error("truncated request: {0}")]
    Truncated(String),
    /// The API key is not one of Kafka's, or not one this listener serves.
    #[error("unsupported API key {0}")]
    UnsupportedApi(i16),
    /// The API is served, not at this version.
    #[error("{api} version {version} is not supported (this broker serves {min}..={max})")]
    UnsupportedVersion {
        /// The API's name.
        api: &'static str,
        /// The version asked for.
        version: i16,
        /// Lowest version served.
        min: i16,
        /// Highest version served.
        max: i16,
    },
    /// The request body does not decode at its version.
    #[error("malformed {api} v{version} request: {reason}")]
    Malformed {
        /// The API's name.
        api: &'static str,
        /// Its version.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
    /// A response could not be encoded at the request's version (a field the version cannot
    /// carry); a bug, reported rather than sent half-written.
    #[error("cannot encode the {api} v{version} response: {reason}")]
    Encode {
        /// The API's name.
        api: &'static str,
        /// Its version.
        version: i16,
        /// What the encoder said.
        reason: String,
    },
    /// `acks=0` produce failed: as Kafka does, the connection is closed so that the producer
    /// refreshes its metadata (it gets no response to learn from).
    #[error("acks=0 produce failed: {0}")]
    AcksZeroFailed(String),
    /// Reading or writing the socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

impl KafkaError {
    /// A short label for the protocol error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            KafkaError::FrameSize { .. } => "frame_size",
            KafkaError::Truncated(_) => "truncated",
            KafkaError::UnsupportedApi(_) => "unsupported_api",
            KafkaError::UnsupportedVersion { .. } => "unsupported_version",
            KafkaError::Malformed { .. } => "malformed",
            KafkaError::Encode { .. } => "encode",
            KafkaError::AcksZeroFailed(_) => "acks0_failed",
            KafkaError::Io(_) => "io",
        }
    }
}
