//! The broker's gauges, observed at collection time from the running [`Broker`]: partitions,
//! leaderships, under-replicated partitions, log sizes and consumer-group lag cost nothing
//! between scrapes. Counters and the instrumentation scope are in [`crate::metrics`].

use std::sync::{Arc, Weak};

use opentelemetry::KeyValue;

use crate::broker::Broker;
use crate::metrics::SCOPE;
use crate::partition::Partition;

/// Registers the gauges read from `broker` at collection time (for as long as it runs).
pub fn observe(broker: &Arc<Broker>) {
    let meter = opentelemetry::global::meter(SCOPE);
    let weak = Arc::downgrade(broker);
    let partitions = |pred: fn(&Broker, &Partition) -> bool| {
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
    let w = weak.clone();
    meter
        .f64_observable_gauge("vltava.broker.cleaner.max_dirty_ratio")
        .with_description(
            "The highest dirty ratio among the compacted partitions hosted here (Kafka's max-dirty-percent)",
        )
        .with_callback(move |o| {
            if let Some(b) = w.upgrade() {
                let now = vltava_common::time::now_ms();
                let max =
                    b.replicas.all().iter().filter_map(|p| p.dirty_stats(now)).map(|s| s.ratio()).fold(0.0, f64::max);
                o.observe(max, &[]);
            }
        })
        .build();
    let w = weak.clone();
    let started_ms = vltava_common::time::now_ms();
    meter
        .f64_observable_gauge("vltava.broker.cleaner.time_since_last_clean")
        .with_unit("s")
        .with_description(
            "Seconds since the log cleaner last cleaned each compacted partition (since start when it has not yet)",
        )
        .with_callback(move |o| {
            if let Some(b) = w.upgrade() {
                let now = vltava_common::time::now_ms();
                for p in b.replicas.all() {
                    if let Some(stats) = p.dirty_stats(now) {
                        let since = stats.last_clean_ms.unwrap_or(started_ms);
                        o.observe((now - since).max(0) as f64 / 1000.0, &partition_labels(p.topic(), p.index()));
                    }
                }
            }
        })
        .build();
    meter
        .u64_observable_gauge("vltava.broker.long_polls.waiting")
        .with_unit("{request}")
        .with_description("Fetches and replica fetches parked waiting for data (Kafka's fetch purgatory size)")
        .with_callback(|o| o.observe(crate::long_poll::waiting() as u64, &[]))
        .build();
    let weak_members = weak.clone();
    meter
        .i64_observable_gauge("vltava.broker.consumer_group.lag")
        .with_unit("{message}")
        .with_description(
            "High watermark minus the committed offset, per group and partition, for the groups this broker \
             coordinates",
        )
        .with_callback(move |o| observe_lag(&weak, o))
        .build();
    let weak = weak_members;
    meter
        .u64_observable_gauge("vltava.broker.consumer_group.members")
        .with_unit("{member}")
        .with_description("Members of each consumer group this broker coordinates")
        .with_callback(move |o| {
            let Some(b) = weak.upgrade() else { return };
            for (group, members) in b.groups.members_snapshot() {
                o.observe(members as u64, &[KeyValue::new("group", group)]);
            }
        })
        .build();
}

fn partition_labels(topic: &str, partition: i32) -> [KeyValue; 2] {
    [KeyValue::new("topic", topic.to_string()), KeyValue::new("partition", i64::from(partition))]
}

/// Observes the lag of every offset committed to the groups this broker coordinates: from the
/// high watermark of the partitions it hosts, else from the log end its leader last named.
fn observe_lag(broker: &Weak<Broker>, o: &dyn opentelemetry::metrics::AsyncInstrument<i64>) {
    let Some(b) = broker.upgrade() else { return };
    for (group, topic, partition, committed) in b.groups.committed_snapshot() {
        let end = match b.replicas.partition(&topic, partition) {
            Ok(part) => part.high_watermark(),
            Err(_) => match b.groups.remote_log_end(&topic, partition) {
                Some(end) => end,
                None => continue,
            },
        };
        let lag = (end - committed).max(0);
        let [topic, partition] = partition_labels(&topic, partition);
        o.observe(lag, &[KeyValue::new("group", group), topic, partition]);
    }
}
