//! The leader's ISR management: every `isr_check_interval` each led partition drops members not
//! caught up for `replica.lag.time.max.ms` and adds replicas that reached the high watermark,
//! through the controller's `AlterPartition`. The proposal carries the partition epoch it was
//! based on, so a stale one is refused; one change per partition is in flight at a time.

use std::sync::Arc;

use vltava_common::time::now_ms;
use vltava_metadata::AlterPartition;

use crate::broker::Broker;
use crate::partition::Partition;
use crate::replication::followers::IsrView;
use crate::replication::manager::FetcherManager;

/// How long an unanswered proposal blocks the next one.
const PENDING_TIMEOUT_MS: i64 = 10_000;

/// Checks the ISR of every led partition forever.
pub async fn run(broker: Arc<Broker>, broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>, fetchers: Arc<FetcherManager>) {
    let mut tick = tokio::time::interval(broker.config.replication.isr_check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for part in broker.replicas.all() {
            if let Some(request) = propose(&broker, &part, broker_epoch()) {
                tokio::spawn(alter(broker.clone(), part, request, fetchers.clone()));
            }
        }
    }
}

/// The ISR change `part` needs now, if it leads it and none is in flight; marks it pending.
fn propose(broker: &Broker, part: &Partition, broker_epoch: i64) -> Option<AlterPartition> {
    let me = broker.config.broker_id;
    let now = now_ms();
    let lag_max = broker.config.replication.lag_time_max.as_millis() as i64;
    let image = broker.replicas.image();
    part.with_followers(|followers, state, hw| {
        if state.leader != me {
            return None;
        }
        let eligible = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
        let view = IsrView { isr: &state.isr, me, high_watermark: hw, partition_epoch: state.partition_epoch };
        let isr = followers.propose_isr(&view, now, lag_max, PENDING_TIMEOUT_MS, eligible)?;
        Some(AlterPartition {
            topic: part.topic().to_string(),
            topic_id: part.topic_id().to_string(),
            partition: part.index(),
            broker_id: me,
            broker_epoch,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            new_isr: isr,
        })
    })
}

/// Sends one proposal and applies the committed state it returns.
async fn alter(broker: Arc<Broker>, part: Arc<Partition>, request: AlterPartition, fetchers: Arc<FetcherManager>) {
    let (from, to) = (part.leader_state().isr, request.new_isr.clone());
    match broker.metadata.alter_partition(request).await {
        Ok((state, _version)) => {
            tracing::info!(topic = part.topic(), partition = part.index(), ?from, ?to, "ISR changed");
            let min_isr = part.leader_state().min_insync_replicas;
            let p = part.clone();
            let applied = tokio::task::spawn_blocking(move || p.apply_state(&state, min_isr)).await;
            match applied {
                Ok(Ok(crate::partition::RoleChange::None)) => {}
                Ok(Ok(_)) => {
                    let r = broker.replicas.clone();
                    fetchers.sync(&r);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "applying the new ISR failed"),
                Err(e) => tracing::warn!(error = %e, "applying the new ISR panicked"),
            }
        }
        Err(e) => {
            tracing::info!(topic = part.topic(), partition = part.index(), ?from, ?to, error = %e, "ISR change refused");
            part.with_followers(|followers, _, _| followers.proposal_refused());
        }
    }
}
