//! gRPC transport settings every Vltava server shares, and trace context on every call: servers
//! built with [`server_builder`] continue the caller's trace, and clients built on
//! [`traced`] channels send theirs.

use std::time::Duration;

use tower::layer::util::{Identity, Stack};

pub use crate::telemetry::grpc::{TraceContextLayer, Traced, TracedChannel, traced};

/// HTTP/2 stream window: large enough that one fetch of a few MiB is not throttled by flow control.
pub const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// HTTP/2 connection window, shared by all streams of a connection.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Largest HTTP/2 frame accepted: record batches travel in few large frames.
pub const MAX_FRAME_SIZE: u32 = 1024 * 1024;

/// The server builder [`server_builder`] returns (its outermost layer traces requests).
pub type ServerBuilder = tonic::transport::Server<Stack<TraceContextLayer, Identity>>;

/// A tonic server builder with Vltava's transport settings: no Nagle delay, large HTTP/2 windows
/// for record batches, keepalives that notice dead peers, and [`TraceContextLayer`] (each request
/// runs in a span continuing the caller's trace while traces are exported).
pub fn server_builder() -> ServerBuilder {
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // Produce requests carry megabytes of batches: accept 1 MiB frames, not 16 KiB ones.
        .max_frame_size(Some(MAX_FRAME_SIZE))
        .layer(TraceContextLayer)
}

/// The accepted connections of `listener`, with `TCP_NODELAY` set on each. (tonic applies its
/// own `tcp_nodelay` setting only to listeners it binds itself; without this, small replies wait
/// for Nagle's algorithm and the peer's delayed ACK, about 40 ms.)
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}
