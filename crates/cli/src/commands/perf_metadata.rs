//! `vltava perf metadata`: how fast topics can be created through the controller quorum.
//!
//! Creates `--topics` topics named `PREFIX-INDEX`, where the prefix is `perf-metadata-` and eight
//! random hex digits (printed to stderr), with `--concurrency` creations in flight at any time, each
//! through `Admin::create_topic` (gateway, broker, then the controller leader, which commits the
//! topic in its Raft log). Latency is measured per topic from just before the call to its answer
//! and kept in an HDR histogram (µs precision); throughput counts topics created over the time from
//! the first call to the last answer. Unless `--keep` is given, the topics are then deleted with
//! the same concurrency, and that phase is reported too.
//!
//! A progress line goes to stderr about every [`REPORT_INTERVAL`], then a summary per phase; with
//! `--json` the last line on stdout is one JSON object with `created`, `ops_per_sec`,
//! `latency_ms {avg, p50, p95, p99, p999, max}` and `delete` (the same figures for the deletion,
//! `null` with `--keep`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use vltava_client::{Admin, ClientError, NewTopic};

use crate::commands::perf_stats::{LatencyMs, REPORT_INTERVAL, new_histogram, record_latency};
use crate::commands::{ServerArgs, interrupted};
use crate::output::{per_sec, print_json, round};

/// Arguments of `vltava perf metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PerfMetadataArgs {
    /// Number of topics to create.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub topics: u64,
    /// Topic creations (and deletions) in flight at any time.
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub concurrency: u64,
    /// Partitions of each topic.
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Replicas per partition (default: the server's default).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: Option<i32>,
    /// Leave the topics in place instead of deleting them at the end.
    #[arg(long)]
    pub keep: bool,
    /// Also print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A fresh random prefix, `perf-metadata-` and eight hex digits, so that runs do not collide.
pub fn random_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("perf-metadata-{}", &id[..8])
}

/// The name of topic `index` of a run: `PREFIX-INDEX`, the index zero-padded to the width of
/// `count - 1` so that names sort in creation order.
pub fn topic_name(prefix: &str, index: u64, count: u64) -> String {
    let width = count.saturating_sub(1).max(1).to_string().len();
    format!("{prefix}-{index:0width$}")
}

/// Counters of one phase (creation or deletion), shared by its workers.
struct Phase {
    total: Histogram<u64>,
    window: Histogram<u64>,
    window_start: Instant,
    window_ops: u64,
    succeeded: u64,
    failed: u64,
    first_error: Option<ClientError>,
}

type SharedPhase = Arc<std::sync::Mutex<Phase>>;

fn lock(phase: &SharedPhase) -> std::sync::MutexGuard<'_, Phase> {
    phase.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one phase measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    /// Operations that succeeded.
    pub succeeded: u64,
    /// Operations that failed.
    pub failed: u64,
    /// From the first call to the last answer.
    pub elapsed_ms: f64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Per-operation latency, call to answer.
    pub latency_ms: LatencyMs,
}

impl PhaseReport {
    /// The summary line of a phase, e.g. `2000 topics created, 812.3 ops/sec, 19.20 ms avg latency, ...`.
    pub fn line(&self, verb: &str) -> String {
        let mut line = format!(
            "{} topics {verb}, {:.1} ops/sec, {}",
            self.succeeded,
            self.ops_per_sec,
            self.latency_ms.describe()
        );
        if self.failed > 0 {
            line.push_str(&format!(", {} failed", self.failed));
        }
        line.push('.');
        line
    }
}

/// The `--json` summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataReport {
    /// The topics' name prefix.
    pub prefix: String,
    /// Topics asked for.
    pub topics: u64,
    /// Partitions per topic.
    pub partitions: i32,
    /// Replication factor asked for (0: the server's default).
    pub replication_factor: i32,
    /// Operations in flight.
    pub concurrency: u64,
    /// Topics created.
    pub created: u64,
    /// Creations that failed.
    pub failed: u64,
    /// From the first creation call to the last answer.
    pub elapsed_ms: f64,
    /// Topics created per second.
    pub ops_per_sec: f64,
    /// Creation latency, call to answer.
    pub latency_ms: LatencyMs,
    /// The deletion phase (`None` with `--keep`).
    pub delete: Option<PhaseReport>,
}

/// The progress line for `ops` operations done in `seconds` with `latency`.
pub fn progress_line(verb: &str, ops: u64, seconds: f64, latency: &LatencyMs) -> String {
    format!(
        "{ops} topics {verb}, {:.1} ops/sec, {:.1} ms avg latency, {:.1} ms p50 latency, {:.1} ms max latency.",
        per_sec(ops, seconds),
        latency.avg,
        latency.p50,
        latency.max
    )
}

/// Runs `op(index)` for every index in `indices` with `concurrency` calls in flight, until done
/// or `stop` is set, printing a progress line every [`REPORT_INTERVAL`]. Returns the phase's
/// figures, the first error and the indices whose call succeeded.
async fn run_phase<F, Fut>(
    verb: &'static str,
    indices: Arc<Vec<u64>>,
    concurrency: u64,
    stop: Arc<AtomicBool>,
    op: F,
) -> (PhaseReport, Option<ClientError>, Vec<u64>)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), ClientError>> + Send + 'static,
{
    let start = Instant::now();
    let phase: SharedPhase = Arc::new(std::sync::Mutex::new(Phase {
        total: new_histogram(),
        window: new_histogram(),
        window_start: start,
        window_ops: 0,
        succeeded: 0,
        failed: 0,
        first_error: None,
    }));
    let reporter = {
        let phase = phase.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REPORT_INTERVAL).await;
                let line = {
                    let mut p = lock(&phase);
                    let latency = LatencyMs::from_histogram(&p.window);
                    let line = progress_line(verb, p.window_ops, p.window_start.elapsed().as_secs_f64(), &latency);
                    p.window.reset();
                    p.window_ops = 0;
                    p.window_start = Instant::now();
                    line
                };
                eprintln!("{line}");
            }
        })
    };
    let next = Arc::new(AtomicU64::new(0));
    let workers = concurrency.min(indices.len() as u64).max(1);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (indices, next, stop, phase, op) = (indices.clone(), next.clone(), stop.clone(), phase.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Some(&index) = indices.get(next.fetch_add(1, Ordering::Relaxed) as usize) else { break };
                let sent_at = Instant::now();
                let result = op(index).await;
                let latency = sent_at.elapsed();
                let mut p = lock(&phase);
                match result {
                    Ok(()) => {
                        p.succeeded += 1;
                        p.window_ops += 1;
                        record_latency(&mut p.total, latency);
                        record_latency(&mut p.window, latency);
                        done.push(index);
                    }
                    Err(e) => {
                        p.failed += 1;
                        p.first_error.get_or_insert(e);
                    }
                }
            }
            done
        }));
    }
    let mut done = Vec::new();
    for task in tasks {
        // Workers are never cancelled, so an error is a panic: pass it on.
        done.extend(task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    let elapsed = start.elapsed();
    reporter.abort();
    done.sort_unstable();
    let mut p = lock(&phase);
    let seconds = elapsed.as_secs_f64();
    let report = PhaseReport {
        succeeded: p.succeeded,
        failed: p.failed,
        elapsed_ms: round(seconds * 1000.0, 3),
        ops_per_sec: round(per_sec(p.succeeded, seconds), 2),
        latency_ms: LatencyMs::from_histogram(&p.total),
    };
    (report, p.first_error.take(), done)
}

/// Runs `vltava perf metadata`.
pub async fn run(args: PerfMetadataArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let prefix = random_prefix();
    let count = args.topics;
    let replication_factor = args.replication_factor.unwrap_or(0);
    eprintln!(
        "Creating {count} topics {prefix}-* ({} partition(s) each, replication factor {}) with {} in flight.",
        args.partitions,
        if replication_factor == 0 { "default".to_string() } else { replication_factor.to_string() },
        args.concurrency
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            interrupted().await;
            stop.store(true, Ordering::Relaxed);
        })
    };

    let create = {
        let (admin, prefix, partitions) = (admin.clone(), prefix.clone(), args.partitions);
        move |index: u64| {
            let admin = admin.clone();
            let topic = NewTopic {
                name: topic_name(&prefix, index, count),
                partitions,
                replication_factor,
                configs: Default::default(),
            };
            async move { admin.create_topic(topic).await.map(|_| ()) }
        }
    };
    let all: Arc<Vec<u64>> = Arc::new((0..count).collect());
    let (created, create_error, created_indices) =
        run_phase("created", all, args.concurrency, stop.clone(), create).await;
    eprintln!("{}", created.line("created"));

    let mut delete_error = None;
    let delete = if args.keep || created_indices.is_empty() {
        None
    } else {
        // Deleting is cleanup: do it even after Ctrl-C during creation (a second one stops it).
        stop.store(false, Ordering::Relaxed);
        let remove = {
            let (admin, prefix) = (admin.clone(), prefix.clone());
            move |index: u64| {
                let admin = admin.clone();
                let name = topic_name(&prefix, index, count);
                async move { admin.delete_topic(&name).await }
            }
        };
        let (deleted, error, _) =
            run_phase("deleted", Arc::new(created_indices), args.concurrency, stop.clone(), remove).await;
        eprintln!("{}", deleted.line("deleted"));
        delete_error = error;
        Some(deleted)
    };
    watcher.abort();

    let report = MetadataReport {
        prefix,
        topics: count,
        partitions: args.partitions,
        replication_factor,
        concurrency: args.concurrency,
        created: created.succeeded,
        failed: created.failed,
        elapsed_ms: created.elapsed_ms,
        ops_per_sec: created.ops_per_sec,
        latency_ms: created.latency_ms,
        delete,
    };
    if args.json {
        print_json(&report)?;
    }
    if let Some(e) = create_error.or(delete_error) {
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vltava_common::{ErrorCode, WireError};

    use super::*;

    #[test]
    fn names_are_valid_unique_and_sorted() {
        let prefix = random_prefix();
        assert!(prefix.starts_with("perf-metadata-") && prefix.len() == "perf-metadata-".len() + 8, "{prefix}");
        assert_ne!(prefix, random_prefix());
        assert_eq!(topic_name("p", 7, 2000), "p-0007");
        assert_eq!(topic_name("p", 0, 1), "p-0");
        assert_eq!(topic_name("p", 9, 10), "p-9");
        assert_eq!(topic_name("p", 10, 11), "p-10");
        let names: Vec<String> = (0..1000).map(|i| topic_name(&prefix, i, 1000)).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        for name in &names {
            vltava_common::names::validate_topic_name(name).unwrap();
        }
    }

    #[tokio::test]
    async fn a_phase_runs_every_index_once_within_the_concurrency() {
        let in_flight = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        let op = {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            move |index: u64| {
                let (in_flight, peak) = (in_flight.clone(), peak.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    if index % 10 == 3 {
                        Err(ClientError::Server(WireError::new(ErrorCode::TopicAlreadyExists, "taken")))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (report, error, done) = run_phase("created", Arc::new((0..100).collect()), 4, stop, op).await;
        assert_eq!((report.succeeded, report.failed), (90, 10));
        assert_eq!(done, (0..100).filter(|i| i % 10 != 3).collect::<Vec<_>>());
        assert!(error.unwrap().to_string().contains("taken"));
        assert!(peak.load(Ordering::SeqCst) <= 4 && peak.load(Ordering::SeqCst) >= 2);
        assert!(report.ops_per_sec > 0.0 && report.latency_ms.p50 >= 1.0, "{report:?}");

        // A stopped phase starts nothing.
        let stop = Arc::new(AtomicBool::new(true));
        let (report, error, done) =
            run_phase("deleted", Arc::new((0..10).collect()), 2, stop, |_| async { Ok(()) }).await;
        assert_eq!((report.succeeded, report.failed, done.len()), (0, 0, 0));
        assert!(error.is_none());
    }

    #[test]
    fn report_lines_and_json() {
        let latency = LatencyMs { avg: 2.0, p50: 1.5, p95: 3.0, p99: 4.0, p999: 5.0, max: 6.0 };
        assert_eq!(
            progress_line("created", 500, 5.0, &latency),
            "500 topics created, 100.0 ops/sec, 2.0 ms avg latency, 1.5 ms p50 latency, 6.0 ms max latency."
        );
        let phase =
            PhaseReport { succeeded: 10, failed: 1, elapsed_ms: 1000.0, ops_per_sec: 10.0, latency_ms: latency };
        assert!(phase.line("created").starts_with("10 topics created, 10.0 ops/sec, 2.00 ms avg latency"));
        assert!(phase.line("created").ends_with(", 1 failed."));
        let report = MetadataReport {
            prefix: "perf-metadata-0123abcd".into(),
            topics: 11,
            partitions: 1,
            replication_factor: 3,
            concurrency: 4,
            created: 10,
            failed: 1,
            elapsed_ms: 1000.0,
            ops_per_sec: 10.0,
            latency_ms: latency,
            delete: None,
        };
        let v = serde_json::to_value(&report).unwrap();
        for key in ["created", "failed", "ops_per_sec", "elapsed_ms", "concurrency"] {
            assert!(v[key].is_number(), "{key}");
        }
        for key in ["p50", "p99", "max"] {
            assert!(v["latency_ms"][key].is_number(), "{key}");
        }
        assert!(v["delete"].is_null());
        let v = serde_json::to_value(MetadataReport { delete: Some(phase), ..report }).unwrap();
        assert!(v["delete"]["ops_per_sec"].is_number() && v["delete"]["latency_ms"]["p99"].is_number());
    }
}
