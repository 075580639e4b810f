//! A bounded graceful shutdown for gRPC servers with long-lived streams.
//!
//! tonic's graceful shutdown stops accepting connections and then waits for every open one to
//! finish. A server stream (`Subscribe`, a gateway `Consume`) may never finish on its own, so a
//! server with one open subscriber would never stop. [`StreamDrain`] bounds that wait: once
//! shutdown starts, open streams get `grace` to finish; then each one ends with `UNAVAILABLE`
//! ("shutting down; reconnect"), its handler is dropped, and the connections can close.
//!
//! Messages are never cut: the end is sent between two response frames, as trailers, and a
//! client sees a normal end of stream with a retriable status.
//!
//! ```no_run
//! # async fn example(listener: tokio::net::TcpListener, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
//! use vltava_common::drain::StreamDrain;
//! let drain = StreamDrain::new();
//! let layer = drain.layer(&["/vltava.v1.RecordService/Subscribe"]);
//! let signal = drain.after(shutdown, std::time::Duration::from_secs(5));
//! // server_builder().layer(layer).add_service(..).serve_with_incoming_shutdown(incoming, signal)
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::watch;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

/// The switch that ends open streams; see the module documentation.
#[derive(Debug)]
pub struct StreamDrain {
    draining: watch::Sender<bool>,
}

impl Default for StreamDrain {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDrain {
    /// A drain that has not started.
    pub fn new() -> Self {
        Self { draining: watch::Sender::new(false) }
    }

    /// The tower layer that ends the streams of the calls on `paths` (full gRPC paths,
    /// `/package.Service/Method`) when the drain starts. Other calls pass through untouched.
    pub fn layer(&self, paths: &'static [&'static str]) -> StreamDrainLayer {
        StreamDrainLayer { paths, draining: self.draining.subscribe() }
    }

    /// Ends every open stream now.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// A shutdown signal for tonic's `serve_with_incoming_shutdown`: resolves when `shutdown`
    /// does, and then, `grace` later, ends the streams still open.
    pub async fn after(self, shutdown: impl Future<Output = ()> + Send + 'static, grace: Duration) {
        shutdown.await;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            tracing::debug!(?grace, "shutdown grace over: ending the streams still open");
            self.drain();
        });
    }
}

/// The layer of [`StreamDrain::layer`].
#[derive(Debug, Clone)]
pub struct StreamDrainLayer {
    paths: &'static [&'static str],
    draining: watch::Receiver<bool>,
}

impl<S> Layer<S> for StreamDrainLayer {
    type Service = StreamDrainService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StreamDrainService { inner, layer: self.clone() }
    }
}

/// The service [`StreamDrainLayer`] wraps around a server's routes.
#[derive(Debug, Clone)]
pub struct StreamDrainService<S> {
    inner: S,
    layer: StreamDrainLayer,
}

impl<S> Service<http::Request<Body>> for StreamDrainService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone-and-swap pattern: `self.inner` was polled ready, so call that instance.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !self.layer.paths.contains(&request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let mut draining = self.layer.draining.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            let started: BoxFuture<'static, ()> = Box::pin(async move {
                if draining.wait_for(|d| *d).await.is_err() {
                    // The drain was dropped without starting: it never will.
                    std::future::pending::<()>().await;
                }
            });
            Ok(response.map(|body| Body::new(DrainBody { body, started, ended: false })))
        })
    }
}

/// A streaming response body that ends with `UNAVAILABLE` once the drain starts.
struct DrainBody {
    body: Body,
    started: BoxFuture<'static, ()>,
    ended: bool,
}

impl HttpBody for DrainBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.started.as_mut().poll(cx).is_ready() {
            self.ended = true;
            // The handler's stream is dropped with the body it fed.
            self.body = Body::empty();
            let status = Status::unavailable("the server is shutting down; reconnect (to another node) and resume");
            let mut trailers = http::HeaderMap::new();
            return Poll::Ready(Some(match status.add_header(&mut trailers) {
                Ok(()) => Ok(Frame::trailers(trailers)),
                Err(e) => Err(e),
            }));
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended { SizeHint::with_exact(0) } else { self.body.size_hint() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A service whose responses are endless streams of one-byte frames, one per poll.
    #[derive(Clone)]
    struct Endless;

    struct Frames;

    impl HttpBody for Frames {
        type Data = bytes::Bytes;
        type Error = Status;

        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<bytes::Bytes>, Status>>> {
            Poll::Ready(Some(Ok(Frame::data(bytes::Bytes::from_static(b"m")))))
        }
    }

    impl Service<http::Request<Body>> for Endless {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<Body>) -> Self::Future {
            Box::pin(std::future::ready(Ok(http::Response::new(Body::new(Frames)))))
        }
    }

    async fn call(service: &mut StreamDrainService<Endless>, path: &str) -> Body {
        let request = http::Request::builder().uri(path).body(Body::empty()).unwrap();
        service.call(request).await.unwrap().into_body()
    }

    async fn next(body: &mut Body) -> Option<Frame<bytes::Bytes>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await.map(|f| f.unwrap())
    }

    #[tokio::test]
    async fn streams_run_until_the_drain_then_end_with_unavailable_and_other_calls_are_untouched() {
        let drain = StreamDrain::new();
        let mut service = drain.layer(&["/s.S/Stream"]).layer(Endless);
        let mut stream = call(&mut service, "/s.S/Stream").await;
        let mut other = call(&mut service, "/s.S/Other").await;
        for _ in 0..3 {
            assert_eq!(next(&mut stream).await.unwrap().into_data().unwrap(), "m");
        }
        drain.drain();
        let trailers = next(&mut stream).await.unwrap().into_trailers().unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "14", "UNAVAILABLE: {trailers:?}");
        assert!(trailers.get("grpc-message").is_some());
        assert!(next(&mut stream).await.is_none(), "nothing after the trailers");
        assert!(stream.is_end_stream());
        assert!(next(&mut other).await.unwrap().is_data(), "a call off the listed paths is not ended");
    }

    #[tokio::test]
    async fn a_dropped_drain_never_ends_a_stream() {
        let drain = StreamDrain::new();
        let mut service = drain.layer(&["/s.S/Stream"]).layer(Endless);
        let mut stream = call(&mut service, "/s.S/Stream").await;
        drop(drain);
        for _ in 0..3 {
            assert!(next(&mut stream).await.unwrap().is_data());
        }
    }

    #[tokio::test]
    async fn after_resolves_with_the_shutdown_and_drains_a_grace_later() {
        let drain = StreamDrain::new();
        let mut service = drain.layer(&["/s.S/Stream"]).layer(Endless);
        let mut stream = call(&mut service, "/s.S/Stream").await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let signal = tokio::spawn(drain.after(
            async move {
                let _ = rx.await;
            },
            Duration::from_millis(300),
        ));
        assert!(next(&mut stream).await.unwrap().is_data(), "before shutdown, streams go on");
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), signal).await.unwrap().unwrap();
        // Within the grace the stream goes on; then it ends (bounded: 1,000 polls, 10 ms apart).
        let mut data = 0;
        for _ in 0..1_000 {
            let frame = next(&mut stream).await.unwrap();
            if frame.is_trailers() {
                assert!(next(&mut stream).await.is_none());
                return;
            }
            data += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the stream did not end within 10 s of shutdown ({data} frames)");
    }
}
