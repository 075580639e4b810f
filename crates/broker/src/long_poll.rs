//! The long poll shared by consumer fetches ([`crate::fetch`]) and replica fetches
//! ([`crate::replication::serve`]): read, and while the read is not enough, wait for any watched
//! partition to move (its high watermark or its log end) or for the deadline, then read again.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::BrokerError;

/// Long polls parked right now, waiting for data (Kafka's fetch purgatory size).
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// How many fetches and replica fetches of this process are parked waiting for data now.
pub fn waiting() -> usize {
    WAITING.load(Ordering::Relaxed)
}

/// Counts one parked long poll for as long as it lives.
struct Parked;

impl Parked {
    fn new() -> Self {
        WAITING.fetch_add(1, Ordering::Relaxed);
        Parked
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `read` on the blocking pool until it says it is done, no partition can move (`watches`
/// is empty) or `deadline` passes, and returns its last result.
///
/// `read` returns its result and whether that result is enough to answer. The watches must be
/// subscribed before the first read, so that an append between a read and the wait is not missed.
pub async fn poll<T, F>(mut watches: Vec<watch::Receiver<i64>>, deadline: Instant, read: F) -> Result<T, BrokerError>
where
    T: Send + 'static,
    F: Fn() -> (T, bool) + Clone + Send + 'static,
{
    loop {
        let r = read.clone();
        let (result, done) = tokio::task::spawn_blocking(r).await.map_err(|e| BrokerError::Internal(e.to_string()))?;
        if done || watches.is_empty() || Instant::now() >= deadline {
            return Ok(result);
        }
        let changed = futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        let _parked = Parked::new();
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
