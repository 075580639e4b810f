//! `vltava perf consume`: Kafka's `kafka-consumer-perf-test`.
//!
//! Reads every partition of `--topic` from its log start (no group, nothing committed) until
//! `--num-records` records arrived, or until `--timeout-ms` passed without one (then it fails).
//!
//! What is measured:
//! - throughput: records and key+value bytes over the time from just before the first `poll`
//!   (positions are resolved inside it) to the arrival of the last counted record;
//! - `time_to_first_record_ms`, and the "fetch" throughput after the first record arrived;
//! - `latency_ms`: the **poll latency**, i.e. how long each `poll` that returned records waited
//!   for them (near zero while the consumer's pipelined fetches keep up, the fetch round trip
//!   when it waits on the network).

use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use vltava_client::{Consumer, ConsumerConfig, OffsetReset};

use super::perf_stats::{LatencyMs, REPORT_INTERVAL, new_histogram, record_latency};
use super::{ServerArgs, interrupted};
use crate::output::{mb_per_sec, per_sec, print_json, round};

/// Longest single `poll`, so that progress and timeouts are checked regularly.
const MAX_POLL: Duration = Duration::from_millis(500);

/// Arguments of `vltava perf consume`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PerfConsumeArgs {
    /// Topic to consume from its beginning.
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// Number of records to consume.
    #[arg(long, value_name = "N")]
    pub num_records: u64,
    /// Fail after T milliseconds without a record.
    #[arg(long, value_name = "T", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Also print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Send every call through the server given (a `vltava gateway`) instead of straight to the
    /// partition leaders: measures the gateway's cost.
    #[arg(long)]
    pub via_gateway: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The `--json` summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumeReport {
    /// Records consumed.
    pub records: u64,
    /// Key and value bytes consumed.
    pub bytes: u64,
    /// From the first poll to the last record.
    pub elapsed_ms: f64,
    /// Records per second over `elapsed_ms`.
    pub records_per_sec: f64,
    /// MiB per second over `elapsed_ms`.
    pub mb_per_sec: f64,
    /// From the first poll to the first record.
    pub time_to_first_record_ms: f64,
    /// Records per second from the first record to the last.
    pub fetch_records_per_sec: f64,
    /// MiB per second from the first record to the last.
    pub fetch_mb_per_sec: f64,
    /// Number of polls that returned records.
    pub polls: u64,
    /// Poll latency (see the module documentation).
    pub latency_ms: LatencyMs,
}

impl ConsumeReport {
    /// Builds the report from raw measurements.
    pub fn new(
        records: u64,
        bytes: u64,
        elapsed: Duration,
        first: Option<Duration>,
        polls: u64,
        h: &Histogram<u64>,
    ) -> Self {
        let seconds = elapsed.as_secs_f64();
        let first = first.unwrap_or(elapsed);
        let fetch_seconds = elapsed.saturating_sub(first).as_secs_f64();
        ConsumeReport {
            records,
            bytes,
            elapsed_ms: round(seconds * 1000.0, 3),
            records_per_sec: round(per_sec(records, seconds), 2),
            mb_per_sec: round(mb_per_sec(bytes, seconds), 3),
            time_to_first_record_ms: round(first.as_secs_f64() * 1000.0, 3),
            fetch_records_per_sec: round(per_sec(records, fetch_seconds), 2),
            fetch_mb_per_sec: round(mb_per_sec(bytes, fetch_seconds), 3),
            polls,
            latency_ms: LatencyMs::from_histogram(h),
        }
    }

    /// The final summary line.
    pub fn line(&self) -> String {
        format!(
            "{} records consumed, {:.1} records/sec ({:.2} MB/sec), {:.1} ms to the first record, poll latency: {}.",
            self.records,
            self.records_per_sec,
            self.mb_per_sec,
            self.time_to_first_record_ms,
            self.latency_ms.describe().replace(" latency", "")
        )
    }
}

/// The progress line for `records` and `bytes` consumed in `seconds`.
pub fn progress_line(records: u64, bytes: u64, seconds: f64, latency: &LatencyMs) -> String {
    format!(
        "{records} records consumed, {:.1} records/sec ({:.2} MB/sec), {:.1} ms p50 poll latency, {:.1} ms max poll latency.",
        per_sec(records, seconds),
        mb_per_sec(bytes, seconds),
        latency.p50,
        latency.max
    )
}

/// Runs `vltava perf consume`.
pub async fn run(args: PerfConsumeArgs) -> anyhow::Result<()> {
    let mut config = ConsumerConfig::new(args.server.server.clone());
    config.auto_offset_reset = OffsetReset::Earliest;
    config.enable_auto_commit = false;
    config.max_poll_records = 10_000;
    config.via_gateway = args.via_gateway;
    let mut consumer = Consumer::connect(config).await?;
    consumer.assign_topic(&args.topic).await?;
    consumer.seek_to_beginning(&consumer.assignment())?;

    let idle_limit = Duration::from_millis(args.timeout_ms);
    let mut total = new_histogram();
    let mut window = new_histogram();
    let (mut records, mut bytes, mut polls) = (0u64, 0u64, 0u64);
    let (mut window_records, mut window_bytes) = (0u64, 0u64);
    let mut first_record = None;
    let start = Instant::now();
    let mut last_record = start;
    let mut window_start = start;
    let mut timed_out = false;
    let stop = interrupted();
    tokio::pin!(stop);
    while records < args.num_records {
        let left = idle_limit.saturating_sub(last_record.elapsed());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let polled_at = Instant::now();
        let batch = tokio::select! {
            biased;
            () = &mut stop => break,
            batch = consumer.poll(left.min(MAX_POLL)) => batch?,
        };
        if !batch.is_empty() {
            let now = Instant::now();
            record_latency(&mut total, now - polled_at);
            record_latency(&mut window, now - polled_at);
            polls += 1;
            first_record.get_or_insert(now - start);
            last_record = now;
            let take = usize::try_from(args.num_records - records).unwrap_or(usize::MAX).min(batch.len());
            let size: u64 = batch[..take]
                .iter()
                .map(|r| (r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len())) as u64)
                .sum();
            records += take as u64;
            bytes += size;
            window_records += take as u64;
            window_bytes += size;
        }
        if window_start.elapsed() >= REPORT_INTERVAL {
            let latency = LatencyMs::from_histogram(&window);
            eprintln!(
                "{}",
                progress_line(window_records, window_bytes, window_start.elapsed().as_secs_f64(), &latency)
            );
            window.reset();
            (window_records, window_bytes) = (0, 0);
            window_start = Instant::now();
        }
    }
    let report = ConsumeReport::new(records, bytes, last_record - start, first_record, polls, &total);
    eprintln!("{}", report.line());
    if args.json {
        print_json(&report)?;
    }
    if timed_out {
        anyhow::bail!(
            "timed out: no record for {} ms; consumed {records} of {} records",
            args.timeout_ms,
            args.num_records
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_rates_and_json() {
        let mut h = new_histogram();
        record_latency(&mut h, Duration::from_millis(4));
        let r = ConsumeReport::new(1000, 2 * 1024 * 1024, Duration::from_secs(2), Some(Duration::from_secs(1)), 10, &h);
        assert_eq!(r.records_per_sec, 500.0);
        assert_eq!(r.mb_per_sec, 1.0);
        assert_eq!(r.time_to_first_record_ms, 1000.0);
        assert_eq!(r.fetch_records_per_sec, 1000.0);
        assert_eq!(r.fetch_mb_per_sec, 2.0);
        assert!((r.latency_ms.p50 - 4.0).abs() < 0.01);
        let v = serde_json::to_value(&r).unwrap();
        for key in ["records", "records_per_sec", "mb_per_sec"] {
            assert!(v[key].is_number(), "{key}");
        }
        for key in ["p50", "p99", "p999", "max"] {
            assert!(v["latency_ms"][key].is_number(), "{key}");
        }
        assert!(r.line().starts_with("1000 records consumed, 500.0 records/sec (1.00 MB/sec)"), "{}", r.line());
        assert!(!r.line().contains("latency,"), "{}", r.line());
    }

    #[test]
    fn empty_run_reports_zeros() {
        let r = ConsumeReport::new(0, 0, Duration::ZERO, None, 0, &new_histogram());
        assert_eq!((r.records, r.records_per_sec, r.mb_per_sec), (0, 0.0, 0.0));
        assert!(progress_line(0, 0, 5.0, &r.latency_ms).starts_with("0 records consumed, 0.0 records/sec"));
    }
}
