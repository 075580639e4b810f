//! `vltava-chaos`: runs the fault-injection harness (see the library's documentation and
//! `docs/reliability.md`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use vltava_chaos::error::ChaosError;
use vltava_chaos::run::{RunConfig, run};
use vltava_chaos::schedule::parse_mix;
use vltava_chaos::workload::Shape;

/// Fault-injection runs against a real Vltava cluster in network namespaces (needs root).
#[derive(Debug, Parser)]
#[command(name = "vltava-chaos", version)]
struct Args {
    /// Number of runs (seeds `--seed`, `--seed + 1`, ...).
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// Seed of the first run; random when not given. Every run prints its seed.
    #[arg(long)]
    seed: Option<u64>,
    /// How long the workload and the faults run, each run.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Brokers (3 to 5).
    #[arg(long, default_value_t = 3)]
    brokers: u32,
    /// Partitions of the topic under test.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Fault kinds: `all`, or a list of kill, pause, isolate, split, bridge, one-way, lossy, disk-full.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Idempotent producers (the first goes through the gateway).
    #[arg(long, default_value_t = 3)]
    producers: u32,
    /// Records per second per producer.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Transactional producers.
    #[arg(long, default_value_t = 2)]
    transactional: u32,
    /// Group members.
    #[arg(long, default_value_t = 3)]
    consumers: u32,
    /// Size of the disk-full broker's tmpfs, MiB.
    #[arg(long, default_value_t = 256)]
    tmpfs_mb: u32,
    /// Where each run writes `seed-S/` (report.json, run.svg, history.jsonl, process logs).
    #[arg(long, default_value = "chaos-runs")]
    out: PathBuf,
    /// The `vltava` binary (default: the one beside this program).
    #[arg(long)]
    vltava: Option<PathBuf>,
    /// Keep the processes' data after clean runs too.
    #[arg(long)]
    keep_data: bool,
    /// Report, but do not count as a finding, a read_committed final read stuck below the high
    /// watermark (hanging transactions: an open finding, see docs/reliability.md).
    #[arg(long)]
    tolerate_hanging_transactions: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber_init();
    if !(3..=5).contains(&args.brokers) {
        bail!("--brokers must be 3, 4 or 5");
    }
    let mix = parse_mix(&args.faults).map_err(anyhow::Error::msg)?;
    let bin = match args.vltava {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("vltava"),
    };
    if !bin.exists() {
        bail!("{} not found: build it (cargo build -p vltava-cli) or pass --vltava", bin.display());
    }
    let first = args.seed.unwrap_or_else(|| u64::from(rand::random::<u32>()));
    // SIGINT or SIGTERM: the current run removes its processes, namespaces and mounts.
    let (interrupt, interrupted) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        let _ = interrupt.send(true);
    });
    let mut clean = 0;
    let mut found = Vec::new();
    for i in 0..args.runs {
        let seed = first + i;
        println!("run {}/{}: seed {seed}", i + 1, args.runs);
        let config = RunConfig {
            bin: std::path::absolute(&bin)?,
            out: std::path::absolute(&args.out)?,
            seed,
            duration: args.duration,
            brokers: args.brokers,
            partitions: args.partitions,
            mix: mix.clone(),
            shape: Shape {
                producers: args.producers,
                rate: args.rate,
                transactional: args.transactional,
                consumers: args.consumers,
                admin: true,
            },
            tmpfs_mb: args.tmpfs_mb,
            keep_data: args.keep_data,
            tolerate_hanging_transactions: args.tolerate_hanging_transactions,
        };
        let report = match run(&config, interrupted.clone()).await {
            Ok(report) => report,
            Err(ChaosError::Interrupted) => bail!("interrupted during the run with seed {seed}"),
            Err(e) => {
                // A run that could not be completed is a finding too; the next seeds still run.
                println!("  seed {seed}: the run failed: {e}");
                found.push(seed);
                continue;
            }
        };
        let v = &report.verdict;
        println!(
            "  seed {seed}: {} faults, {} sent, {} acknowledged, {} stored, {} read, {} commits, txns {:?}; settled: {}",
            report.faults.len(),
            v.sent,
            v.acknowledged,
            v.stored,
            v.read,
            v.commits,
            v.transactions,
            report.settled_after_ms.map_or("NO".into(), |ms| format!("{ms} ms")),
        );
        if let Some(unsettled) = &report.unsettled {
            println!("  UNSETTLED {unsettled}");
        }
        for stuck in &report.incomplete {
            let read = if stuck.committed { "read_committed" } else { "read_uncommitted" };
            println!(
                "  INCOMPLETE {read} read of p{} stopped at {}, its end is {}",
                stuck.partition, stuck.position, stuck.end
            );
        }
        if !report.consumers_caught_up {
            println!("  the group did not commit every partition to its end");
        }
        for crash in &report.crashes {
            println!("  CRASH {} at {} ms: {}", crash.process, crash.t, crash.status);
        }
        for a in &v.anomalies {
            println!("  ANOMALY {:?} p{} offset {:?}: {}", a.kind, a.partition, a.offset, a.detail);
        }
        println!("  report: {}", report.dir.join("report.json").display());
        if report.clean() {
            clean += 1;
        } else {
            found.push(seed);
        }
    }
    println!("{clean}/{} runs clean; seeds with findings: {found:?}", args.runs);
    if !found.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn tracing_subscriber_init() {
    vltava_common::telemetry::init_logging(vltava_common::telemetry::LogFormat::Text, "warn,vltava_chaos=info");
}
