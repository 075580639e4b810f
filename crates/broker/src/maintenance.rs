//! Background upkeep of the hosted logs: retention, compaction, `flush.ms` deadlines and high
//! watermark checkpoints.

use std::sync::Arc;

use vltava_common::time::now_ms;

use vltava_storage::CleanOutcome;

use crate::error::BrokerError;
use crate::partition::Partition;
use crate::replica_manager::ReplicaManager;

/// Runs `f` on every hosted partition, logging a failure as `what failed` (blocking).
fn each_partition<T>(
    replicas: &ReplicaManager,
    what: &str,
    f: impl Fn(&Partition) -> Result<T, BrokerError>,
    done: impl Fn(&Partition, T),
) {
    for part in replicas.all() {
        match f(&part) {
            Ok(v) => done(&part, v),
            Err(e) => tracing::warn!(topic = part.topic(), partition = part.index(), error = %e, "{what} failed"),
        }
    }
}

/// Applies retention to every hosted log (blocking).
pub fn retention_pass(replicas: &ReplicaManager) {
    let now = now_ms();
    each_partition(
        replicas,
        "retention",
        |part| part.with_log_mut(|log| log.apply_retention(now)),
        |part, outcome| {
            if outcome.deleted_segments > 0 {
                tracing::info!(
                    topic = part.topic(),
                    partition = part.index(),
                    segments = outcome.deleted_segments,
                    bytes = outcome.deleted_bytes,
                    log_start_offset = outcome.log_start_offset,
                    "retention deleted old segments"
                );
            }
        },
    );
}

/// Compacts the hosted `cleanup.policy=compact` logs that need it (blocking), dirtiest first
/// (Kafka's cleaner picks the log with the highest dirty ratio): those whose dirty ratio
/// reached `min.cleanable.dirty.ratio` or whose oldest dirty record passed
/// `max.compaction.lag.ms`. The pass is taken from the log under its read lock in a moment,
/// run without any lock (appends and reads go on), and swapped in under the write lock (only
/// renames). Each replica cleans its own log, as in Kafka.
pub fn clean_pass(replicas: &ReplicaManager, max_keys: usize, io_max_bytes_per_sec: u64) {
    let now = now_ms();
    let mut due: Vec<(f64, Arc<Partition>)> = replicas
        .all()
        .into_iter()
        .filter_map(|p| Some((p.with_log(|log| Ok(log.cleaning_due(now))).ok()??.ratio(), p)))
        .collect();
    due.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, part) in due {
        let cleaned = part.with_log(|log| log.clean_job(now, max_keys)).and_then(|job| match job {
            Some(job) => {
                let prepared = job.with_io_limit(io_max_bytes_per_sec).prepare()?;
                part.with_log_mut(|log| log.install_clean(prepared, now))
            }
            None => Ok(CleanOutcome::default()),
        });
        match cleaned {
            Ok(o) => cleaned_metrics(&part, &o),
            Err(e) => tracing::warn!(topic = part.topic(), partition = part.index(), error = %e, "cleaning failed"),
        }
    }
}

/// Counts what one cleaning pass of `part` did.
fn cleaned_metrics(part: &Partition, o: &CleanOutcome) {
    let m = crate::metrics::get();
    m.cleaner_passes.add(1, &[]);
    m.cleaner_bytes.add(o.dirty_bytes, &[]);
    if o.segments > 0 {
        m.cleaner_segments.add(o.segments as u64, &[]);
        m.cleaner_records_removed.add(o.records_removed, &[]);
        tracing::debug!(
            topic = part.topic(),
            partition = part.index(),
            segments = o.segments,
            bytes_before = o.bytes_before,
            bytes_after = o.bytes_after,
            markers_removed = o.markers_removed,
            "compacted"
        );
    }
}

/// Flushes every log whose `flush.ms` deadline has passed (blocking).
pub fn flush_pass(replicas: &ReplicaManager) {
    let now = now_ms();
    each_partition(replicas, "flush", |part| part.with_log_mut(|log| log.flush_if_due(now)), |_, ()| {});
}

/// Checkpoints every hosted partition's high watermark in the data directory's one file
/// (blocking; no log lock is held while it is written).
pub fn high_watermark_pass(replicas: &ReplicaManager) {
    if let Err(e) = replicas.checkpoint_high_watermarks() {
        tracing::warn!(error = %e, "high watermark checkpoint failed");
    }
}

/// Forgets, in every hosted partition, the idempotent producers whose last batch is older than
/// `expiration` (blocking).
pub fn expire_producers(replicas: &ReplicaManager, expiration: std::time::Duration) {
    let now = now_ms();
    let expiration = i64::try_from(expiration.as_millis()).unwrap_or(i64::MAX);
    for part in replicas.all() {
        match part.with_log_mut(|log| Ok(log.remove_expired_producers(now, expiration))) {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(topic = part.topic(), partition = part.index(), producers = n, "expired producer ids")
            }
            Err(e) => {
                tracing::debug!(topic = part.topic(), partition = part.index(), error = %e, "producer expiry skipped")
            }
        }
    }
}

/// Runs `pass` every `every` on the blocking pool until the task is aborted.
pub async fn every(
    every: std::time::Duration,
    replicas: Arc<ReplicaManager>,
    pass: impl Fn(&ReplicaManager) + Copy + Send + 'static,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let r = replicas.clone();
        if tokio::task::spawn_blocking(move || pass(&r)).await.is_err() {
            tracing::error!("maintenance pass panicked");
        }
    }
}
