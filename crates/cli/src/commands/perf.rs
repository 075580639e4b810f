//! `vltava perf produce|consume|metadata|commits|rebalance|transactions`: throughput and latency tests, like Kafka's
//! `kafka-producer-perf-test` and `kafka-consumer-perf-test`, and what they share.
//!
//! Both print a progress line to stderr about every [`super::perf_stats::REPORT_INTERVAL`], then a summary line to
//! stderr; with `--json` the last line on stdout is one JSON object with `records`,
//! `records_per_sec`, `mb_per_sec` and `latency_ms {avg, p50, p95, p99, p999, max}`. MB are MiB
//! (1,048,576 bytes), as in Kafka's tools. `perf metadata` counts topic operations instead of
//! records (see [`perf_metadata`]).

use clap::Subcommand;

use super::perf_consume::PerfConsumeArgs;
use super::perf_produce::PerfProduceArgs;
use perf_metadata::PerfMetadataArgs;

// Declared here rather than next to its siblings in `commands/mod.rs`; the file is
// `commands/perf_metadata.rs` all the same.
#[path = "perf_metadata.rs"]
pub mod perf_metadata;

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
    /// Commits N batches of offsets through a group's coordinator and reports commits and
    /// offsets per second and the commit latency.
    Commits(super::perf_groups::PerfCommitsArgs),
    /// Measures how long a group of M members on P partitions takes to give a joining member
    /// its share, and how many partitions move.
    Rebalance(super::perf_groups::PerfRebalanceArgs),
    /// Runs N transactions, each writing one record to each of P partitions, and reports
    /// commits per second and the latency of a whole transaction.
    Transactions(super::perf_transactions::PerfTransactionsArgs),
}

/// Runs a perf command.
pub async fn run(command: PerfCommand) -> anyhow::Result<()> {
    match command {
        PerfCommand::Produce(args) => super::perf_produce::run(args).await,
        PerfCommand::Consume(args) => super::perf_consume::run(args).await,
        PerfCommand::Metadata(args) => perf_metadata::run(args).await,
        PerfCommand::Commits(args) => super::perf_groups::commits(args).await,
        PerfCommand::Rebalance(args) => super::perf_groups::rebalance(args).await,
        PerfCommand::Transactions(args) => super::perf_transactions::run(args).await,
    }
}
