//! `vltava perf produce|consume|metadata`: throughput and latency tests, like Kafka's
//! `kafka-producer-perf-test` and `kafka-consumer-perf-test`, and what they share.
//!
//! Both print a progress line to stderr about every [`REPORT_INTERVAL`], then a summary line to
//! stderr; with `--json` the last line on stdout is one JSON object with `records`,
//! `records_per_sec`, `mb_per_sec` and `latency_ms {avg, p50, p95, p99, p999, max}`. MB are MiB
//! (1,048,576 bytes), as in Kafka's tools. `perf metadata` counts topic operations instead of
//! records (see [`perf_metadata`]).

use std::time::Duration;

use clap::Subcommand;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::perf_consume::PerfConsumeArgs;
use super::perf_produce::PerfProduceArgs;
use perf_metadata::PerfMetadataArgs;

// Declared here rather than next to its siblings in `commands/mod.rs`; the file is
// `commands/perf_metadata.rs` all the same.
#[path = "perf_metadata.rs"]
pub mod perf_metadata;

/// How often a progress line is printed.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Performance tests.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum PerfCommand {
    /// Produces N records of B bytes as fast as allowed and reports throughput and the
    /// per-record send-to-acknowledgement latency.
    Produce(PerfProduceArgs),
    /// Consumes N records from the start of a topic and reports throughput and poll latency.
    Consume(PerfConsumeArgs),
    /// Creates N topics through the controller quorum with C creations in flight and reports
    /// topic creations per second and their latency, then deletes them (unless `--keep`).
    Metadata(PerfMetadataArgs),
}

/// Runs a perf command.
pub async fn run(command: PerfCommand) -> anyhow::Result<()> {
    match command {
        PerfCommand::Produce(args) => super::perf_produce::run(args).await,
        PerfCommand::Consume(args) => super::perf_consume::run(args).await,
        PerfCommand::Metadata(args) => perf_metadata::run(args).await,
    }
}

/// A latency histogram in microseconds, from 1 µs to one hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `latency` (clamped to the histogram's range) in microseconds.
pub fn record_latency(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
    histogram.saturating_record(micros);
}

/// Latency percentiles in milliseconds, as printed in `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LatencyMs {
    /// Mean.
    pub avg: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl LatencyMs {
    /// Summarises a microsecond histogram (all zeros when it is empty).
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencyMs::default();
        }
        let ms = |us: f64| crate::output::round(us / 1000.0, 3);
        LatencyMs {
            avg: ms(h.mean()),
            p50: ms(h.value_at_quantile(0.50) as f64),
            p95: ms(h.value_at_quantile(0.95) as f64),
            p99: ms(h.value_at_quantile(0.99) as f64),
            p999: ms(h.value_at_quantile(0.999) as f64),
            max: ms(h.max() as f64),
        }
    }

    /// `a ms avg latency, b ms max latency, c ms 50th, d ms 95th, e ms 99th, f ms 99.9th`.
    pub fn describe(&self) -> String {
        format!(
            "{:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th",
            self.avg, self.max, self.p50, self.p95, self.p99, self.p999
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary_in_milliseconds() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            record_latency(&mut h, Duration::from_millis(ms));
        }
        let l = LatencyMs::from_histogram(&h);
        assert!((l.p50 - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99 - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max - 1000.0).abs() < 1.0, "{l:?}");
        assert!((l.avg - 500.5).abs() < 1.0, "{l:?}");
        assert!(l.describe().starts_with("500.") && l.describe().contains("ms 99.9th"));
        assert_eq!(LatencyMs::from_histogram(&new_histogram()), LatencyMs::default());
        // Out-of-range values are clamped, not lost.
        record_latency(&mut h, Duration::from_secs(10 * 3600));
        record_latency(&mut h, Duration::ZERO);
        assert_eq!(h.len(), 1002);
    }
}
