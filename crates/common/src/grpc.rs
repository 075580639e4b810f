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

/// HTTP/2 stream window a client offers for responses: a multi-megabyte fetch answer flows without
/// waiting for window updates.
pub const CLIENT_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// HTTP/2 connection window a client offers, shared by all streams of a connection.
pub const CLIENT_CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// A client endpoint for record traffic to a Vltava server at `host:port`: no Nagle delay, large
/// HTTP/2 windows, 1 MiB frames (a fetch response in HTTP/2's default 16 KiB frames costs hundreds
/// of frames per MiB: consumption was measured at half the speed) and keepalives that notice dead
/// peers. The SDK, the gateway's connections to brokers and followers fetching from leaders use it.
pub fn data_endpoint(address: &str) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .initial_stream_window_size(Some(CLIENT_STREAM_WINDOW))
        .initial_connection_window_size(Some(CLIENT_CONNECTION_WINDOW))
        .max_frame_size(Some(MAX_FRAME_SIZE)))
}

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
