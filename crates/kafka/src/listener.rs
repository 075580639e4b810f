//! [`KafkaListener`]: the bound Kafka port, handed to the broker as its second front door.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use vltava_broker::{Broker, BrokerConfig, FrontDoor};

use crate::connection::{self, stopped};

/// A bound Kafka protocol listener, not serving yet.
pub struct KafkaListener {
    listener: TcpListener,
    advertised: String,
}

impl KafkaListener {
    /// Binds `config.kafka_listen`; `Ok(None)` when it is `off`.
    pub async fn bind(config: &BrokerConfig) -> std::io::Result<Option<Self>> {
        let Some(address) = config.kafka_listen_address() else { return Ok(None) };
        let listener = TcpListener::bind(address).await?;
        let advertised = config.kafka_advertised(listener.local_addr()?);
        Ok(Some(Self { listener, advertised }))
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address Kafka clients are told to use.
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    /// The front door to hand to [`vltava_broker::run_with`].
    pub fn front_door(self) -> FrontDoor {
        FrontDoor {
            kafka_address: self.advertised.clone(),
            serve: Box::new(move |broker, stop| Box::pin(serve(self.listener, broker, stop))),
        }
    }
}

/// Accepts connections until `stop` turns `true`, then closes them all.
async fn serve(listener: TcpListener, broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%address, "kafka protocol listener serving");
    let mut connections = JoinSet::new();
    let each = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection::serve(stream, peer, broker.clone(), each.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "kafka listener cannot accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    // Each connection sees `stop` too; give them a moment to close cleanly.
    let closing = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(2), closing).await.is_err() {
        connections.shutdown().await;
    }
    tracing::info!(%address, "kafka protocol listener stopped");
}
