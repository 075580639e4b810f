//! The cluster under test: 3 controllers, N brokers and a gateway, each a real `vltava` process in
//! its own network namespace ([`crate::net`]), with kill -9, restart, SIGSTOP/SIGCONT and a
//! small tmpfs data directory (for disk-full faults) on one broker.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use vltava_proto::v1::DescribeClusterRequest;
use vltava_proto::v1::admin_service_client::AdminServiceClient;

use crate::error::{ChaosError, IoContext};
use crate::net::{Network, run};

/// A process's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A Raft controller.
    Controller,
    /// A broker.
    Broker,
    /// The gateway.
    Gateway,
}

/// The gRPC port every process listens on (each has its own address).
pub const PORT: u16 = 7070;
/// The Prometheus port of every process.
pub const METRICS_PORT: u16 = 9100;

/// Timing of the cluster under test, short so that faults have effects within a run.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Controller: how long a silent broker keeps its leaderships.
    pub broker_session_timeout: Duration,
    /// Broker: how far a follower may lag before it leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// Group coordinator: how long a silent member keeps its partitions.
    pub group_session_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            broker_session_timeout: Duration::from_millis(3000),
            replica_lag_time_max: Duration::from_millis(4000),
            group_session_timeout: Duration::from_millis(6000),
        }
    }
}

/// One process of the cluster.
#[derive(Debug)]
pub struct Process {
    /// "controller-1", "broker-2", "gateway".
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Node id (0 for the gateway).
    pub id: u64,
    /// Where it serves gRPC.
    pub address: String,
    /// Its namespace.
    pub ns: String,
    /// Its log (stdout and stderr, appended across restarts).
    pub log: PathBuf,
    /// `ip netns exec NS vltava ROLE --config FILE`.
    command: Vec<String>,
    child: Option<Child>,
    paused: bool,
    /// The tmpfs its data directory is on, when it has one.
    pub tmpfs: Option<PathBuf>,
}

impl Process {
    /// Whether it is running (and not paused).
    pub fn is_up(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    fn spawn(&mut self) -> Result<(), ChaosError> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).at(&self.log)?;
        let err = out.try_clone().at(&self.log)?;
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| ChaosError::Command { command: self.command.join(" "), stderr: e.to_string() })?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    /// Exits it with SIGKILL (resuming it first if it was paused, so that it dies at once).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if self.paused {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            }
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Starts it again with the same command, data and address.
    pub fn restart(&mut self) -> Result<(), ChaosError> {
        if self.child.is_none() { self.spawn() } else { Ok(()) }
    }

    /// SIGSTOP: it keeps its sockets but answers nothing.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = kill(pid, Signal::SIGSTOP);
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = kill(pid, Signal::SIGCONT);
        }
        self.paused = false;
    }

    /// Whether the process exited by itself (it was not killed here); its exit status.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status.to_string())
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// The running cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Every process: controllers, brokers, then the gateway.
    pub procs: Vec<Process>,
    /// The brokers' addresses, comma-separated (the SDK's bootstrap).
    pub bootstrap: String,
    /// The gateway's address.
    pub gateway: String,
}

/// Host names of a cluster with `brokers` brokers, in the order [`Cluster::start`] expects hosts.
pub fn host_names(brokers: u32) -> Vec<String> {
    let mut names: Vec<String> = (1..=3).map(|i| format!("controller-{i}")).collect();
    names.extend((1..=brokers).map(|i| format!("broker-{i}")));
    names.push("gateway".into());
    names
}

impl Cluster {
    /// Writes each process's configuration under `dir`, mounts a `tmpfs_mb` tmpfs as the data
    /// directory of the last broker, starts every process in its namespace and waits until the
    /// quorum has a leader and every broker is registered.
    pub async fn start(
        net: &Network,
        bin: &Path,
        dir: &Path,
        brokers: u32,
        timing: &Timing,
        tmpfs_mb: u32,
    ) -> Result<Cluster, ChaosError> {
        let addr = |name: &str| format!("{}:{PORT}", net.host(name).expect("a host per process").ip);
        let controllers: Vec<String> = (1..=3).map(|i| addr(&format!("controller-{i}"))).collect();
        let voters =
            controllers.iter().enumerate().map(|(i, a)| format!("{}@{a}", i + 1)).collect::<Vec<_>>().join(",");
        let broker_addrs: Vec<String> = (1..=brokers).map(|i| addr(&format!("broker-{i}"))).collect();
        let mut procs = Vec::new();
        for host in &net.hosts {
            let (role, id) = match host.name.split_once('-') {
                Some(("controller", id)) => (Role::Controller, id.parse().unwrap_or(0)),
                Some(("broker", id)) => (Role::Broker, id.parse().unwrap_or(0)),
                _ => (Role::Gateway, 0),
            };
            let pdir = dir.join(&host.name);
            let data = pdir.join("data");
            std::fs::create_dir_all(&data).at(&data)?;
            let mut tmpfs = None;
            if role == Role::Broker && id == u64::from(brokers) && tmpfs_mb > 0 {
                run(
                    "mount",
                    &["-t", "tmpfs", "-o", &format!("size={tmpfs_mb}m"), "tmpfs", &data.display().to_string()],
                )?;
                tmpfs = Some(data.clone());
            }
            let address = addr(&host.name);
            let metrics = format!("{}:{METRICS_PORT}", host.ip);
            let config = match role {
                Role::Controller => format!(
                    "[controller]\nnode_id = {id}\ncluster_id = \"chaos\"\nlisten = \"{address}\"\n\
                     data_dir = \"{}\"\nvoters = \"{voters}\"\ndefault_replication_factor = 3\n\
                     broker_session_timeout = \"{}\"\n",
                    data.display(),
                    humantime::format_duration(timing.broker_session_timeout),
                ),
                Role::Broker => format!(
                    "[broker]\nbroker_id = {id}\ncluster_id = \"chaos\"\nlisten = \"{address}\"\nkafka_listen = \"off\"\n\
                     data_dir = \"{}\"\ncontrollers = \"{}\"\ndefault_replication_factor = 3\nmin_insync_replicas = 2\n\
                     [broker.replication]\nlag_time_max = \"{}\"\n\
                     [broker.groups]\nsession_timeout = \"{}\"\nheartbeat_interval = \"1s\"\ninitial_rebalance_delay = \"0s\"\n\
                     min_session_timeout = \"1s\"\n",
                    data.display(),
                    controllers.join(","),
                    humantime::format_duration(timing.replica_lag_time_max),
                    humantime::format_duration(timing.group_session_timeout),
                ),
                Role::Gateway => format!(
                    "[gateway]\nlisten = \"{address}\"\nbootstrap = [{}]\ncontrollers = [{}]\n",
                    broker_addrs.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", "),
                    controllers.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", "),
                ),
            };
            let role_name = match role {
                Role::Controller => "controller",
                Role::Broker => "broker",
                Role::Gateway => "gateway",
            };
            let config = format!("{config}[metrics]\nlisten = \"{metrics}\"\n");
            let config_path = pdir.join(format!("{role_name}.toml"));
            std::fs::write(&config_path, config).at(&config_path)?;
            let command = vec![
                "ip".to_string(),
                "netns".into(),
                "exec".into(),
                host.ns.clone(),
                bin.display().to_string(),
                role_name.into(),
                "--config".into(),
                config_path.display().to_string(),
            ];
            procs.push(Process {
                name: host.name.clone(),
                role,
                id,
                address,
                ns: host.ns.clone(),
                log: pdir.join("process.log"),
                command,
                child: None,
                paused: false,
                tmpfs,
            });
        }
        let mut cluster = Cluster { procs, bootstrap: broker_addrs.join(","), gateway: addr("gateway") };
        for p in &mut cluster.procs {
            p.spawn()?;
        }
        cluster.wait_ready(brokers as usize, Duration::from_secs(90)).await?;
        Ok(cluster)
    }

    /// The process named `name`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Process> {
        self.procs.iter_mut().find(|p| p.name == name)
    }

    /// The name of broker `id`.
    pub fn broker_name(id: i32) -> String {
        format!("broker-{id}")
    }

    /// Waits until the gateway answers with a Raft leader and `brokers` unfenced brokers.
    pub async fn wait_ready(&mut self, brokers: usize, limit: Duration) -> Result<(), ChaosError> {
        let deadline = Instant::now() + limit;
        let mut last = String::from("the gateway is not reachable yet");
        while Instant::now() < deadline {
            for p in &mut self.procs {
                if let Some(status) = p.exited() {
                    return Err(ChaosError::Cluster(format!(
                        "{} exited during startup ({status}); its log ends:\n{}",
                        p.name,
                        p.log_tail(15)
                    )));
                }
            }
            match describe(&self.gateway).await {
                Ok((leader, live)) if leader != 0 && live >= brokers => return Ok(()),
                Ok((leader, live)) => last = format!("leader {leader}, {live}/{brokers} brokers registered"),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(ChaosError::Cluster(format!("did not become ready within {limit:?}: {last}")))
    }

    /// Stops every process (SIGKILL: the history is already recorded) and unmounts the tmpfs.
    pub fn stop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            p.kill9();
        }
        for p in &mut self.procs {
            if let Some(dir) = p.tmpfs.take() {
                let _ = run("umount", &["-l", &dir.display().to_string()]);
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Raft leader and the number of unfenced brokers, as the gateway reports them.
async fn describe(gateway: &str) -> Result<(u64, usize), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{gateway}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let r = AdminServiceClient::new(channel)
        .describe_cluster(DescribeClusterRequest {})
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    Ok((r.leader_id, r.brokers.iter().filter(|b| !b.fenced).count()))
}
