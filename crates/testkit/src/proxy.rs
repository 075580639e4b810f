//! [`LossyProxy`]: a TCP proxy in front of a server that can lose the server's answers while
//! still delivering the requests: the fault an idempotent producer exists for (the broker
//! stored the batch, the acknowledgement never arrived, the client retries).
//!
//! While answers are being lost, every byte from the server is dropped; connections that lost
//! bytes are closed when the proxy heals (their HTTP/2 stream has a hole), so clients reconnect
//! and retry. Requests always reach the server.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A proxy on `127.0.0.1:0` (see the module documentation). Stops when dropped.
pub struct LossyProxy {
    /// The proxy's address: give it to clients instead of the server's.
    pub addr: String,
    losing: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl LossyProxy {
    /// Starts a proxy forwarding every connection to `target`.
    pub async fn start(target: &str) -> LossyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let (losing, _) = watch::channel(false);
        let losing = Arc::new(losing);
        let (l, target) = (losing.clone(), target.to_string());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else { continue };
                connections.spawn(pump(client, server, l.subscribe()));
            }
        });
        LossyProxy { addr, losing, task }
    }

    /// From now on the server's answers are lost (its requests still arrive).
    pub fn lose_answers(&self) {
        self.losing.send_replace(true);
    }

    /// Answers flow again; connections that lost some are closed.
    pub fn heal(&self) {
        self.losing.send_replace(false);
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes or, after healing, the answers had a hole.
async fn pump(client: TcpStream, server: TcpStream, mut losing: watch::Receiver<bool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
    let mut buf = vec![0u8; 64 * 1024];
    let mut holed = false;
    loop {
        tokio::select! {
            read = server_read.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if *losing.borrow() {
                    holed = true;
                    continue;
                }
                if client_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            changed = losing.changed() => {
                if changed.is_err() || (holed && !*losing.borrow()) {
                    break;
                }
            }
        }
    }
    requests.abort();
}
