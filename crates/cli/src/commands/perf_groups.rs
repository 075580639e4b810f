//! `vltava perf commits` and `vltava perf rebalance`: the group coordinator's speed.
//!
//! - `commits`: `--concurrency` tasks commit offsets of a group with no members as fast as they
//!   can (or at `--rate` commits per second in all), each commit carrying `--batch` partitions'
//!   offsets, through the group's coordinator, which appends each commit to `__consumer_offsets`
//!   with `acks=all`. Reports commits and offsets per second and the commit latency.
//! - `rebalance`: `--members` SDK consumers subscribe to a `--partitions`-partition topic and
//!   settle; then one more member joins. Reports the time from its `subscribe` until every
//!   partition is owned again with every member holding at least its fair share
//!   (`partitions / members`), and how many partitions the old members gave up (with
//!   incremental rebalancing, only those that move). The coordinator's
//!   heartbeat interval (`[broker.groups] heartbeat_interval`) bounds how fast it can go.
//!
//! With `--json` the last line on stdout is one JSON object with the figures.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use vltava_client::{Admin, Consumer, ConsumerConfig, NewTopic, RebalanceListener, TopicPartition};

use crate::commands::ServerArgs;
use crate::commands::perf_stats::{LatencyMs, new_histogram, record_latency};
use crate::output::{per_sec, print_json, round};

/// Arguments of `vltava perf commits`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PerfCommitsArgs {
    /// Number of commits.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub commits: u64,
    /// Partitions whose offsets each commit carries.
    #[arg(long, value_name = "B", default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub batch: i32,
    /// Commits in flight at any time.
    #[arg(long, value_name = "C", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub concurrency: u64,
    /// Commits per second in all (default: as fast as possible).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Also print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `vltava perf rebalance`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PerfRebalanceArgs {
    /// Members in the group before one more joins.
    #[arg(long, value_name = "M", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub members: u64,
    /// Partitions of the topic.
    #[arg(long, value_name = "P", default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Also print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A random suffix, so that runs do not collide.
fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// What `perf commits --json` prints.
#[derive(Debug, Serialize)]
struct CommitsSummary {
    commits: u64,
    offsets_per_commit: i32,
    commits_per_sec: f64,
    offsets_per_sec: f64,
    latency_ms: LatencyMs,
}

/// Runs `vltava perf commits`.
pub async fn commits(args: PerfCommitsArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let run = suffix();
    let topic = format!("perf-commits-{run}");
    admin.create_topic(NewTopic::new(&topic, args.batch)).await?;
    eprintln!("committing to group perf-commits-{run}, {} offsets of topic {topic} per commit", args.batch);
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let histogram = Arc::new(std::sync::Mutex::new(new_histogram()));
    let pace = args.rate.map(|r| Duration::from_secs_f64(args.concurrency as f64 / r as f64));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (admin, next, failed, histogram, topic) =
            (admin.clone(), next.clone(), failed.clone(), histogram.clone(), topic.clone());
        let (group, total, batch) = (format!("perf-commits-{run}"), args.commits, args.batch);
        tasks.push(tokio::spawn(async move {
            let mut tick = pace.map(tokio::time::interval);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total || failed.load(Ordering::Relaxed) {
                    return Ok::<(), anyhow::Error>(());
                }
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let offsets: HashMap<TopicPartition, i64> =
                    (0..batch).map(|p| (TopicPartition::new(topic.clone(), p), 0)).collect();
                let t0 = Instant::now();
                if let Err(e) = admin.commit_group_offsets(&group, &offsets).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e.into());
                }
                record_latency(&mut histogram.lock().unwrap_or_else(|p| p.into_inner()), t0.elapsed());
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let latency = LatencyMs::from_histogram(&histogram.lock().unwrap_or_else(|p| p.into_inner()));
    let summary = CommitsSummary {
        commits: args.commits,
        offsets_per_commit: args.batch,
        commits_per_sec: round(per_sec(args.commits, secs), 1),
        offsets_per_sec: round(per_sec(args.commits * args.batch as u64, secs), 1),
        latency_ms: latency,
    };
    eprintln!(
        "{} commits ({} offsets each): {:.1} commits/sec, {:.1} offsets/sec, {}",
        summary.commits,
        summary.offsets_per_commit,
        summary.commits_per_sec,
        summary.offsets_per_sec,
        latency.describe()
    );
    let _ = admin.delete_topic(&topic).await;
    if args.json { print_json(&summary) } else { Ok(()) }
}

/// Counts the partitions a member gave up.
struct CountRevoked(Arc<AtomicU64>);

impl RebalanceListener for CountRevoked {
    fn on_partitions_assigned(&mut self, _: &[TopicPartition]) {}
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        self.0.fetch_add(partitions.len() as u64, Ordering::Relaxed);
    }
}

/// What `perf rebalance --json` prints.
#[derive(Debug, Serialize)]
struct RebalanceSummary {
    members: u64,
    partitions: i32,
    rebalance_ms: f64,
    partitions_moved: u64,
    newcomer_partitions: usize,
}

type Owned = Arc<std::sync::Mutex<BTreeMap<usize, Vec<TopicPartition>>>>;

/// Polls `consumer` until `stop`, publishing its assignment into `owned[index]`.
fn spawn_member(
    mut consumer: Consumer,
    index: usize,
    owned: Owned,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = consumer.poll(Duration::from_millis(20)).await {
                tracing::warn!(error = %e, "member poll failed");
            }
            owned.lock().unwrap_or_else(|p| p.into_inner()).insert(index, consumer.assignment());
        }
        let _ = consumer.close().await;
    })
}

/// Whether `members` members own every partition, none twice, each at least its fair share
/// (`partitions / members`, as the uniform assignor gives).
fn all_owned(owned: &Owned, members: usize, partitions: i32) -> bool {
    let owned = owned.lock().unwrap_or_else(|p| p.into_inner());
    let count: usize = owned.values().map(Vec::len).sum();
    let share = (partitions as usize / members).max(1);
    owned.len() == members && owned.values().all(|v| v.len() >= share) && count == partitions as usize
}

/// Runs `vltava perf rebalance`.
pub async fn rebalance(args: PerfRebalanceArgs) -> anyhow::Result<()> {
    let admin = Admin::connect(&args.server.server).await?;
    let run = suffix();
    let (topic, group) = (format!("perf-rebalance-{run}"), format!("perf-rebalance-{run}"));
    admin.create_topic(NewTopic::new(&topic, args.partitions)).await?;
    let config = ConsumerConfig { group_id: Some(group.clone()), ..ConsumerConfig::new(&args.server.server) };
    let owned: Owned = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let members = args.members as usize;
    let mut tasks = Vec::new();
    for i in 0..members {
        let mut consumer = Consumer::connect(config.clone()).await?;
        consumer.set_rebalance_listener(CountRevoked(moved.clone()));
        consumer.subscribe([topic.clone()])?;
        tasks.push(spawn_member(consumer, i, owned.clone(), stop.clone()));
    }
    let settle = Instant::now();
    while !all_owned(&owned, members, args.partitions) {
        anyhow::ensure!(settle.elapsed() < Duration::from_secs(120), "the group did not settle in 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("{members} members own {} partitions after {:?}", args.partitions, settle.elapsed());
    moved.store(0, Ordering::Relaxed);
    let mut newcomer = Consumer::connect(config).await?;
    newcomer.subscribe([topic.clone()])?;
    let joined = Instant::now();
    tasks.push(spawn_member(newcomer, members, owned.clone(), stop.clone()));
    while !all_owned(&owned, members + 1, args.partitions) {
        anyhow::ensure!(joined.elapsed() < Duration::from_secs(120), "the rebalance did not finish in 120 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = joined.elapsed();
    let summary = RebalanceSummary {
        members: args.members,
        partitions: args.partitions,
        rebalance_ms: round(elapsed.as_secs_f64() * 1000.0, 1),
        partitions_moved: moved.load(Ordering::Relaxed),
        newcomer_partitions: owned.lock().unwrap_or_else(|p| p.into_inner()).get(&members).map_or(0, Vec::len),
    };
    eprintln!(
        "a member joining {} members on {} partitions: every partition owned again after {:.1} ms; {} partitions moved (the newcomer owns {})",
        summary.members,
        summary.partitions,
        summary.rebalance_ms,
        summary.partitions_moved,
        summary.newcomer_partitions
    );
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let _ = admin.delete_topic(&topic).await;
    if args.json { print_json(&summary) } else { Ok(()) }
}
