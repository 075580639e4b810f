//! `vltava local-cluster`: a whole cluster on this machine as separate OS processes.
//!
//! It writes one configuration file per process under `--data-dir` (`controller-N/`, `broker-N/`,
//! `gateway/`), starts the controllers, the brokers and a gateway (the client address), waits
//! until the quorum has a leader and every broker is registered, writes `DATA_DIR/cluster.json`
//! (every process with its role, id, address, pid, log file and the exact command that starts it
//! again), prints the client address and stays in the foreground. On Ctrl-C or SIGTERM it stops
//! every process that is still running. It never restarts a process: tests kill them on purpose.
//!
//! Ports: the gateway listens on `--base-port`, controllers on the next `--controllers` ports,
//! brokers on the ports after those; each broker's Kafka protocol listener on `--kafka-base-port`
//! and the ports after it (9092, 9093... by default). `--base-port 0` picks free ports instead,
//! for both. Each process
//! serves Prometheus metrics (`GET /metrics`) on its port plus [`METRICS_PORT_OFFSET`] (free
//! ports with `--base-port 0`), listed in cluster.json as `metrics_address`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use vltava_proto::v1::DescribeClusterRequest;
use vltava_proto::v1::admin_service_client::AdminServiceClient;

/// Arguments of `vltava local-cluster`.
#[derive(Debug, Clone, Args)]
pub struct LocalClusterArgs {
    /// Directory for every process's data, configuration and log, and cluster.json.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Number of controllers (an odd number: 1, 3, 5...).
    #[arg(long, default_value_t = 3)]
    pub controllers: u32,
    /// Number of brokers.
    #[arg(long, default_value_t = 3)]
    pub brokers: u32,
    /// First port: the gateway's; controllers and brokers use the following ones. 0 picks free ports.
    #[arg(long, default_value_t = 7070)]
    pub base_port: u16,
    /// Kafka protocol port of broker 1; broker N listens on this port plus N - 1. Free ports
    /// when 0 or when `--base-port` is 0.
    #[arg(long, default_value_t = 9092)]
    pub kafka_base_port: u16,
    /// Replication factor of topics created without one (default: min(3, brokers)).
    #[arg(long)]
    pub replication_factor: Option<i32>,
    /// Broker session timeout (how long a dead broker keeps its leaderships), e.g. "1500ms".
    #[arg(long, default_value = "1500ms", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,
    /// Raft log entries between snapshots on the controllers.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_entries: u64,
}

/// One process of the cluster, as written to cluster.json.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    /// "controller", "broker" or "gateway".
    pub role: String,
    /// Node id (controllers, brokers); 0 for the gateway.
    pub id: u64,
    /// Address it serves on.
    pub address: String,
    /// Address of its Prometheus endpoint (`http://ADDRESS/metrics`).
    pub metrics_address: String,
    /// A broker's Kafka protocol listener (absent for the other roles).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kafka_address: String,
    /// OS process id.
    pub pid: u32,
    /// Its data directory (and where its config and log live).
    pub dir: PathBuf,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// The exact command that starts it again (program and arguments).
    pub command: Vec<String>,
}

/// The cluster.json document.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterFile {
    /// Cluster id.
    pub cluster_id: String,
    /// Where clients connect (the gateway).
    pub client_address: String,
    /// Controller addresses, comma-separated.
    pub controllers: String,
    /// Broker addresses, comma-separated.
    pub brokers: String,
    /// The brokers' Kafka protocol listeners, comma-separated: Kafka clients'
    /// `bootstrap.servers`.
    pub kafka_bootstrap: String,
    /// Every process.
    pub processes: Vec<ProcessInfo>,
}

/// How far above a process's port its metrics endpoint listens (with a non-zero `--base-port`).
pub const METRICS_PORT_OFFSET: u32 = 1000;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn port(base: u16, offset: u32) -> anyhow::Result<u16> {
    if base == 0 {
        return free_port();
    }
    u16::try_from(u32::from(base) + offset).context("--base-port is too high for this many processes")
}

fn spawn(
    exe: &Path,
    role: &str,
    (id, address, metrics_address): (u64, &str, &str),
    dir: &Path,
    config: &str,
) -> anyhow::Result<(Child, ProcessInfo)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join(format!("{role}.toml"));
    let config = format!("{config}\n[metrics]\nlisten = \"{metrics_address}\"\n");
    std::fs::write(&config_path, config).with_context(|| format!("writing {}", config_path.display()))?;
    let log = dir.join("process.log");
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
    let command =
        vec![exe.display().to_string(), role.to_string(), "--config".to_string(), config_path.display().to_string()];
    let child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {role} {id}"))?;
    let info = ProcessInfo {
        role: role.into(),
        id,
        address: address.into(),
        metrics_address: metrics_address.into(),
        kafka_address: String::new(),
        pid: child.id(),
        dir: dir.to_path_buf(),
        log,
        command,
    };
    Ok((child, info))
}

/// Runs the cluster until interrupted.
pub async fn run(args: LocalClusterArgs) -> anyhow::Result<()> {
    vltava_common::telemetry::init_logging(vltava_common::telemetry::LogFormat::Text, "info");
    if args.controllers == 0 || args.controllers.is_multiple_of(2) {
        bail!("--controllers must be odd (1, 3, 5...): a quorum of {} cannot outvote a split", args.controllers);
    }
    if args.brokers == 0 {
        bail!("--brokers must be at least 1");
    }
    let data_dir = std::path::absolute(&args.data_dir)?;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let exe = std::env::current_exe().context("locating the vltava binary")?;
    // Reuse the cluster id of an earlier run in the same directory.
    let id_file = data_dir.join("cluster.id");
    let cluster_id = match std::fs::read_to_string(&id_file) {
        Ok(id) => id.trim().to_string(),
        Err(_) => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            std::fs::write(&id_file, &id)?;
            id
        }
    };
    let gateway_addr = format!("127.0.0.1:{}", port(args.base_port, 0)?);
    let metrics_addr = |offset: u32| -> anyhow::Result<String> {
        Ok(format!("127.0.0.1:{}", port(args.base_port, METRICS_PORT_OFFSET + offset)?))
    };
    let gateway_metrics = metrics_addr(0)?;
    let mut controllers = Vec::new();
    for i in 1..=args.controllers {
        controllers.push((u64::from(i), format!("127.0.0.1:{}", port(args.base_port, i)?), metrics_addr(i)?));
    }
    let mut brokers = Vec::new();
    let mut kafka = Vec::new();
    for i in 1..=args.brokers {
        let offset = args.controllers + i;
        brokers.push((u64::from(i), format!("127.0.0.1:{}", port(args.base_port, offset)?), metrics_addr(offset)?));
        let kafka_base = if args.base_port == 0 { 0 } else { args.kafka_base_port };
        kafka.push(format!("127.0.0.1:{}", port(kafka_base, i - 1)?));
    }
    let voters = controllers.iter().map(|(id, a, _)| format!("{id}@{a}")).collect::<Vec<_>>().join(",");
    let controller_list = controllers.iter().map(|(_, a, _)| a.clone()).collect::<Vec<_>>().join(",");
    let broker_list = brokers.iter().map(|(_, a, _)| a.clone()).collect::<Vec<_>>().join(",");
    let rf = args.replication_factor.unwrap_or(args.brokers.min(3) as i32);

    let mut children: Vec<Child> = Vec::new();
    let mut infos = Vec::new();
    let result = async {
        for (id, address, metrics) in &controllers {
            let dir = data_dir.join(format!("controller-{id}"));
            let config = format!(
                "[controller]\nnode_id = {id}\ncluster_id = \"{cluster_id}\"\nlisten = \"{address}\"\n\
                 data_dir = \"{}\"\nvoters = \"{voters}\"\ndefault_replication_factor = {rf}\n\
                 broker_session_timeout = \"{}\"\nsnapshot_entries = {}\n",
                dir.join("data").display(),
                humantime::format_duration(args.session_timeout),
                args.snapshot_entries,
            );
            let (child, info) = spawn(&exe, "controller", (*id, address, metrics), &dir, &config)?;
            children.push(child);
            infos.push(info);
        }
        for ((id, address, metrics), kafka_address) in brokers.iter().zip(&kafka) {
            let dir = data_dir.join(format!("broker-{id}"));
            let config = format!(
                "[broker]\nbroker_id = {id}\ncluster_id = \"{cluster_id}\"\nlisten = \"{address}\"\n\
                 kafka_listen = \"{kafka_address}\"\n\
                 data_dir = \"{}\"\ncontrollers = \"{controller_list}\"\ndefault_replication_factor = {rf}\n",
                dir.join("data").display(),
            );
            let (child, mut info) = spawn(&exe, "broker", (*id, address, metrics), &dir, &config)?;
            info.kafka_address = kafka_address.clone();
            children.push(child);
            infos.push(info);
        }
        let dir = data_dir.join("gateway");
        let bootstrap = brokers.iter().map(|(_, a, _)| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
        let controllers_toml = controllers.iter().map(|(_, a, _)| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
        let config = format!(
            "[gateway]\nlisten = \"{gateway_addr}\"\nbootstrap = [{bootstrap}]\ncontrollers = [{controllers_toml}]\n"
        );
        let (child, info) = spawn(&exe, "gateway", (0, &gateway_addr, &gateway_metrics), &dir, &config)?;
        children.push(child);
        infos.push(info);

        wait_until_ready(&gateway_addr, args.brokers as usize, &mut children, &infos).await?;
        let file = ClusterFile {
            cluster_id: cluster_id.clone(),
            client_address: gateway_addr.clone(),
            controllers: controller_list.clone(),
            brokers: broker_list.clone(),
            kafka_bootstrap: kafka.join(","),
            processes: infos.clone(),
        };
        let json = serde_json::to_string_pretty(&file)?;
        let path = data_dir.join("cluster.json");
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "vltava local-cluster: serving on {gateway_addr} ({} controllers, {} brokers; processes in {})",
            args.controllers,
            args.brokers,
            path.display()
        );
        eprintln!("vltava local-cluster: kafka bootstrap.servers={}", kafka.join(","));
        println!("{gateway_addr}");
        crate::commands::interrupted().await;
        anyhow::Ok(())
    }
    .await;
    stop_all(&mut children).await;
    result
}

/// Waits until the gateway answers, the quorum has a leader and `brokers` brokers are registered.
async fn wait_until_ready(
    gateway: &str,
    brokers: usize,
    children: &mut [Child],
    infos: &[ProcessInfo],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::from("gateway not reachable yet");
    while Instant::now() < deadline {
        for (child, info) in children.iter_mut().zip(infos) {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&info.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
                bail!(
                    "{} {} exited during startup ({status}); see {}; its last lines:\n{}",
                    info.role,
                    info.id,
                    info.log.display(),
                    tail.join("\n")
                );
            }
        }
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{gateway}"))?.connect().await {
            match AdminServiceClient::new(channel).describe_cluster(DescribeClusterRequest {}).await {
                Ok(r) => {
                    let r = r.into_inner();
                    let live = r.brokers.iter().filter(|b| !b.fenced).count();
                    if r.leader_id != 0 && live >= brokers {
                        return Ok(());
                    }
                    last = format!("leader {}, {live}/{brokers} brokers registered", r.leader_id);
                }
                Err(s) => last = s.message().to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the cluster did not become ready within 90s: {last}")
}

/// SIGTERM to every process still running (brokers first, so they can hand over leadership while
/// the controllers are up), then SIGKILL to any that has not exited within 10 s.
async fn stop_all(children: &mut [Child]) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    // Children were started controllers first, then brokers, then the gateway: stop in reverse.
    for child in children.iter_mut().rev() {
        if let Ok(None) = child.try_wait() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
