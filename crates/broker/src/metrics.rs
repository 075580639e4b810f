//! The broker's metrics (see docs/observability.md for the Prometheus names).
//!
//! Counters are created once, from the global meter provider the process installed at start
//! ([`vltava_common::metrics::Metrics::start`]), and recorded on the hot paths. Gauges are
//! observed at collection time from the running broker ([`observe`]): partitions, under-replicated
//! partitions, log sizes and consumer-group lag cost nothing between scrapes. Request rate and
//! latency come from [`rpc_layer`] at the gRPC edge (`vltava_broker_requests_total`,
//! `vltava_broker_request_duration_seconds`, by method and error code).

use std::sync::{Arc, LazyLock, Weak};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter};
use vltava_common::metrics::RpcMetricsLayer;

use crate::server::Broker;

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
        }
    }
}

/// Counts an ISR change of a partition this broker led before and after it.
pub fn isr_changed(before: &[i32], after: &[i32]) {
    if before.iter().any(|b| !after.contains(b)) {
        get().isr_shrinks.add(1, &[]);
    }
    if after.iter().any(|a| !before.contains(a)) {
        get().isr_expands.add(1, &[]);
    }
}

/// Request count and latency of every gRPC call the broker answers.
pub fn rpc_layer() -> RpcMetricsLayer {
    RpcMetricsLayer::global(SCOPE)
}

/// Registers the gauges read from `broker` at collection time (for as long as it runs).
pub fn observe(broker: &Arc<Broker>) {
    let meter = opentelemetry::global::meter(SCOPE);
    let weak = Arc::downgrade(broker);
    let partitions = |pred: fn(&Broker, &crate::partition::Partition) -> bool| {
        let weak = weak.clone();
        move |o: &dyn opentelemetry::metrics::AsyncInstrument<u64>| {
            if let Some(b) = weak.upgrade() {
                o.observe(b.replicas.all().iter().filter(|p| pred(&b, p)).count() as u64, &[]);
            }
        }
    };
    meter
        .u64_observable_gauge("vltava.broker.partitions")
        .with_unit("{partition}")
        .with_description("Partition replicas hosted by this broker")
        .with_callback(partitions(|_, _| true))
        .build();
    meter
        .u64_observable_gauge("vltava.broker.leader.partitions")
        .with_unit("{partition}")
        .with_description("Partitions this broker leads")
        .with_callback(partitions(|b, p| p.leader_state().leader == b.config.broker_id))
        .build();
    meter
        .u64_observable_gauge("vltava.broker.under_replicated.partitions")
        .with_unit("{partition}")
        .with_description("Partitions this broker leads whose ISR is smaller than their replica set")
        .with_callback(partitions(|b, p| {
            let s = p.leader_state();
            s.leader == b.config.broker_id && s.isr.len() < s.replicas.len()
        }))
        .build();
    let w = weak.clone();
    meter
        .u64_observable_gauge("vltava.broker.partition.size")
        .with_unit("By")
        .with_description("Size of each hosted partition's log on disk")
        .with_callback(move |o| {
            if let Some(b) = w.upgrade() {
                for p in b.replicas.all() {
                    o.observe(p.size_bytes(), &partition_labels(p.topic(), p.index()));
                }
            }
        })
        .build();
    meter
        .i64_observable_gauge("vltava.broker.consumer_group.lag")
        .with_unit("{message}")
        .with_description(
            "High watermark minus the committed offset, per group and partition, for the offsets stored on \
             this broker of partitions it hosts",
        )
        .with_callback(move |o| observe_lag(&weak, o))
        .build();
}

fn partition_labels(topic: &str, partition: i32) -> [KeyValue; 2] {
    [KeyValue::new("topic", topic.to_string()), KeyValue::new("partition", i64::from(partition))]
}

/// Observes the lag of every committed position whose partition is hosted here.
fn observe_lag(broker: &Weak<Broker>, o: &dyn opentelemetry::metrics::AsyncInstrument<i64>) {
    let Some(b) = broker.upgrade() else { return };
    let Ok(groups) = b.offsets.list_groups() else { return };
    for group in groups {
        let Ok(offsets) = b.offsets.fetch_group(&group) else { continue };
        for po in offsets {
            let Ok(part) = b.replicas.partition(&po.topic, po.partition) else { continue };
            let lag = (part.high_watermark() - po.committed.offset).max(0);
            let [topic, partition] = partition_labels(&po.topic, po.partition);
            o.observe(lag, &[KeyValue::new("group", group.clone()), topic, partition]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isr_changes_count_without_a_provider() {
        // With no provider installed the counters are no-ops; recording must still be safe.
        isr_changed(&[1, 2, 3], &[1, 3]);
        isr_changed(&[1, 3], &[1, 2, 3]);
        isr_changed(&[1, 2], &[1, 3]);
    }
}
