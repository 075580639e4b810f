//! A whole local cluster for failure tests: `vltava local-cluster` on free ports, read back from
//! its `cluster.json`, with kill -9 and restart of single processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;

use crate::{START_TIMEOUT, TestkitError};

/// One process of the cluster, as `cluster.json` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterProcess {
    /// "controller", "broker" or "gateway".
    pub role: String,
    /// Node id (0 for the gateway).
    pub id: u64,
    /// Address it serves on.
    pub address: String,
    /// Address of its Prometheus endpoint (`GET /metrics`); empty when it has none.
    #[serde(default)]
    pub metrics_address: String,
    /// A broker's Kafka protocol listener; empty for the other roles.
    #[serde(default)]
    pub kafka_address: String,
    /// Process id as started by local-cluster.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
    /// The command that starts it again.
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ClusterFile {
    cluster_id: String,
    client_address: String,
    controllers: String,
    #[serde(default)]
    kafka_bootstrap: String,
    processes: Vec<ClusterProcess>,
}

/// A running `vltava local-cluster`. Dropping it kills every process it knows of.
pub struct LocalCluster {
    launcher: Option<Child>,
    file: ClusterFile,
    /// Current pid of each process (changes when restarted here).
    pids: Vec<(String, u64, u32)>,
    restarted: Vec<Child>,
    data_dir: PathBuf,
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2).is_none_or(|state| state != "Z"))
            .unwrap_or(false)
}

fn kill_pid(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(signal).arg(pid.to_string()).status();
}

impl LocalCluster {
    /// Starts `bin local-cluster --data-dir DIR --base-port 0` with `extra_args`, waiting until it serves.
    pub fn start(bin: &Path, data_dir: &Path, extra_args: &[&str]) -> Result<Self, TestkitError> {
        Self::start_with_env(bin, data_dir, extra_args, &[])
    }

    /// Like [`LocalCluster::start`], with extra environment variables for local-cluster and
    /// every process it starts.
    ///
    /// `--base-port 0` picks free ports before the processes bind them, so another program may take
    /// one in between; a start that failed on a port already in use is retried (three attempts in
    /// all) on an emptied `data_dir`.
    pub fn start_with_env(
        bin: &Path,
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, TestkitError> {
        let mut attempt = 1;
        loop {
            match Self::start_once(bin, data_dir, extra_args, env) {
                Err(TestkitError::NotStarted { output, .. })
                    if attempt < 3 && output.contains("Address already in use") =>
                {
                    eprintln!("local-cluster lost a port race (attempt {attempt}); starting again:\n{output}");
                    for entry in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
                        let path = entry.path();
                        let _ =
                            if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once(
        bin: &Path,
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, TestkitError> {
        let mut child = Command::new(bin)
            .arg("local-cluster")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--base-port")
            .arg("0")
            .args(extra_args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| TestkitError::Spawn { bin: bin.display().to_string(), source })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // The launcher's own line (written after cluster.json), not a child's.
                if line.contains("local-cluster: serving on ") {
                    let _ = tx.send(Ok(()));
                }
                all.push(line);
                if all.len() > 200 {
                    all.remove(0);
                }
            }
            let _ = tx.send(Err(all.join("\n")));
        });
        let timeout = START_TIMEOUT * 2;
        match rx.recv_timeout(timeout) {
            Ok(Ok(())) => {}
            Ok(Err(output)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::NotStarted { timeout, output });
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::NotStarted { timeout, output: "local-cluster stayed silent".into() });
            }
        }
        // Bounded wait: the file is written before the line, but give a slow disk a moment.
        let path = data_dir.join("cluster.json");
        let mut json = std::fs::read_to_string(&path);
        for _ in 0..100 {
            if json.as_ref().is_ok_and(|j| !j.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            json = std::fs::read_to_string(&path);
        }
        let json = json.map_err(|e| TestkitError::NotStarted { timeout, output: format!("no cluster.json: {e}") })?;
        let file: ClusterFile = serde_json::from_str(&json)
            .map_err(|e| TestkitError::NotStarted { timeout, output: format!("bad cluster.json: {e}") })?;
        let pids = file.processes.iter().map(|p| (p.role.clone(), p.id, p.pid)).collect();
        Ok(Self { launcher: Some(child), file, pids, restarted: Vec::new(), data_dir: data_dir.to_path_buf() })
    }

    /// Where clients connect (the gateway).
    pub fn client_address(&self) -> &str {
        &self.file.client_address
    }

    /// The brokers' Kafka protocol listeners, comma-separated (Kafka clients' `bootstrap.servers`).
    pub fn kafka_bootstrap(&self) -> &str {
        &self.file.kafka_bootstrap
    }

    /// Controller addresses, comma-separated.
    pub fn controllers(&self) -> &str {
        &self.file.controllers
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.file.cluster_id
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Every process.
    pub fn processes(&self) -> &[ClusterProcess] {
        &self.file.processes
    }

    /// The process with this role and id.
    pub fn process(&self, role: &str, id: u64) -> &ClusterProcess {
        self.file.processes.iter().find(|p| p.role == role && p.id == id).expect("no such process in cluster.json")
    }

    fn pid(&self, role: &str, id: u64) -> u32 {
        self.pids.iter().find(|(r, i, _)| r == role && *i == id).map(|(_, _, p)| *p).expect("no such process")
    }

    /// Whether the process is running.
    pub fn is_alive(&self, role: &str, id: u64) -> bool {
        pid_alive(self.pid(role, id))
    }

    /// Kills one process with SIGKILL and waits until it is gone.
    pub fn kill9(&mut self, role: &str, id: u64) {
        let pid = self.pid(role, id);
        kill_pid(pid, "-KILL");
        for child in &mut self.restarted {
            if child.id() == pid {
                let _ = child.wait();
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pid_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes one process with SIGSTOP (it keeps its sockets but answers nothing), as a stalled
    /// or partitioned broker would.
    pub fn pause(&self, role: &str, id: u64) {
        kill_pid(self.pid(role, id), "-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self, role: &str, id: u64) {
        kill_pid(self.pid(role, id), "-CONT");
    }

    /// Starts a killed process again with the exact command from cluster.json.
    pub fn restart(&mut self, role: &str, id: u64) -> Result<(), TestkitError> {
        let p = self.process(role, id).clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p.log)
            .map_err(|source| TestkitError::Spawn { bin: p.command[0].clone(), source })?;
        let err = log.try_clone().map_err(|source| TestkitError::Spawn { bin: p.command[0].clone(), source })?;
        let child = Command::new(&p.command[0])
            .args(&p.command[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|source| TestkitError::Spawn { bin: p.command[0].clone(), source })?;
        let pid = child.id();
        self.restarted.push(child);
        for entry in &mut self.pids {
            if entry.0 == role && entry.1 == id {
                entry.2 = pid;
            }
        }
        Ok(())
    }

    /// The last lines of one process's log, for failure messages.
    pub fn log_tail(&self, role: &str, id: u64) -> String {
        let text = std::fs::read_to_string(&self.process(role, id).log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some(mut launcher) = self.launcher.take() {
            let _ = launcher.kill();
            let _ = launcher.wait();
        }
        for (_, _, pid) in &self.pids {
            kill_pid(*pid, "-KILL");
        }
        for child in &mut self.restarted {
            let _ = child.wait();
        }
    }
}

/// `GET /metrics` of a process's Prometheus endpoint over a plain TCP connection, within 10 s:
/// the response head and body, or `None` when the process does not answer.
pub async fn scrape_metrics(address: &str) -> Option<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nAccept: text/plain\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.ok()?;
        Some(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), io).await.ok()??;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// The sum of every sample of the metric `name` (all label sets) in a Prometheus text body.
pub fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}
