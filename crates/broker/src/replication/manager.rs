//! Keeps one replica fetcher per leader broker, each assigned exactly the partitions this broker
//! follows from that leader, in step with the partitions' states.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::config::ReplicationConfig;
use crate::replica_manager::ReplicaManager;
use crate::replication::fetcher::{self, Assignment, FetcherContext, FetcherShared, Key};

struct Fetcher {
    address: String,
    shared: Arc<FetcherShared>,
    task: JoinHandle<()>,
}

/// The replica fetchers of this broker.
pub struct FetcherManager {
    broker_id: i32,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    config: ReplicationConfig,
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl FetcherManager {
    /// A manager with no fetcher yet; call [`FetcherManager::sync`] after every image.
    pub fn new(broker_id: i32, broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>, config: ReplicationConfig) -> Self {
        Self { broker_id, broker_epoch, config, fetchers: Mutex::new(HashMap::new()) }
    }

    /// Assigns every followed partition to the fetcher of its leader, starting and stopping
    /// fetchers as leaders come and go. A partition whose leader or leader epoch changed is
    /// handed over untruncated, so it checks its log against the new leader first.
    pub fn sync(&self, replicas: &ReplicaManager) {
        let image = replicas.image();
        let mut wanted: HashMap<i32, Vec<(Key, Assignment)>> = HashMap::new();
        for part in replicas.all() {
            let s = part.leader_state();
            if s.leader < 0 || s.leader == self.broker_id || !s.replicas.contains(&self.broker_id) {
                continue;
            }
            let key = (part.topic().to_string(), part.index());
            let a = Assignment { part, leader_epoch: s.leader_epoch, truncated: false, retry_at: None };
            wanted.entry(s.leader).or_default().push((key, a));
        }
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|leader, f| {
            let address = image.brokers.get(leader).map(|b| b.address.as_str());
            let keep = wanted.contains_key(leader) && address == Some(f.address.as_str());
            if !keep {
                f.task.abort();
                tracing::info!(leader, "replica fetcher stopped");
            }
            keep
        });
        for (leader, assignments) in wanted {
            let Some(address) = image.brokers.get(&leader).map(|b| b.address.clone()) else { continue };
            let f = fetchers.entry(leader).or_insert_with(|| {
                let shared = Arc::new(FetcherShared::default());
                let ctx = FetcherContext {
                    broker_id: self.broker_id,
                    broker_epoch: self.broker_epoch.clone(),
                    leader,
                    address: address.clone(),
                    config: self.config.clone(),
                    shared: shared.clone(),
                };
                Fetcher { address, shared, task: tokio::spawn(fetcher::run(ctx)) }
            });
            assign(&f.shared, assignments);
        }
    }

    /// Stops every fetcher.
    pub fn shutdown(&self) {
        for (_, f) in self.fetchers.lock().drain() {
            f.task.abort();
        }
    }

    /// Leader ids with a running fetcher (for tests and diagnostics).
    pub fn leaders(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.fetchers.lock().keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// Replaces a fetcher's assignment, keeping the progress of partitions whose leader epoch did
/// not change; signals the fetcher when anything changed.
fn assign(shared: &FetcherShared, assignments: Vec<(Key, Assignment)>) {
    let mut map = shared.partitions.lock();
    let mut changed = map.len() != assignments.len();
    let mut next = HashMap::with_capacity(assignments.len());
    for (key, a) in assignments {
        match map.remove(&key) {
            Some(old) if old.leader_epoch == a.leader_epoch && Arc::ptr_eq(&old.part, &a.part) => {
                next.insert(key, old);
            }
            _ => {
                changed = true;
                next.insert(key, a);
            }
        }
    }
    *map = next;
    drop(map);
    if changed {
        shared.changed.notify_one();
    }
}
