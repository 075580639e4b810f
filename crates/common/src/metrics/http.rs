//! A minimal HTTP/1.1 server for the Prometheus endpoint: `GET /metrics` answers the text
//! exposition, anything else 404 (405 for another method on `/metrics`). One request per
//! connection; the request head is bounded in size and time, and so is the number of connections
//! served at once (more are closed at once).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::prometheus::CONTENT_TYPE;
use super::scrape::Scraper;

/// The path metrics are served on.
pub const METRICS_PATH: &str = "/metrics";
/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 32;

/// Serves `listener` forever (until the task is aborted).
pub async fn serve(listener: TcpListener, scraper: Scraper) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::debug!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let scraper = scraper.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = handle(stream, &scraper).await {
                tracing::debug!(error = %e, "metrics endpoint: connection failed");
            }
        });
    }
}

/// A response: status line, content type and body.
struct Reply {
    status: &'static str,
    content_type: &'static str,
    body: String,
    allow: bool,
}

impl Reply {
    fn text(status: &'static str, body: &str) -> Self {
        Reply { status, content_type: "text/plain; charset=utf-8", body: format!("{body}\n"), allow: false }
    }
}

async fn handle(mut stream: TcpStream, scraper: &Scraper) -> std::io::Result<()> {
    let (reply, head_only) = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => (Reply::text("408 Request Timeout", "request timeout"), false),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => (Reply::text("431 Request Header Fields Too Large", "request too large"), false),
        Ok(Ok(Some(head))) => route(&head, scraper).await,
    };
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    if reply.allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&reply.body);
    }
    let write = async {
        stream.write_all(out.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client may still be sending, so that closing does not reset the
        // connection before it has read the answer.
        let mut sink = [0u8; 1024];
        let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        Ok(())
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "writing the response timed out"))?
}

/// Reads up to the end of the request head; `None` when it is larger than [`MAX_HEAD_BYTES`].
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_HEAD_BYTES {
                return Ok(None);
            }
            buf.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
    }
}

/// The reply to a request head, and whether only the head is sent (HEAD).
async fn route(head: &str, scraper: &Scraper) -> (Reply, bool) {
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if path != METRICS_PATH {
        return (Reply::text("404 Not Found", "not found: metrics are served on GET /metrics"), false);
    }
    if method != "GET" && method != "HEAD" {
        let mut r = Reply::text("405 Method Not Allowed", "method not allowed");
        r.allow = true;
        return (r, false);
    }
    let s = scraper.clone();
    // Observable instruments' callbacks may read stores: keep them off the async workers.
    let reply = match tokio::task::spawn_blocking(move || s.scrape()).await {
        Ok(Ok(body)) => Reply { status: "200 OK", content_type: CONTENT_TYPE, body, allow: false },
        Ok(Err(e)) => Reply::text("500 Internal Server Error", &e.to_string()),
        Err(e) => Reply::text("500 Internal Server Error", &e.to_string()),
    };
    (reply, method == "HEAD")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use opentelemetry::metrics::MeterProvider;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::metrics::scrape::shared_reader;

    async fn request(addr: std::net::SocketAddr, raw: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn get_metrics_answers_the_exposition_and_other_paths_404() {
        let reader = Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder().with_reader(shared_reader(&reader)).build();
        provider.meter("t").u64_counter("http.test.hits").build().add(3, &[]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Scraper::new(&reader)));

        let ok = request(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"), "{ok}");
        assert!(ok.contains("\nhttp_test_hits_total 3\n"), "{ok}");
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");

        let with_query = request(addr, "GET /metrics?x=1 HTTP/1.1\r\n\r\n").await;
        assert!(with_query.starts_with("HTTP/1.1 200 OK"), "{with_query}");
        let head_only = request(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head_only.starts_with("HTTP/1.1 200 OK") && head_only.ends_with("\r\n\r\n"), "{head_only}");
        let missing = request(addr, "GET / HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"), "{missing}");
        let post = request(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD"), "{post}");
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD_BYTES + 10));
        assert!(request(addr, &huge).await.starts_with("HTTP/1.1 431 "));
        server.abort();
    }
}
