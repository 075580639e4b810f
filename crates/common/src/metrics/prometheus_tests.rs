//! Rendering tests: real instruments on a private provider, collected through a manual reader.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};

use super::*;
use crate::metrics::scrape::{Scraper, shared_reader};

fn provider() -> (SdkMeterProvider, Scraper, Arc<ManualReader>) {
    let reader = Arc::new(ManualReader::builder().build());
    let provider = SdkMeterProvider::builder()
        .with_resource(Resource::builder_empty().with_service_name("vltava-test").build())
        .with_reader(shared_reader(&reader))
        .build();
    (provider, Scraper::new(&reader), reader)
}

fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn counters_gauges_and_units_follow_the_prometheus_conventions() {
    let (p, scraper, _reader) = provider();
    let meter = p.meter("test");
    let c = meter.u64_counter("vltava.test.requests").with_unit("{request}").with_description("Requests").build();
    c.add(2, &[KeyValue::new("method", "Produce")]);
    c.add(3, &[KeyValue::new("method", "Produce")]);
    c.add(1, &[KeyValue::new("method", "Fetch")]);
    meter.u64_counter("vltava.test.in.bytes").with_unit("By").build().add(10, &[]);
    meter.u64_counter("vltava.test.sent").with_unit("By").build().add(7, &[]);
    meter.i64_up_down_counter("vltava.test.open").build().add(-2, &[]);
    meter.i64_observable_gauge("vltava.test.term").with_callback(|o| o.observe(4, &[])).build();
    meter.f64_gauge("vltava.test.ratio").with_unit("1").build().record(0.25, &[]);

    let text = scraper.scrape().unwrap();
    assert!(text.starts_with("# HELP target_info"), "{text}");
    assert!(text.contains("target_info{") && text.contains("service_name=\"vltava-test\""), "{text}");
    assert!(text.contains("# HELP vltava_test_requests_total Requests\n# TYPE vltava_test_requests_total counter\n"));
    assert!(text.contains("vltava_test_requests_total{method=\"Produce\"} 5\n"), "{text}");
    assert!(text.contains("vltava_test_requests_total{method=\"Fetch\"} 1\n"), "{text}");
    assert!(text.contains("# TYPE vltava_test_in_bytes_total counter\nvltava_test_in_bytes_total 10\n"), "{text}");
    assert!(text.contains("vltava_test_sent_bytes_total 7\n"), "{text}");
    assert!(text.contains("# TYPE vltava_test_open gauge\nvltava_test_open -2\n"), "{text}");
    assert!(text.contains("# TYPE vltava_test_term gauge\nvltava_test_term 4\n"), "{text}");
    assert!(text.contains("vltava_test_ratio 0.25\n"), "{text}");
    // Exactly one TYPE line per family.
    assert_eq!(lines_of(&text, "# TYPE vltava_test_requests_total").len(), 1);
}

#[test]
fn histogram_buckets_are_cumulative_and_end_with_inf() {
    let (p, scraper, _reader) = provider();
    let h = p
        .meter("test")
        .f64_histogram("vltava.test.duration")
        .with_unit("s")
        .with_boundaries(vec![0.01, 0.1, 1.0])
        .build();
    for v in [0.005, 0.05, 0.06, 0.5, 5.0] {
        h.record(v, &[KeyValue::new("method", "Fetch")]);
    }
    let text = scraper.scrape().unwrap();
    assert!(text.contains("# TYPE vltava_test_duration_seconds histogram\n"), "{text}");
    let buckets = lines_of(&text, "vltava_test_duration_seconds_bucket");
    assert_eq!(
        buckets,
        vec![
            "vltava_test_duration_seconds_bucket{method=\"Fetch\",le=\"0.01\"} 1",
            "vltava_test_duration_seconds_bucket{method=\"Fetch\",le=\"0.1\"} 3",
            "vltava_test_duration_seconds_bucket{method=\"Fetch\",le=\"1\"} 4",
            "vltava_test_duration_seconds_bucket{method=\"Fetch\",le=\"+Inf\"} 5",
        ]
    );
    assert!(text.contains("vltava_test_duration_seconds_count{method=\"Fetch\"} 5\n"), "{text}");
    let sum = lines_of(&text, "vltava_test_duration_seconds_sum{method=\"Fetch\"} ")[0];
    let sum: f64 = sum.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((sum - 5.615).abs() < 1e-9, "{sum}");
}

#[test]
fn label_values_and_names_are_escaped() {
    let (p, scraper, _reader) = provider();
    let c = p.meter("test").u64_counter("odd-name.x").with_description("line one\nback\\slash").build();
    c.add(1, &[KeyValue::new("group", "a\"b\\c\nd"), KeyValue::new("bad.key-name", "v")]);
    let text = scraper.scrape().unwrap();
    assert!(text.contains("# HELP odd_name_x_total line one\\nback\\\\slash\n"), "{text}");
    assert!(text.contains("odd_name_x_total{bad_key_name=\"v\",group=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
}

#[test]
fn names_get_unit_words_once() {
    assert_eq!(metric_name("vltava.broker.request.duration", "s", false), "vltava_broker_request_duration_seconds");
    assert_eq!(metric_name("vltava.broker.in.bytes", "By", true), "vltava_broker_in_bytes_total");
    assert_eq!(metric_name("x.latency", "ms", false), "x_latency_milliseconds");
    assert_eq!(metric_name("x.rate", "By/s", false), "x_rate_bytes_per_second");
    assert_eq!(metric_name("x.total", "", true), "x_total");
    assert_eq!(metric_name("9lives", "{thing}", false), "_9lives");
    assert_eq!(escape_label_value("plain"), "plain");
}

#[test]
fn collecting_after_the_provider_is_gone_is_an_error() {
    let (p, scraper, reader) = provider();
    drop(p);
    drop(reader);
    assert!(scraper.scrape().is_err());
}
