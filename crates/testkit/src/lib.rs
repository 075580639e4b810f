//! Helpers for tests that run real Vltava processes.
//!
//! # Layout
//! - [`ServerProcess`]: a `vltava dev` (or `vltava gateway`) child process bound to `127.0.0.1:0`, whose address is
//!   read from its startup line; it can be killed with SIGKILL and restarted on the same address
//!   and data directory. Dropping it kills the process, so a failing test leaves nothing behind.
//! - [`inprocess`]: a broker and a gateway as tasks of the test's runtime on `127.0.0.1:0`, with
//!   in-memory metadata ([`inprocess::TestBroker`], [`inprocess::Cluster`]).
//! - [`proxy::LossyProxy`]: a TCP proxy that can lose a server's answers (not its requests).
//! - [`cluster::LocalCluster`]: a `vltava local-cluster` run (controllers, brokers and a gateway as
//!   separate processes), with kill -9 and restart of any one of them by role and id.

pub mod cluster;
pub mod inprocess;
pub mod proxy;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a server may take to start.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a test process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// Spawning failed.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// Binary.
        bin: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A command run with [`run_bounded`] did not finish in time (it was killed).
    #[error("{what} did not finish within {limit:?}")]
    TimedOut {
        /// The command.
        what: String,
        /// How long it had.
        limit: Duration,
    },
    /// The process exited or stayed silent before announcing its address.
    #[error("server did not start within {timeout:?}; its output:\n{output}")]
    NotStarted {
        /// How long we waited.
        timeout: Duration,
        /// What it printed.
        output: String,
    },
}

/// A running `vltava` server process (`dev` or `gateway`).
pub struct ServerProcess {
    bin: PathBuf,
    data_dir: PathBuf,
    subcommand: &'static str,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    child: Option<Child>,
    addr: SocketAddr,
    /// The embedded gateway of a `dev` process (`--gateway-listen`), when it runs one.
    gateway_addr: Option<SocketAddr>,
    /// The Kafka protocol listener of a `dev` process (`--kafka-listen`), when it runs one.
    kafka_addr: Option<SocketAddr>,
    output: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `bin dev` on a free loopback port with `data_dir`, waiting until it serves.
    pub fn start_dev(bin: &Path, data_dir: &Path, extra_args: &[&str]) -> Result<Self, TestkitError> {
        Self::start(bin, "dev", data_dir, extra_args, &[])
    }

    /// Like [`ServerProcess::start_dev`] with extra environment variables (e.g. `VLTAVA_*` overrides).
    pub fn start_dev_with_env(bin: &Path, data_dir: &Path, envs: &[(&str, &str)]) -> Result<Self, TestkitError> {
        Self::start(bin, "dev", data_dir, &[], envs)
    }

    /// Starts `bin gateway --bootstrap BROKER` on a free loopback port.
    pub fn start_gateway(bin: &Path, broker: &str) -> Result<Self, TestkitError> {
        Self::start(bin, "gateway", Path::new(""), &["--bootstrap", broker], &[])
    }

    fn start(
        bin: &Path,
        subcommand: &'static str,
        data_dir: &Path,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Self, TestkitError> {
        let mut s = Self {
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            subcommand,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            envs: envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            child: None,
            addr: "127.0.0.1:0".parse().expect("literal address"),
            gateway_addr: None,
            kafka_addr: None,
            output: Arc::default(),
        };
        s.spawn()?;
        Ok(s)
    }

    /// The address the server serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` for clients.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// `host:port` of the gateway a `dev` process embeds (on a free port unless the extra
    /// arguments give `--gateway-listen`); `None` for a gateway process or `--gateway-listen off`.
    pub fn gateway(&self) -> Option<String> {
        self.gateway_addr.map(|a| a.to_string())
    }

    /// `host:port` of the Kafka protocol listener a `dev` process runs (on a free port unless
    /// the extra arguments give `--kafka-listen`); `None` for a gateway or `--kafka-listen off`.
    pub fn kafka(&self) -> Option<String> {
        self.kafka_addr.map(|a| a.to_string())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything the process wrote to stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.join("\n")).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no clean shutdown) and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to stop (SIGTERM) and waits up to `timeout`, then kills it.
    pub fn stop(&mut self, timeout: Duration) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = std::time::Instant::now() + timeout;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same address and data directory.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill9();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), TestkitError> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(self.subcommand).arg("--listen").arg(self.addr.to_string());
        // A dev process also announces its embedded gateway, unless told not to run one.
        let mut announcements = 1;
        if self.subcommand == "dev" {
            cmd.arg("--data-dir").arg(&self.data_dir);
            match self.extra_args.iter().position(|a| a == "--gateway-listen") {
                None => {
                    let gateway = self.gateway_addr.map_or("127.0.0.1:0".to_string(), |a| a.to_string());
                    cmd.arg("--gateway-listen").arg(gateway);
                    announcements = 2;
                }
                Some(i) if self.extra_args.get(i + 1).is_some_and(|v| v != "off") => announcements = 2,
                Some(_) => {}
            }
            // The Kafka listener too, on a free port (the same one again after a restart).
            if !self.extra_args.iter().any(|a| a == "--kafka-listen") {
                let kafka = self.kafka_addr.map_or("127.0.0.1:0".to_string(), |a| a.to_string());
                cmd.arg("--kafka-listen").arg(kafka);
            }
        }
        cmd.args(&self.extra_args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd.env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
        let mut child =
            cmd.spawn().map_err(|source| TestkitError::Spawn { bin: self.bin.display().to_string(), source })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let (kafka_tx, kafka_rx) = mpsc::channel();
        let output = self.output.clone();
        // Drain stderr for the process's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("serving on ").nth(1).and_then(|r| r.split_whitespace().next()) {
                    let _ = tx.send(addr.to_string());
                }
                if let Some(addr) = line.split("kafka protocol on ").nth(1).and_then(|r| r.split_whitespace().next()) {
                    let _ = kafka_tx.send(addr.to_string());
                }
                if let Ok(mut o) = output.lock() {
                    o.push(line);
                }
            }
        });
        // The server announces its own address first, then (dev) its gateway's.
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        while addrs.len() < announcements {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left).ok().and_then(|a| a.parse().ok()) {
                Some(addr) => addrs.push(addr),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(TestkitError::NotStarted { timeout: START_TIMEOUT, output: self.output() });
                }
            }
        }
        // The address is announced when the port is bound; a restarted server recovers its logs
        // before it serves. Started means serving: wait until the server speaks HTTP/2.
        while !speaks_http2(addrs[0]) {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestkitError::NotStarted { timeout: START_TIMEOUT, output: self.output() });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.addr = addrs[0];
        self.gateway_addr = addrs.get(1).copied();
        // Announced before the broker serves: it is printed by now when there is one.
        let kafka_off = self.extra_args.windows(2).any(|w| w[0] == "--kafka-listen" && w[1] == "off");
        if self.subcommand == "dev" && !kafka_off {
            self.kafka_addr = kafka_rx.recv_timeout(Duration::from_secs(5)).ok().and_then(|a| a.parse().ok());
        }
        self.child = Some(child);
        Ok(())
    }
}

/// Whether a server at `addr` answers an HTTP/2 connection preface with its SETTINGS frame within
/// a second, i.e. accepts and serves connections (a bound port that nobody accepts on yet holds
/// the connection in its backlog, silent).
fn speaks_http2(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let mut header = [0u8; 9];
    stream.set_read_timeout(Some(Duration::from_secs(1))).is_ok()
        && stream.write_all(PREFACE).is_ok()
        && stream.write_all(&EMPTY_SETTINGS).is_ok()
        && stream.read_exact(&mut header).is_ok()
        && header[3] == 4 // frame type SETTINGS
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `cmd` to its end with `input` on its stdin, collecting its stdout and stderr (read as it
/// runs, so a chatty command never blocks on a full pipe); kills it after `limit`.
pub fn run_bounded(cmd: &mut Command, input: &[u8], limit: Duration) -> Result<std::process::Output, TestkitError> {
    use std::io::{Read, Write};
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TestkitError::Spawn { bin: what.clone(), source })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestkitError::TimedOut { what, limit });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(std::process::Output { status, stdout, stderr })
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`; panics naming `what`
/// when time runs out (every wait in a test is bounded).
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
