//! One Kafka connection: frames are read and handled in order, and responses written in the
//! same order, pipelined (the client may send many requests before the first answer).
//!
//! Bad input (a frame size out of bounds, a truncated or malformed request, an unknown API or an
//! unsupported version) closes this connection only, with a log line; nothing it carried reaches
//! a handler half-decoded.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use vltava_broker::Broker;

use crate::dispatch::{self, Reply};
use crate::{KafkaError, frame, metrics};

/// Responses a connection may owe at once before it stops reading requests.
const MAX_IN_FLIGHT: usize = 64;

/// A response owed, in request order.
enum Owed {
    Ready(Bytes),
    Pending(tokio::task::JoinHandle<Result<Bytes, KafkaError>>),
}

/// Serves one connection until the peer closes it, it sends bad input, or `stop` turns `true`.
pub async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    metrics::connections(1);
    let max = broker.config.max_request_bytes;
    let (mut reader, writer) = stream.into_split();
    let (owed_tx, owed_rx) = mpsc::channel(MAX_IN_FLIGHT);
    let mut writer = tokio::spawn(write_responses(writer, owed_rx));
    let outcome = loop {
        let frame = tokio::select! {
            f = frame::read_frame(&mut reader, max) => f,
            _ = stopped(&mut stop) => break Ok(()),
            // The writer only ends early when the socket fails.
            w = &mut writer => break w.unwrap_or(Ok(())),
        };
        let request = match frame.and_then(|f| f.map(frame::parse).transpose()) {
            Ok(Some(mut r)) => {
                r.client_host = format!("/{}", peer.ip());
                r
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let owed = match dispatch::handle(&broker, request).await {
            Ok(Reply::Nothing) => continue,
            Ok(Reply::Now(bytes)) => Owed::Ready(bytes),
            Ok(Reply::Later(task)) => Owed::Pending(task),
            Err(e) => break Err(e),
        };
        if owed_tx.send(owed).await.is_err() {
            break Ok(());
        }
    };
    // Answer what was accepted before closing (unless stopping: clients retry elsewhere).
    drop(owed_tx);
    if !*stop.borrow() && !writer.is_finished() {
        let _ = writer.await;
    } else {
        writer.abort();
    }
    if let Err(e) = outcome {
        metrics::protocol_error(e.kind());
        match e {
            KafkaError::Io(e) => tracing::debug!(%peer, error = %e, "kafka connection failed"),
            e => tracing::warn!(%peer, error = %e, "closing kafka connection"),
        }
    }
    metrics::connections(-1);
}

/// Writes the owed responses in order, flushing whenever none is ready behind the last.
async fn write_responses(writer: OwnedWriteHalf, mut owed: mpsc::Receiver<Owed>) -> Result<(), KafkaError> {
    let mut out = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(next) = owed.recv().await {
        // Answers already written must not wait behind one still being worked out.
        if matches!(next, Owed::Pending(_)) {
            out.flush().await?;
        }
        let bytes = match next {
            Owed::Ready(b) => b,
            Owed::Pending(task) => match task.await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "kafka response failed; closing the connection");
                    return Err(e);
                }
                Err(e) => return Err(KafkaError::Io(std::io::Error::other(format!("response task: {e}")))),
            },
        };
        out.write_all(&bytes).await?;
        if owed.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await?;
    Ok(())
}

/// Resolves once `stop` turns `true` (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
