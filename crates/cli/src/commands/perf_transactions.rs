//! `vltava perf transactions`: the transaction coordinator's speed.
//!
//! Creates a topic of `--partitions-per-transaction` partitions (one replica per broker up to
//! 3), then runs `--transactions` transactions one after another with one transactional
//! producer: each sends one `--record-size` record to every partition and commits. Reports
//! commits per second and the latency of a whole transaction (begin, sends, commit: the
//! AddPartitionsToTxn calls, the acknowledged records, the durable decision and the markers on
//! every partition), then deletes the topic.
//!
//! With `--json` the last line on stdout is one JSON object with the figures.

use std::time::Instant;

use clap::Args;
use serde::Serialize;
use vltava_client::{Admin, NewTopic, Producer, ProducerConfig, ProducerRecord};

use crate::commands::ServerArgs;
use crate::commands::perf_produce::make_payload;
use crate::commands::perf_stats::{LatencyMs, new_histogram, record_latency};
use crate::output::{per_sec, print_json, round};

/// Arguments of `vltava perf transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PerfTransactionsArgs {
    /// Number of transactions.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub transactions: u64,
    /// Partitions each transaction writes one record to.
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=1_000))]
    pub partitions_per_transaction: i32,
    /// Value size of each record.
    #[arg(long, value_name = "B", default_value_t = 100)]
    pub record_size: usize,
    /// Also print the summary as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// What `perf transactions --json` prints.
#[derive(Debug, Serialize)]
struct TransactionsSummary {
    transactions: u64,
    partitions_per_transaction: i32,
    commits_per_sec: f64,
    latency_ms: LatencyMs,
}

/// Runs `vltava perf transactions`.
pub async fn run(args: PerfTransactionsArgs) -> anyhow::Result<()> {
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let topic = format!("perf-transactions-{suffix}");
    let admin = Admin::connect(&args.server.server).await?;
    let brokers = admin.describe_cluster().await?.brokers.len().clamp(1, 3) as i32;
    admin.create_topic(NewTopic::new(&topic, args.partitions_per_transaction).replication_factor(brokers)).await?;
    let result = measure(&args, &topic, &suffix).await;
    if let Err(e) = admin.delete_topic(&topic).await {
        eprintln!("could not delete {topic}: {e}");
    }
    let summary = result?;
    eprintln!(
        "{} transactions of {} partitions, {:.1} commits/sec, {}.",
        summary.transactions,
        summary.partitions_per_transaction,
        summary.commits_per_sec,
        summary.latency_ms.describe()
    );
    if args.json {
        print_json(&summary)?;
    }
    Ok(())
}

async fn measure(args: &PerfTransactionsArgs, topic: &str, suffix: &str) -> anyhow::Result<TransactionsSummary> {
    let producer = Producer::connect(ProducerConfig {
        transactional_id: Some(format!("perf-transactions-{suffix}")),
        linger: std::time::Duration::ZERO,
        ..ProducerConfig::new(args.server.server.clone())
    })
    .await?;
    producer.init_transactions().await?;
    let payload = make_payload(args.record_size);
    let mut latencies = new_histogram();
    let start = Instant::now();
    for _ in 0..args.transactions {
        let began = Instant::now();
        producer.begin_transaction()?;
        for p in 0..args.partitions_per_transaction {
            let record = ProducerRecord::new(topic, payload.clone()).partition(p);
            let _delivery = producer.send(record).await?;
        }
        producer.commit_transaction().await?;
        record_latency(&mut latencies, began.elapsed());
    }
    let seconds = start.elapsed().as_secs_f64();
    producer.close().await;
    Ok(TransactionsSummary {
        transactions: args.transactions,
        partitions_per_transaction: args.partitions_per_transaction,
        commits_per_sec: round(per_sec(args.transactions, seconds), 2),
        latency_ms: LatencyMs::from_histogram(&latencies),
    })
}
