//! Broker sessions on the active controller, and the task that fences brokers whose sessions expire.
//!
//! Sessions are memory only: a new active controller gives every live broker a fresh session
//! (a full timeout of grace) rather than trusting times it never saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::node::NodeHandle;
use vltava_metadata::command::Command;
use vltava_metadata::model::BrokerId;

/// Broker sessions: the epoch and time of each broker's last heartbeat.
pub struct Sessions {
    timeout: Duration,
    last: Mutex<HashMap<BrokerId, (i64, Instant)>>,
}

impl Sessions {
    /// Sessions that expire after `timeout` without a heartbeat.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout, last: Mutex::new(HashMap::new()) }
    }

    /// Records a heartbeat (or a registration).
    pub fn renew(&self, broker: BrokerId, epoch: i64) {
        self.last.lock().insert(broker, (epoch, Instant::now()));
    }

    /// Forgets a broker (it shut down cleanly).
    pub fn remove(&self, broker: BrokerId) {
        self.last.lock().remove(&broker);
    }

    /// Whether the broker registered with `epoch` has a live session.
    pub fn is_alive(&self, broker: BrokerId, epoch: i64) -> bool {
        matches!(self.last.lock().get(&broker), Some((e, at)) if *e == epoch && at.elapsed() < self.timeout)
    }

    fn clear(&self) {
        self.last.lock().clear();
    }

    /// Live brokers (`id`, `epoch`) whose sessions expired; brokers never seen get a session now.
    fn expired(&self, live: impl Iterator<Item = (BrokerId, i64)>) -> Vec<(BrokerId, i64)> {
        let mut last = self.last.lock();
        let now = Instant::now();
        let mut out = Vec::new();
        for (id, epoch) in live {
            match last.get(&id) {
                Some((e, at)) if *e == epoch => {
                    if now.duration_since(*at) >= self.timeout {
                        out.push((id, epoch));
                    }
                }
                _ => {
                    last.insert(id, (epoch, now));
                }
            }
        }
        out
    }
}

/// On the active controller, fences every broker whose session expired; runs every `tick`.
pub async fn fence_expired(
    node: NodeHandle,
    sessions: Arc<Sessions>,
    tick: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut was_leader = false;
    let mut interval = tokio::time::interval(tick);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let is_leader = node.status.borrow().is_leader;
        if is_leader && !was_leader {
            sessions.clear();
        }
        was_leader = is_leader;
        if !is_leader {
            continue;
        }
        let image = node.image.borrow().clone();
        let expired = sessions.expired(image.live_brokers().map(|b| (b.id, b.epoch)));
        for (id, epoch) in expired {
            tracing::warn!(broker = id, epoch, "broker session expired: fencing it and moving its leaderships");
            // One attempt per timeout: the session restarts now, and a failed fence is retried
            // when it expires again.
            sessions.renew(id, epoch);
            let node = node.clone();
            let sessions = sessions.clone();
            tokio::spawn(async move {
                match node.propose(Command::FenceBroker { id, epoch }).await {
                    Ok(_) => sessions.remove(id),
                    Err(e) => tracing::warn!(broker = id, error = %e, "fencing failed; will retry"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_without_heartbeats_and_new_brokers_get_grace() {
        let s = Sessions::new(Duration::from_millis(50));
        assert!(s.expired([(1, 5)].into_iter()).is_empty(), "first sight starts a session");
        assert!(s.is_alive(1, 5));
        assert!(!s.is_alive(1, 6), "another epoch is another session");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.expired([(1, 5)].into_iter()), vec![(1, 5)]);
        s.renew(1, 5);
        assert!(s.expired([(1, 5)].into_iter()).is_empty());
    }
}
