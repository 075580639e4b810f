//! The controller's gauges, read from the running [`Controller`] at collection time: Raft term,
//! commit and applied index, leadership, live brokers and offline partitions. Counters and the
//! instrumentation scope are in [`crate::metrics`].

use std::sync::Arc;

use vltava_metadata::MetadataService;

use crate::metrics::SCOPE;
use crate::node::QuorumStatus;
use crate::quorum::Controller;

/// Registers the gauges read from `controller` at collection time (for as long as it runs).
pub fn observe(controller: &Arc<Controller>) {
    let meter = opentelemetry::global::meter(SCOPE);
    // One observable gauge reading `read` from the controller, for as long as it runs.
    let gauge = |name: &'static str, description: &'static str, read: Box<dyn Fn(&Controller) -> u64 + Send + Sync>| {
        let weak = Arc::downgrade(controller);
        meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |o| {
                if let Some(c) = weak.upgrade() {
                    o.observe(read(&c), &[]);
                }
            })
            .build()
    };
    let raft = |name, description, read: fn(&QuorumStatus) -> u64| {
        gauge(name, description, Box::new(move |c| read(&c.status_watch().borrow())))
    };
    raft("vltava.controller.raft.term", "Current Raft term", |s| s.term);
    raft("vltava.controller.raft.commit_index", "Highest Raft log index known to be committed", |s| s.commit);
    raft("vltava.controller.raft.applied_index", "Highest Raft log index applied to the metadata", |s| s.applied);
    raft("vltava.controller.raft.is_leader", "1 while this controller leads the quorum, else 0", |s| {
        u64::from(s.is_leader)
    });
    raft("vltava.controller.raft.leader_id", "Node id of the quorum leader (0: unknown)", |s| s.leader_id);
    let image = |name, description, read: fn(&vltava_metadata::model::ClusterImage) -> u64| {
        gauge(name, description, Box::new(move |c| read(&c.image())))
    };
    image("vltava.controller.live_brokers", "Registered brokers that are not fenced", |i| {
        i.live_brokers().count() as u64
    });
    image("vltava.controller.offline_partitions", "Partitions without a leader", |i| {
        i.topics.values().flat_map(|t| &t.partitions).filter(|p| p.leader == -1).count() as u64
    });
}
