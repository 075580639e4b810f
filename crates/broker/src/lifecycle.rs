//! The broker's life with the controller: registration, heartbeats, and controlled shutdown.
//!
//! A broker registers with a fresh incarnation id and gets a broker epoch. It heartbeats every
//! `heartbeat_interval`; when the controller says it is fenced, or no longer knows its epoch, it
//! registers again. Before it stops it asks for a controlled shutdown, so its leaderships move to
//! other in-sync replicas while it still serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use vltava_common::{ErrorCode, WireError};
use vltava_metadata::{BrokerRegistration, MetadataService, Registered};

use crate::error::BrokerError;

/// This broker's registration, shared by the heartbeat task and shutdown.
pub struct Membership {
    metadata: Arc<dyn MetadataService>,
    registration: BrokerRegistration,
    epoch: AtomicI64,
}

impl Membership {
    /// Registers, retrying (a previous incarnation's session may still be alive) until `timeout`.
    pub async fn register(
        metadata: Arc<dyn MetadataService>,
        mut registration: BrokerRegistration,
        timeout: Duration,
    ) -> Result<(Arc<Self>, Registered), BrokerError> {
        registration.incarnation = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match metadata.register_broker(registration.clone()).await {
                Ok(r) => {
                    tracing::info!(broker = registration.id, epoch = r.epoch, "registered with the controller");
                    let m = Arc::new(Self { metadata, registration, epoch: AtomicI64::new(r.epoch) });
                    return Ok((m, r));
                }
                Err(e) => {
                    let wire = WireError::from(e);
                    let retry = wire.retriable() || wire.code == ErrorCode::DuplicateBrokerRegistration;
                    if !retry || tokio::time::Instant::now() >= deadline {
                        return Err(BrokerError::Startup(format!(
                            "registration with the controller failed: {}",
                            wire.message
                        )));
                    }
                    tracing::info!(error = %wire.message, "registration not accepted yet; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// The current broker epoch.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Heartbeats forever; registers again when fenced or forgotten.
    pub async fn heartbeat_loop(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let must_register = match self.metadata.heartbeat(self.registration.id, self.epoch()).await {
                Ok(fenced) => fenced,
                Err(e) => {
                    let wire = WireError::from(e);
                    if matches!(wire.code, ErrorCode::StaleBrokerEpoch | ErrorCode::BrokerNotAvailable) {
                        true
                    } else {
                        tracing::debug!(error = %wire.message, "heartbeat failed");
                        false
                    }
                }
            };
            if must_register {
                tracing::warn!(broker = self.registration.id, "fenced by the controller: registering again");
                match self.metadata.register_broker(self.registration.clone()).await {
                    Ok(r) => self.epoch.store(r.epoch, Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "registering again failed; will retry"),
                }
            }
        }
    }

    /// Asks the controller to move this broker's leaderships away, waiting at most `timeout`.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        let call = self.metadata.controlled_shutdown(self.registration.id, self.epoch());
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(_)) => tracing::info!("controlled shutdown done: leaderships moved"),
            Ok(Err(e)) => tracing::warn!(error = %e, "controlled shutdown failed; stopping anyway"),
            Err(_) => tracing::warn!("controlled shutdown timed out; stopping anyway"),
        }
    }
}
