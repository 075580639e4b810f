//! `vltava perf produce`: Kafka's `kafka-producer-perf-test`.
//!
//! Sends `--num-records` records whose value is one preallocated payload of `--record-size`
//! random upper-case letters (shared, never copied), without keys, letting the sticky
//! partitioner spread them. Latency is measured per record from just before `send` to its
//! acknowledgement callback and kept in an HDR histogram (µs precision); throughput counts
//! acknowledged records over the time from the first send to the end of the final flush.
//! `--throughput R` paces sends to R records/s (≤ 0: unlimited).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use vltava_client::{Acks, ClientError, Compression, Producer, ProducerConfig, ProducerRecord, RecordMetadata};

use super::perf_stats::{LatencyMs, REPORT_INTERVAL, new_histogram, record_latency};
use super::{ServerArgs, acks_name, interrupted, parse_acks, parse_compression};
use crate::output::{mb_per_sec, per_sec, print_json, round};

/// Arguments of `vltava perf produce`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct PerfProduceArgs {
    /// Topic to produce to (it must exist).
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// Number of records to send.
    #[arg(long, value_name = "N")]
    pub num_records: u64,
    /// Size of each record's value in bytes.
    #[arg(long, value_name = "B")]
    pub record_size: usize,
    /// Acknowledgements to wait for: all (-1), 1 (the leader) or 0 (none).
    #[arg(long, value_name = "all|1|0", default_value = "all", value_parser = parse_acks)]
    pub acks: Acks,
    /// `enable.idempotence` (it takes effect with `--acks all`): `--enable-idempotence false`
    /// measures the producer without producer ids and sequence numbers.
    #[arg(long, value_name = "true|false", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_idempotence: bool,
    /// Target records per second; -1 (or any value ≤ 0) is unlimited.
    #[arg(long, value_name = "R", default_value_t = -1.0, allow_negative_numbers = true)]
    pub throughput: f64,
    /// Producer `batch.size` in bytes (default: the client's, 16384).
    #[arg(long, value_name = "B")]
    pub batch_size: Option<usize>,
    /// Producer `linger.ms` (default: the client's, 5).
    #[arg(long, value_name = "L")]
    pub linger_ms: Option<u64>,
    /// Compression codec of the record batches.
    #[arg(long, value_name = "none|gzip|snappy|lz4|zstd", default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// Also print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Send every call through the server given (a `vltava gateway`) instead of straight to the
    /// partition leaders: measures the gateway's cost.
    #[arg(long)]
    pub via_gateway: bool,
    /// Send in transactions with this `transactional.id` (Kafka's perf test option).
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// With `--transactional-id`: commit every MS milliseconds (Kafka's `--transaction-duration-ms`).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub transaction_duration_ms: u64,
    /// Give record i the key `key-{i mod N}` (a compacted topic needs keys; the records of one
    /// key go to one partition). Without it records have no key.
    #[arg(long, value_name = "N")]
    pub key_space: Option<u64>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A payload of `size` pseudo-random upper-case ASCII letters (like Kafka's perf test).
pub fn make_payload(size: usize) -> Bytes {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let payload: Vec<u8> = (0..size)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect();
    Bytes::from(payload)
}

/// How long to pause after `sent` records in `elapsed` to stay at `throughput` records/s
/// (`None`: no pause, including when unlimited). Paces against the absolute schedule so that
/// oversleeping is caught up.
pub fn throttle_delay(sent: u64, elapsed: Duration, throughput: f64) -> Option<Duration> {
    if throughput <= 0.0 || !throughput.is_finite() {
        return None;
    }
    let due = Duration::from_secs_f64(sent as f64 / throughput);
    let ahead = due.checked_sub(elapsed)?;
    (ahead >= Duration::from_millis(1)).then_some(ahead)
}

/// The producer configuration for these arguments.
pub fn producer_config(args: &PerfProduceArgs) -> ProducerConfig {
    let mut config = ProducerConfig::new(args.server.server.clone());
    config.acks = args.acks;
    config.enable_idempotence = args.enable_idempotence;
    config.compression = args.compression;
    config.via_gateway = args.via_gateway;
    config.transactional_id = args.transactional_id.clone();
    if let Some(b) = args.batch_size {
        config.batch_size = b;
        config.buffer_memory = config.buffer_memory.max(b.saturating_mul(2));
        config.max_request_size = config.max_request_size.max(b.saturating_add(1024));
    }
    if let Some(ms) = args.linger_ms {
        config.linger = Duration::from_millis(ms);
        config.delivery_timeout = config.delivery_timeout.max(config.linger + config.request_timeout);
    }
    // Room for the record's framing; larger records get the server's RECORD_TOO_LARGE.
    config.max_request_size = config.max_request_size.max(args.record_size.saturating_add(1024));
    config.buffer_memory = config.buffer_memory.max(config.max_request_size.saturating_mul(2));
    config
}

/// Counters shared with the acknowledgement callbacks.
struct Stats {
    total: Histogram<u64>,
    window: Histogram<u64>,
    window_start: Instant,
    window_records: u64,
    acknowledged: u64,
    failed: u64,
    first_error: Option<ClientError>,
}

type SharedStats = Arc<std::sync::Mutex<Stats>>;

fn lock(stats: &SharedStats) -> std::sync::MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|p| p.into_inner())
}

fn complete(stats: &SharedStats, sent_at: Instant, result: Result<RecordMetadata, ClientError>) {
    let latency = sent_at.elapsed();
    let mut s = lock(stats);
    match result {
        Ok(_) => {
            s.acknowledged += 1;
            s.window_records += 1;
            record_latency(&mut s.total, latency);
            record_latency(&mut s.window, latency);
        }
        Err(e) => {
            s.failed += 1;
            s.first_error.get_or_insert(e);
        }
    }
}

/// The progress line for `records` acknowledged in `seconds` with `latency`.
pub fn progress_line(records: u64, record_size: usize, seconds: f64, latency: &LatencyMs) -> String {
    format!(
        "{records} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms p50 latency, {:.1} ms max latency.",
        per_sec(records, seconds),
        mb_per_sec(records * record_size as u64, seconds),
        latency.avg,
        latency.p50,
        latency.max
    )
}

/// The `--json` summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProduceReport {
    /// Records acknowledged.
    pub records: u64,
    /// Records that failed.
    pub failed: u64,
    /// Value size of each record.
    pub record_size: usize,
    /// From the first send to the end of the final flush.
    pub elapsed_ms: f64,
    /// Acknowledged records per second.
    pub records_per_sec: f64,
    /// Acknowledged MiB of values per second.
    pub mb_per_sec: f64,
    /// Send-to-acknowledgement latency.
    pub latency_ms: LatencyMs,
    /// `all`, `1` or `0`.
    pub acks: &'static str,
    /// Compression codec.
    pub compression: &'static str,
    /// Whether the producer was idempotent.
    pub idempotent: bool,
    /// Transactions committed (0 without `--transactional-id`).
    pub transactions: u64,
}

impl ProduceReport {
    /// The final summary line (Kafka's format).
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {}",
            self.records,
            self.records_per_sec,
            self.mb_per_sec,
            self.latency_ms.describe()
        );
        if self.failed > 0 {
            line.push_str(&format!(", {} failed", self.failed));
        }
        line.push('.');
        line
    }
}

/// Runs `vltava perf produce`.
pub async fn run(args: PerfProduceArgs) -> anyhow::Result<()> {
    let producer = Producer::connect(producer_config(&args)).await?;
    let transactional = args.transactional_id.is_some();
    let transaction_duration = Duration::from_millis(args.transaction_duration_ms);
    if transactional {
        producer.init_transactions().await?;
    }
    let mut transactions = 0u64;
    let payload = make_payload(args.record_size);
    let stats: SharedStats = Arc::new(std::sync::Mutex::new(Stats {
        total: new_histogram(),
        window: new_histogram(),
        window_start: Instant::now(),
        window_records: 0,
        acknowledged: 0,
        failed: 0,
        first_error: None,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            interrupted().await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let reporter = {
        let stats = stats.clone();
        let record_size = args.record_size;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REPORT_INTERVAL).await;
                let line = {
                    let mut s = lock(&stats);
                    let latency = LatencyMs::from_histogram(&s.window);
                    let line =
                        progress_line(s.window_records, record_size, s.window_start.elapsed().as_secs_f64(), &latency);
                    s.window.reset();
                    s.window_records = 0;
                    s.window_start = Instant::now();
                    line
                };
                eprintln!("{line}");
            }
        })
    };

    let start = Instant::now();
    lock(&stats).window_start = start;
    let mut send_error = None;
    let mut txn_started = Instant::now();
    if transactional {
        producer.begin_transaction()?;
    }
    for sent in 0..args.num_records {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if transactional && txn_started.elapsed() >= transaction_duration {
            producer.commit_transaction().await?;
            transactions += 1;
            producer.begin_transaction()?;
            txn_started = Instant::now();
        }
        let mut record = ProducerRecord::new(args.topic.as_str(), payload.clone());
        if let Some(n) = args.key_space.filter(|n| *n > 0) {
            record = record.key(format!("key-{}", sent % n));
        }
        let s = stats.clone();
        let sent_at = Instant::now();
        if let Err(e) = producer.send_with_callback(record, move |r| complete(&s, sent_at, r)).await {
            send_error = Some(e);
            break;
        }
        if let Some(pause) = throttle_delay(sent + 1, start.elapsed(), args.throughput) {
            tokio::time::sleep(pause).await;
        }
    }
    if transactional {
        producer.commit_transaction().await?;
        transactions += 1;
    }
    producer.flush().await?;
    let elapsed = start.elapsed();
    reporter.abort();
    watcher.abort();
    producer.close().await;

    let (report, first_error) = {
        let mut s = lock(&stats);
        let seconds = elapsed.as_secs_f64();
        let report = ProduceReport {
            records: s.acknowledged,
            failed: s.failed,
            record_size: args.record_size,
            elapsed_ms: round(seconds * 1000.0, 3),
            records_per_sec: round(per_sec(s.acknowledged, seconds), 2),
            mb_per_sec: round(mb_per_sec(s.acknowledged * args.record_size as u64, seconds), 3),
            latency_ms: LatencyMs::from_histogram(&s.total),
            acks: acks_name(args.acks),
            compression: args.compression.name(),
            idempotent: args.enable_idempotence && args.acks == Acks::All,
            transactions,
        };
        (report, s.first_error.take())
    };
    eprintln!("{}", report.line());
    if args.json {
        print_json(&report)?;
    }
    if let Some(e) = send_error.or(first_error) {
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_size_and_is_letters() {
        let p = make_payload(1000);
        assert_eq!(p.len(), 1000);
        assert!(p.iter().all(u8::is_ascii_uppercase));
        assert!(p.iter().any(|&b| b != p[0]), "not one repeated letter");
        assert!(make_payload(0).is_empty());
    }

    #[test]
    fn throttling_follows_the_schedule() {
        assert_eq!(throttle_delay(1_000_000, Duration::ZERO, -1.0), None);
        assert_eq!(throttle_delay(1_000_000, Duration::ZERO, 0.0), None);
        // 100 records at 10/s are due at 10 s.
        assert_eq!(throttle_delay(100, Duration::from_secs(4), 10.0), Some(Duration::from_secs(6)));
        // Behind schedule: no pause.
        assert_eq!(throttle_delay(100, Duration::from_secs(11), 10.0), None);
        // Less than a millisecond ahead: no pause.
        assert_eq!(throttle_delay(1, Duration::from_micros(9_990), 100.0), None);
    }

    #[test]
    fn config_follows_the_flags_and_stays_valid() {
        let mut args = PerfProduceArgs {
            topic: "t".into(),
            num_records: 10,
            record_size: 2 << 20,
            acks: Acks::Leader,
            enable_idempotence: true,
            throughput: -1.0,
            batch_size: Some(64 << 20),
            linger_ms: Some(200),
            compression: Compression::Lz4,
            json: false,
            via_gateway: true,
            transactional_id: None,
            transaction_duration_ms: 100,
            key_space: None,
            server: ServerArgs { server: "h:1".into() },
        };
        let c = producer_config(&args);
        assert_eq!((c.acks, c.compression, c.batch_size), (Acks::Leader, Compression::Lz4, 64 << 20));
        assert_eq!(c.linger, Duration::from_millis(200));
        assert!(c.via_gateway);
        c.validate().unwrap();
        args.batch_size = None;
        args.linger_ms = None;
        args.record_size = 100;
        let c = producer_config(&args);
        assert_eq!(c.batch_size, ProducerConfig::default().batch_size);
        c.validate().unwrap();
    }

    #[test]
    fn report_lines_and_json() {
        let latency = LatencyMs { avg: 2.0, p50: 1.5, p95: 3.0, p99: 4.0, p999: 5.0, max: 6.0 };
        assert_eq!(
            progress_line(5000, 1024 * 1024, 5.0, &latency),
            "5000 records sent, 1000.0 records/sec (1000.00 MB/sec), 2.0 ms avg latency, 1.5 ms p50 latency, 6.0 ms max latency."
        );
        let report = ProduceReport {
            records: 10,
            failed: 1,
            record_size: 100,
            elapsed_ms: 1000.0,
            records_per_sec: 10.0,
            mb_per_sec: 0.001,
            latency_ms: latency,
            acks: "all",
            compression: "none",
            idempotent: true,
            transactions: 0,
        };
        assert!(report.line().starts_with("10 records sent, 10.0 records/sec (0.00 MB/sec), 2.00 ms avg latency"));
        assert!(report.line().ends_with(", 1 failed."));
        let v = serde_json::to_value(&report).unwrap();
        for key in ["records", "records_per_sec", "mb_per_sec"] {
            assert!(v[key].is_number(), "{key}");
        }
        for key in ["p50", "p99", "p999", "max"] {
            assert!(v["latency_ms"][key].is_number(), "{key}");
        }
    }
}
