//! One network namespace per cluster process, joined by a bridge, and packet filters between
//! them.
//!
//! ```text
//!   root namespace (the harness, its clients)  10.77.R.1 ── veth ──┐
//!   hub namespace "vcR-hub": bridge br0 ───────────────────────────┤
//!   node namespaces "vcR-N": eth0 10.77.R.(10+N) ── veth ──────────┘
//! ```
//!
//! The bridge lives in a namespace of its own so that the host's packet filter (Docker's
//! `FORWARD` policy, for one) never sees the cluster's traffic. Faults are `nftables` rules in a
//! node's own namespace (table `inet chaos`): dropping what it receives from or sends to given
//! addresses. The harness's address (10.77.R.1) is never filtered: clients see every node, as in
//! Jepsen's tests, so a partitioned leader keeps being offered writes.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::error::ChaosError;

/// Runs `program args`, failing with its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, ChaosError> {
    let line = || format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ChaosError::Command { command: line(), stderr: e.to_string() })?;
    if !out.status.success() {
        return Err(ChaosError::Command {
            command: line(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args` inside namespace `ns`.
fn run_in(ns: &str, program: &str, args: &[&str]) -> Result<String, ChaosError> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Runs an nft script inside namespace `ns`.
fn nft(ns: &str, script: &str) -> Result<(), ChaosError> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| ChaosError::Command { command: format!("nft in {ns}"), stderr: e.to_string() })?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| ChaosError::Command { command: format!("nft in {ns}"), stderr: e.to_string() })?;
    let out = child
        .wait_with_output()
        .map_err(|e| ChaosError::Command { command: format!("nft in {ns}"), stderr: e.to_string() })?;
    if !out.status.success() {
        return Err(ChaosError::Command {
            command: format!("nft -f - in {ns}: {script}"),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// One cluster host: a namespace with one address.
#[derive(Debug, Clone)]
pub struct Host {
    /// The process it holds ("controller-1", "broker-2", "gateway").
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
}

/// The namespaces, the bridge and the filters of one run. [`Network::teardown`] (also on drop)
/// removes all of it.
#[derive(Debug)]
pub struct Network {
    run: u8,
    hub: String,
    root_veth: String,
    /// The cluster's hosts, in the order they were given.
    pub hosts: Vec<Host>,
    torn_down: bool,
}

/// The prefix of every namespace a run with id `run` creates.
fn prefix(run: u8) -> String {
    format!("vc{run}-")
}

impl Network {
    /// The harness's own address (clients connect from it).
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.run, 1)
    }

    /// Creates the hub, a namespace per name and the veth pairs, and brings everything up.
    /// Leftovers of an earlier run with the same id are removed first.
    pub fn create(run_id: u8, names: &[String]) -> Result<Network, ChaosError> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err(ChaosError::NotRoot("run it as root (CI does), or in a container with CAP_NET_ADMIN".into()));
        }
        remove_leftovers(run_id);
        let hub = format!("{}hub", prefix(run_id));
        let root_veth = format!("vc{run_id}r");
        let mut net = Network {
            run: run_id,
            hub: hub.clone(),
            root_veth: root_veth.clone(),
            hosts: Vec::new(),
            torn_down: false,
        };
        run("ip", &["netns", "add", &hub])?;
        run_in(&hub, "ip", &["link", "set", "lo", "up"])?;
        run_in(&hub, "ip", &["link", "add", "br0", "type", "bridge"])?;
        run_in(&hub, "ip", &["link", "set", "br0", "up"])?;
        run("ip", &["link", "add", &root_veth, "type", "veth", "peer", "name", "uplink", "netns", &hub])?;
        run("ip", &["addr", "add", &format!("{}/24", net.client_ip()), "dev", &root_veth])?;
        run("ip", &["link", "set", &root_veth, "up"])?;
        run_in(&hub, "ip", &["link", "set", "dev", "uplink", "master", "br0"])?;
        run_in(&hub, "ip", &["link", "set", "dev", "uplink", "up"])?;
        for (i, name) in names.iter().enumerate() {
            let ns = format!("{}{}", prefix(run_id), i + 1);
            let ip = Ipv4Addr::new(10, 77, run_id, 10 + i as u8);
            let port = format!("p{}", i + 1);
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["link", "add", &port, "netns", &hub, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            run_in(&hub, "ip", &["link", "set", &port, "master", "br0"])?;
            run_in(&hub, "ip", &["link", "set", &port, "up"])?;
            run_in(&ns, "ip", &["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            run_in(&ns, "ip", &["link", "set", "eth0", "up"])?;
            run_in(&ns, "ip", &["link", "set", "lo", "up"])?;
            net.hosts.push(Host { name: name.clone(), ns, ip });
        }
        Ok(net)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Drops every packet `from` sends to `to` (both sets of host names), in `from`'s namespace:
    /// `to` still reaches `from`, but no answer comes back. Called for both directions, it cuts
    /// the link entirely.
    pub fn block(&self, from: &[String], to: &[String]) -> Result<(), ChaosError> {
        self.drop_share(from, to, 100)
    }

    /// Drops `percent` of the packets `from` sends to `to`, at random (a lossy link).
    pub fn drop_share(&self, from: &[String], to: &[String], percent: u8) -> Result<(), ChaosError> {
        let targets: Vec<String> = to.iter().filter_map(|n| self.host(n)).map(|h| h.ip.to_string()).collect();
        if targets.is_empty() {
            return Ok(());
        }
        let set = targets.join(", ");
        for host in from.iter().filter_map(|n| self.host(n)) {
            let script = format!(
                "table inet chaos {{\n  chain out {{ type filter hook output priority 0; policy accept; }}\n}}\n\
                 add rule inet chaos out ip daddr {{ {set} }} {} drop\n",
                if percent >= 100 { String::new() } else { format!("numgen random mod 100 < {percent}") }
            );
            nft(&host.ns, &script)?;
        }
        Ok(())
    }

    /// Cuts every link between `a` and `b` (both directions).
    pub fn split(&self, a: &[String], b: &[String]) -> Result<(), ChaosError> {
        self.block(a, b)?;
        self.block(b, a)
    }

    /// Removes every filter: the network is whole again.
    pub fn heal(&self) -> Result<(), ChaosError> {
        for host in &self.hosts {
            // Absent when the host had no rule.
            let _ = run_in(&host.ns, "nft", &["delete", "table", "inet", "chaos"]);
        }
        Ok(())
    }

    /// Removes the namespaces, the bridge and the root side's veth.
    pub fn teardown(&mut self) {
        if !self.torn_down {
            self.torn_down = true;
            let _ = run("ip", &["link", "del", &self.root_veth]);
            for host in &self.hosts {
                let _ = run("ip", &["netns", "del", &host.ns]);
            }
            let _ = run("ip", &["netns", "del", &self.hub]);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Deletes the namespaces and veth an earlier run with id `run` left (a killed harness).
fn remove_leftovers(run: u8) {
    let _ = self::run("ip", &["link", "del", &format!("vc{run}r")]);
    if let Ok(list) = self::run("ip", &["netns", "list"]) {
        let prefix = prefix(run);
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| n.starts_with(&prefix)) {
            let _ = self::run("ip", &["netns", "del", ns]);
        }
    }
}

/// A run id whose namespaces are not in use (a free /24 of 10.77.0.0/16).
pub fn free_run_id(preferred: u8) -> u8 {
    let used = run("ip", &["netns", "list"]).unwrap_or_default();
    (0..240u16)
        .map(|i| ((u16::from(preferred) + i) % 240 + 10) as u8)
        .find(|r| !used.lines().any(|l| l.starts_with(&prefix(*r))))
        .unwrap_or(preferred)
}
