//! The Kafka listener's metrics (Prometheus names in docs/observability.md):
//! `vltava_broker_kafka_requests_total{api}`, `vltava_broker_kafka_request_duration_seconds{api}`,
//! `vltava_broker_kafka_protocol_errors_total{kind}` (connections closed on bad input) and
//! `vltava_broker_kafka_connections` (open now).

use std::sync::LazyLock;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};
use vltava_common::metrics::LATENCY_BUCKETS_SECONDS;

/// The listener's instruments.
pub struct KafkaMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    protocol_errors: Counter<u64>,
    connections: UpDownCounter<i64>,
}

static METRICS: LazyLock<KafkaMetrics> = LazyLock::new(|| {
    let meter = opentelemetry::global::meter("vltava.broker");
    KafkaMetrics {
        requests: meter
            .u64_counter("vltava.broker.kafka.requests")
            .with_unit("{request}")
            .with_description("Kafka protocol requests answered, by API")
            .build(),
        duration: meter
            .f64_histogram("vltava.broker.kafka.request.duration")
            .with_unit("s")
            .with_description("Kafka protocol request latency until the response is ready, by API")
            .with_boundaries(LATENCY_BUCKETS_SECONDS.to_vec())
            .build(),
        protocol_errors: meter
            .u64_counter("vltava.broker.kafka.protocol_errors")
            .with_unit("{connection}")
            .with_description("Kafka connections closed because of bad input, by kind")
            .build(),
        connections: meter
            .i64_up_down_counter("vltava.broker.kafka.connections")
            .with_unit("{connection}")
            .with_description("Open Kafka protocol connections")
            .build(),
    }
});

/// Counts one answered request of `api` that started at `started`.
pub fn request(api: &'static str, started: Instant) {
    let attrs = [KeyValue::new("api", api)];
    METRICS.requests.add(1, &attrs);
    METRICS.duration.record(started.elapsed().as_secs_f64(), &attrs);
}

/// Counts a connection closed on bad input.
pub fn protocol_error(kind: &'static str) {
    METRICS.protocol_errors.add(1, &[KeyValue::new("kind", kind)]);
}

/// Counts a connection opening (`1`) or closing (`-1`).
pub fn connections(delta: i64) {
    METRICS.connections.add(delta, &[]);
}
