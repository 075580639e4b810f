//! The broker's metrics (see docs/observability.md for the Prometheus names).
//!
//! Counters are created once, from the global meter provider the process installed at start
//! ([`vltava_common::metrics::Metrics::start`]), and recorded on the hot paths. Gauges are
//! observed at collection time from the running broker ([`crate::gauges::observe`]): partitions, under-replicated
//! partitions, log sizes and consumer-group lag cost nothing between scrapes. Request rate and
//! latency come from [`rpc_layer`] at the gRPC edge (`vltava_broker_requests_total`,
//! `vltava_broker_request_duration_seconds`, by method and error code).

use std::sync::LazyLock;

use opentelemetry::metrics::{Counter, Histogram, Meter};
use vltava_common::metrics::RpcMetricsLayer;

/// Instrumentation scope, and prefix of every broker metric name.
pub const SCOPE: &str = "vltava.broker";

/// The broker's counters.
pub struct BrokerMetrics {
    /// Bytes of record batches appended by produce requests (bytes in).
    pub bytes_in: Counter<u64>,
    /// Bytes of record batches returned to consumers by fetches and subscriptions (bytes out).
    pub bytes_out: Counter<u64>,
    /// ISR shrinks of partitions this broker leads.
    pub isr_shrinks: Counter<u64>,
    /// ISR expansions of partitions this broker leads.
    pub isr_expands: Counter<u64>,
    /// Rebalances (group epoch bumps) of the groups this broker coordinates, by group.
    pub group_rebalances: Counter<u64>,
    /// Seconds from a group epoch bump until every member owns its target again, by group.
    pub group_rebalance_duration: Histogram<f64>,
    /// Batches of idempotent producers that were retries of stored ones (answered, not stored).
    pub duplicate_batches: Counter<u64>,
    /// Transactions this broker's coordinator ended, by outcome (`commit` or `abort`).
    pub transactions_completed: Counter<u64>,
    /// Transactions aborted because they outlived `transaction.timeout.ms`.
    pub transactions_timed_out: Counter<u64>,
    /// Cleaning passes of one partition's log.
    pub cleaner_passes: Counter<u64>,
    /// Segments the log cleaner rewrote.
    pub cleaner_segments: Counter<u64>,
    /// Bytes of dirty log the cleaner compacted.
    pub cleaner_bytes: Counter<u64>,
    /// Records the log cleaner removed (superseded values, expired tombstones, aborted data).
    pub cleaner_records_removed: Counter<u64>,
}

static METRICS: LazyLock<BrokerMetrics> = LazyLock::new(|| BrokerMetrics::new(&opentelemetry::global::meter(SCOPE)));

/// The process's broker counters.
pub fn get() -> &'static BrokerMetrics {
    &METRICS
}

impl BrokerMetrics {
    fn new(meter: &Meter) -> Self {
        let bytes = |name: &'static str, description: &'static str| {
            meter.u64_counter(name).with_unit("By").with_description(description).build()
        };
        let count = |name: &'static str, description: &'static str| {
            meter.u64_counter(name).with_unit("{change}").with_description(description).build()
        };
        Self {
            bytes_in: bytes("vltava.broker.in.bytes", "Bytes of record batches appended by produce requests"),
            bytes_out: bytes("vltava.broker.out.bytes", "Bytes of record batches sent to consumers (fetch, subscribe)"),
            isr_shrinks: count("vltava.broker.isr.shrinks", "ISR shrinks of partitions led by this broker"),
            isr_expands: count("vltava.broker.isr.expands", "ISR expansions of partitions led by this broker"),
            group_rebalances: meter
                .u64_counter("vltava.broker.consumer_group.rebalances")
                .with_unit("{rebalance}")
                .with_description("Group epoch bumps (membership or subscription changes) of coordinated groups")
                .build(),
            group_rebalance_duration: meter
                .f64_histogram("vltava.broker.consumer_group.rebalance.duration")
                .with_unit("s")
                .with_description("Time from a group epoch bump until every member owns its target assignment")
                .with_boundaries(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
                .build(),
            duplicate_batches: meter
                .u64_counter("vltava.broker.produce.duplicate_batches")
                .with_unit("{batch}")
                .with_description("Retried batches of idempotent producers answered with their original offsets")
                .build(),
            transactions_completed: meter
                .u64_counter("vltava.broker.transactions.completed")
                .with_unit("{transaction}")
                .with_description("Transactions whose markers this coordinator wrote, by outcome")
                .build(),
            transactions_timed_out: meter
                .u64_counter("vltava.broker.transactions.timed_out")
                .with_unit("{transaction}")
                .with_description("Transactions aborted because they outlived transaction.timeout.ms")
                .build(),
            cleaner_passes: meter
                .u64_counter("vltava.broker.cleaner.passes")
                .with_unit("{pass}")
                .with_description("Cleaning passes, one per partition log cleaned")
                .build(),
            cleaner_segments: meter
                .u64_counter("vltava.broker.cleaner.segments")
                .with_unit("{segment}")
                .with_description("Segments the log cleaner rewrote")
                .build(),
            cleaner_bytes: bytes("vltava.broker.cleaner.bytes", "Bytes of dirty log the cleaner compacted"),
            cleaner_records_removed: meter
                .u64_counter("vltava.broker.cleaner.records_removed")
                .with_unit("{record}")
                .with_description("Records the log cleaner removed")
                .build(),
        }
    }
}

/// Counts an ISR change of a partition this broker led before and after it.
pub fn isr_changed(before: &[i32], after: &[i32]) {
    let (shrunk, expanded) = isr_change(before, after);
    if shrunk {
        get().isr_shrinks.add(1, &[]);
    }
    if expanded {
        get().isr_expands.add(1, &[]);
    }
}

/// Whether going from ISR `before` to `after` shrank it (a member left) and expanded it (one joined).
fn isr_change(before: &[i32], after: &[i32]) -> (bool, bool) {
    (before.iter().any(|b| !after.contains(b)), after.iter().any(|a| !before.contains(a)))
}

/// Request count and latency of every gRPC call the broker answers.
pub fn rpc_layer() -> RpcMetricsLayer {
    RpcMetricsLayer::global(SCOPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_isr_change_is_a_shrink_an_expansion_or_both() {
        assert_eq!(isr_change(&[1, 2, 3], &[1, 3]), (true, false));
        assert_eq!(isr_change(&[1, 3], &[1, 2, 3]), (false, true));
        assert_eq!(isr_change(&[1, 2], &[1, 3]), (true, true), "a member swapped for another");
        assert_eq!(isr_change(&[1, 2], &[2, 1]), (false, false), "order does not matter");
        // With no provider installed the counters are no-ops; recording must still be safe.
        isr_changed(&[1, 2, 3], &[1, 3]);
    }
}
