//! One chaos run: network, cluster, topic, workload and fault schedule; then heal, settle, read
//! everything back, check the history and write the report (`report.json`, `run.svg`,
//! `history.jsonl`) under `OUT/seed-S/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use vltava_client::{Admin, NewTopic};

use crate::checker::{self, Verdict};
use crate::cluster::{self, Cluster, Role, Timing};
use crate::error::{ChaosError, IoContext};
use crate::faults::{self, Applied, Subjects};
use crate::history::{Event, History};
use crate::net::{self, Network};
use crate::schedule::{self, FaultKind, Window};
use crate::workload::{Env, Shape, Workload};
use crate::{final_read, observer, svg};

/// What a run does.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The `vltava` binary.
    pub bin: PathBuf,
    /// Where runs write their directories.
    pub out: PathBuf,
    /// The seed of the schedule (and of the workload's choices).
    pub seed: u64,
    /// How long the workload and the faults run.
    pub duration: Duration,
    /// Brokers (3 to 5).
    pub brokers: u32,
    /// Partitions of the topic under test.
    pub partitions: i32,
    /// The kinds of fault to draw from.
    pub mix: Vec<FaultKind>,
    /// The workload.
    pub shape: Shape,
    /// Size of the tmpfs data directory of the last broker (for disk-full), in MiB.
    pub tmpfs_mb: u32,
    /// Keep the processes' data directories after a run without anomaly.
    pub keep_data: bool,
    /// Do not count a `read_committed` final read stuck below the high watermark (a hanging
    /// transaction, an open finding of docs/reliability.md) against the run; it is still reported.
    pub tolerate_hanging_transactions: bool,
}

/// A process that exited by itself during the run (a finding of its own).
#[derive(Debug, Clone, Serialize)]
pub struct Crash {
    /// When (ms since the start).
    pub t: u64,
    /// The process.
    pub process: String,
    /// Its exit status.
    pub status: String,
    /// The last lines of its log.
    pub log_tail: String,
}

/// The JSON report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The seed (`--seed` replays the schedule).
    pub seed: u64,
    /// The command that replays this run.
    pub replay: String,
    /// Workload and fault duration, ms.
    pub duration_ms: u64,
    /// Brokers.
    pub brokers: u32,
    /// The fault mix.
    pub mix: Vec<String>,
    /// The planned schedule.
    pub schedule: Vec<Window>,
    /// The faults as applied (with the processes role-based targets resolved to).
    pub faults: Vec<String>,
    /// Processes that exited by themselves.
    pub crashes: Vec<Crash>,
    /// How long the healed cluster took to settle (every replica back in sync), ms; `None` if it
    /// did not within the limit.
    pub settled_after_ms: Option<u64>,
    /// What was still out of sync when the cluster did not settle.
    pub unsettled: Option<String>,
    /// Whether stuck `read_committed` reads were tolerated (see [`RunConfig`]).
    pub tolerate_hanging_transactions: bool,
    /// Partitions the final read could not read to their end (see [`checker::FinalRead`]).
    pub incomplete: Vec<checker::Incomplete>,
    /// Whether the group had committed every partition to its end before the final read (when
    /// not, `skip` cannot be judged past the last commit, which is all it judges anyway).
    pub consumers_caught_up: bool,
    /// The checker's verdict.
    pub verdict: Verdict,
    /// Where the run's files are.
    pub dir: PathBuf,
}

impl RunReport {
    /// Whether the run found nothing: no anomaly, no crash, and the cluster settled.
    pub fn clean(&self) -> bool {
        let stuck = self.incomplete.iter().any(|i| !i.committed || !self.tolerate_hanging_transactions);
        self.verdict.ok() && self.crashes.is_empty() && self.settled_after_ms.is_some() && !stuck
    }
}

/// The topic under test.
pub const TOPIC: &str = "chaos";
/// The workload's group.
pub const GROUP: &str = "chaos-group";

/// Runs once. When `interrupt` turns true the run stops where it is and removes its cluster and
/// network.
pub async fn run(config: &RunConfig, interrupt: watch::Receiver<bool>) -> Result<RunReport, ChaosError> {
    let dir = config.out.join(format!("seed-{}", config.seed));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).at(&dir)?;
    }
    std::fs::create_dir_all(&dir).at(&dir)?;
    let names = cluster::host_names(config.brokers);
    let mut net = Network::create(net::free_run_id((config.seed % 240) as u8), &names)?;
    let timing = Timing::default();
    let mut cluster = Cluster::start(&net, &config.bin, &dir, config.brokers, &timing, config.tmpfs_mb).await?;
    let mut interrupted = interrupt.clone();
    let result = tokio::select! {
        result = drive(config, &dir, &mut cluster, &net) => result,
        _ = interrupted.wait_for(|stop| *stop) => Err(ChaosError::Interrupted),
    };
    cluster.stop();
    net.teardown();
    let report = result?;
    if report.clean() && !config.keep_data {
        for name in &names {
            let _ = std::fs::remove_dir_all(dir.join(name).join("data"));
        }
    }
    Ok(report)
}

async fn create_topic(bootstrap: &str, partitions: i32) -> Result<(), ChaosError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let admin = Admin::connect(bootstrap).await?;
            admin
                .create_topic(NewTopic::new(TOPIC, partitions).replication_factor(3).config("min.insync.replicas", "2"))
                .await
        };
        match attempt.await {
            Ok(_) => return Ok(()),
            Err(e) if e.code_name() == Some("TOPIC_ALREADY_EXISTS") => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn drive(config: &RunConfig, dir: &Path, cluster: &mut Cluster, net: &Network) -> Result<RunReport, ChaosError> {
    create_topic(&cluster.bootstrap, config.partitions).await?;
    let history = Arc::new(History::new());
    let env = Arc::new(Env {
        history: history.clone(),
        bootstrap: cluster.bootstrap.clone(),
        gateway: cluster.gateway.clone(),
        topic: TOPIC.into(),
        group: GROUP.into(),
        keys: 16,
        drain_timeout: Duration::from_secs(40),
        seed: config.seed,
    });
    let subjects = Subjects {
        topic: TOPIC.into(),
        group: GROUP.into(),
        transactional_id: "chaos-t0".into(),
        bootstrap: cluster.bootstrap.clone(),
    };
    let schedule = schedule::generate(config.seed, config.duration, &config.mix, config.brokers, config.partitions);
    let (stop_observer, observer_rx) = watch::channel(false);
    let brokers: Vec<String> =
        cluster.procs.iter().filter(|p| p.role == Role::Broker).map(|p| p.address.clone()).collect();
    let observer = tokio::spawn(observer::run(history.clone(), subjects.clone(), brokers, observer_rx));
    let workload = Workload::start(env.clone(), &config.shape);

    let start = Instant::now();
    let mut next = 0;
    let mut active: Option<(Window, Applied, String)> = None;
    let mut applied = Vec::new();
    let mut crashes = Vec::new();
    let mut crashed: Vec<String> = Vec::new();
    loop {
        let now = start.elapsed();
        if active.as_ref().is_some_and(|(w, _, _)| now >= w.start + w.length) {
            let (w, undo, description) = active.take().expect("checked");
            faults::heal(undo, cluster, net)?;
            history.push(Event::Fault { t: history.now(), description, kind: w.kind.to_string(), start: false });
            restart_crashed(cluster, &mut crashed, &history)?;
        }
        if active.is_none() && next < schedule.len() && now >= schedule[next].start {
            let w = schedule[next].clone();
            next += 1;
            let (undo, description) = faults::apply(&w, cluster, net, &subjects).await?;
            tracing::info!(seed = config.seed, fault = %description, "fault");
            history.push(Event::Fault {
                t: history.now(),
                description: description.clone(),
                kind: w.kind.to_string(),
                start: true,
            });
            applied.push(format!("{:.1}s {description}", now.as_secs_f64()));
            active = Some((w, undo, description));
        }
        for p in &mut cluster.procs {
            if let Some(status) = p.exited() {
                let crash = Crash { t: history.now(), process: p.name.clone(), status, log_tail: p.log_tail(20) };
                tracing::warn!(process = %p.name, status = %crash.status, "a process exited by itself");
                history.push(Event::Fault {
                    t: crash.t,
                    description: format!("{} exited: {}", p.name, crash.status),
                    kind: "crash".into(),
                    start: true,
                });
                crashes.push(crash);
                crashed.push(p.name.clone());
            }
        }
        if active.is_none() {
            restart_crashed(cluster, &mut crashed, &history)?;
            if now >= config.duration {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Heal everything and let the cluster settle before reading it back.
    net.heal()?;
    for p in &mut cluster.procs {
        if let Some(status) = p.exited() {
            crashes.push(Crash { t: history.now(), process: p.name.clone(), status, log_tail: p.log_tail(20) });
        }
        p.resume();
        p.restart()?;
    }
    let settle_start = Instant::now();
    let unsettled = settle(cluster, config.brokers as usize, Duration::from_secs(90)).await.err();
    let settled_after_ms = unsettled.is_none().then(|| settle_start.elapsed().as_millis() as u64);
    // The consumers catch up; transactions left open by faults time out meanwhile (10 s).
    let mut workload = workload;
    workload.stop_producers().await;
    let caught_up = crate::workload::wait_caught_up(&env, Duration::from_secs(40)).await;
    workload.stop_consumers().await;
    let _ = stop_observer.send(true);
    let _ = observer.await;
    // The history is kept even if the cluster cannot be read back.
    let events = history.events();
    write_history(dir, &events)?;
    let mut stored = final_read::read(&env, Duration::from_secs(60)).await;
    for _ in 0..2 {
        if stored.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        stored = final_read::read(&env, Duration::from_secs(60)).await;
    }
    let stored = stored?;
    let verdict = checker::check(&events, &stored);

    let report = RunReport {
        seed: config.seed,
        replay: format!(
            "vltava-chaos --seed {} --duration {} --brokers {} --faults {}",
            config.seed,
            humantime::format_duration(config.duration),
            config.brokers,
            config.mix.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",")
        ),
        duration_ms: config.duration.as_millis() as u64,
        brokers: config.brokers,
        mix: config.mix.iter().map(|k| k.to_string()).collect(),
        schedule,
        faults: applied,
        crashes,
        settled_after_ms,
        unsettled,
        consumers_caught_up: caught_up,
        incomplete: stored.incomplete.clone(),
        tolerate_hanging_transactions: config.tolerate_hanging_transactions,
        verdict,
        dir: dir.to_path_buf(),
    };
    write_files(dir, &report, &events, &stored)?;
    Ok(report)
}

fn restart_crashed(cluster: &mut Cluster, crashed: &mut Vec<String>, history: &History) -> Result<(), ChaosError> {
    for name in crashed.drain(..) {
        if let Some(p) = cluster.get_mut(&name) {
            p.restart()?;
            history.push(Event::Fault {
                t: history.now(),
                description: format!("{name} exited: restarted"),
                kind: "crash".into(),
                start: false,
            });
        }
    }
    Ok(())
}

/// Waits until every broker is registered and every partition of the topic has all its
/// replicas in sync; what was still out of sync if that did not happen within `limit`.
async fn settle(cluster: &mut Cluster, brokers: usize, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    cluster.wait_ready(brokers, limit).await.map_err(|e| e.to_string())?;
    let mut last = String::from("the topic could not be described");
    while Instant::now() < deadline {
        let lagging = async {
            let admin = Admin::connect(&cluster.bootstrap).await.ok()?;
            let topic = admin.describe_topic(TOPIC).await.ok()?;
            Some(
                topic
                    .partitions
                    .iter()
                    .filter(|p| p.leader < 0 || p.isr.len() != p.replicas.len())
                    .map(|p| {
                        format!("p{}: leader {}, replicas {:?}, isr {:?}", p.partition, p.leader, p.replicas, p.isr)
                    })
                    .collect::<Vec<_>>(),
            )
        };
        match tokio::time::timeout(Duration::from_secs(5), lagging).await.ok().flatten() {
            Some(lagging) if lagging.is_empty() => return Ok(()),
            Some(lagging) => last = lagging.join("; "),
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}

fn write_history(dir: &Path, events: &[Event]) -> Result<(), ChaosError> {
    let path = dir.join("history.jsonl");
    let mut lines = String::new();
    for e in events {
        lines.push_str(&serde_json::to_string(e)?);
        lines.push('\n');
    }
    std::fs::write(&path, lines).at(&path)
}

fn write_files(
    dir: &Path,
    report: &RunReport,
    events: &[Event],
    stored: &checker::FinalRead,
) -> Result<(), ChaosError> {
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(report)?).at(&path)?;
    let path = dir.join("final-read.json");
    std::fs::write(&path, serde_json::to_string(stored)?).at(&path)?;
    let title = format!(
        "vltava-chaos seed {} · {} · {}",
        report.seed,
        humantime::format_duration(Duration::from_millis(report.duration_ms)),
        if report.clean() { "clean" } else { "FOUND PROBLEMS" }
    );
    let path = dir.join("run.svg");
    std::fs::write(&path, svg::render(&title, events, &report.verdict)).at(&path)?;
    Ok(())
}
