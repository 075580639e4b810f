//! The `vltava controller` configuration: typed, loaded from TOML plus `VLTAVA_*` overrides.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::node::NodeSettings;
use crate::quorum::ControllerSettings;

/// Everything a controller needs to start (see `deploy/config/controller.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ControllerConfig {
    /// This controller's node id: unique, non-zero (Kafka's `node.id`).
    pub node_id: u64,
    /// The cluster id, the same on every controller and broker. A data directory created for
    /// another cluster id is refused.
    pub cluster_id: String,
    /// Address to listen on (Raft and the metadata API).
    pub listen: String,
    /// Address the other controllers and the brokers use; defaults to the bound address.
    pub advertised_address: Option<String>,
    /// Data directory (RocksDB: the Raft log and the metadata).
    pub data_dir: PathBuf,
    /// The initial voters, `id@host:port` separated by commas (Kafka's `controller.quorum.voters`).
    /// Every initial controller must be given the same list.
    pub voters: String,
    /// Start as a new member waiting to be added with `vltava controller add` (its `voters` are
    /// only used to find the current ones).
    pub join: bool,
    /// Replication factor of topics created without one (`default.replication.factor`).
    pub default_replication_factor: i32,
    /// A broker whose heartbeats stop for this long is fenced and its leaderships move
    /// (`broker.session.timeout.ms`).
    #[serde(with = "humantime_serde")]
    pub broker_session_timeout: Duration,
    /// Raft tick.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// Ticks without hearing from a leader before a follower campaigns (randomized up to twice this).
    pub election_ticks: usize,
    /// Ticks between the leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// Compact the Raft log once it holds this many entries (followers further behind get a snapshot).
    pub snapshot_entries: u64,
    /// How long a write may wait for the quorum before failing with REQUEST_TIMED_OUT.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            cluster_id: String::new(),
            listen: "127.0.0.1:9093".into(),
            advertised_address: None,
            data_dir: PathBuf::from("./data/controller"),
            voters: "1@127.0.0.1:9093".into(),
            join: false,
            default_replication_factor: 1,
            broker_session_timeout: Duration::from_millis(1500),
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_entries: 10_000,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Parses `1@host:port,2@host:port`.
pub fn parse_voters(voters: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut out = BTreeMap::new();
    for item in voters.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, address) = item.split_once('@').ok_or_else(|| format!("voter {item:?} is not id@host:port"))?;
        let id: u64 = id.parse().map_err(|_| format!("voter {item:?}: the id must be a positive integer"))?;
        if id == 0 || !address.contains(':') {
            return Err(format!("voter {item:?} is not id@host:port with a non-zero id"));
        }
        if out.insert(id, address.to_string()).is_some() {
            return Err(format!("voter id {id} appears twice"));
        }
    }
    if out.is_empty() {
        return Err("voters is empty: list the quorum as id@host:port,...".into());
    }
    Ok(out)
}

impl ControllerConfig {
    /// Checks the configuration; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.node_id == 0 {
            return Err("node_id must be a positive integer".into());
        }
        if self.cluster_id.trim().is_empty() {
            return Err("cluster_id is required (the same on every controller and broker)".into());
        }
        let voters = parse_voters(&self.voters)?;
        if !self.join && !voters.contains_key(&self.node_id) {
            return Err(format!(
                "node_id {} is not in voters {:?}; set join = true to add it to a running quorum",
                self.node_id, self.voters
            ));
        }
        if self.election_ticks <= self.heartbeat_ticks || self.heartbeat_ticks == 0 {
            return Err("election_ticks must be larger than heartbeat_ticks, which must be at least 1".into());
        }
        if self.tick.is_zero() || self.broker_session_timeout < self.tick * 2 {
            return Err("tick must be positive and broker_session_timeout at least two ticks".into());
        }
        if self.default_replication_factor < 1 {
            return Err("default_replication_factor must be at least 1".into());
        }
        Ok(())
    }

    /// The controller settings, with `advertised` as this node's address.
    pub fn settings(&self, advertised: &str) -> Result<ControllerSettings, String> {
        let mut voters = parse_voters(&self.voters)?;
        if !self.join {
            voters.insert(self.node_id, advertised.to_string());
        }
        Ok(ControllerSettings {
            node: NodeSettings {
                id: self.node_id,
                tick: self.tick,
                election_ticks: self.election_ticks,
                heartbeat_ticks: self.heartbeat_ticks,
                snapshot_entries: self.snapshot_entries,
                request_timeout: self.request_timeout,
            },
            cluster_id: self.cluster_id.clone(),
            voters,
            join: self.join,
            data_dir: self.data_dir.clone(),
            default_replication_factor: self.default_replication_factor,
            session_timeout: self.broker_session_timeout,
            in_process_brokers: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_and_bad_ones_say_why() {
        let v = parse_voters("1@127.0.0.1:9093, 2@127.0.0.1:9094").unwrap();
        assert_eq!(v[&2], "127.0.0.1:9094");
        assert!(parse_voters("1@a:1,1@b:2").unwrap_err().contains("twice"));
        assert!(parse_voters("x@a:1").unwrap_err().contains("positive integer"));
        assert!(parse_voters("").unwrap_err().contains("empty"));
        let mut c = ControllerConfig { cluster_id: "c".into(), ..ControllerConfig::default() };
        assert!(c.validate().is_ok());
        c.node_id = 3;
        assert!(c.validate().unwrap_err().contains("join"));
        c.cluster_id = String::new();
        assert!(c.validate().unwrap_err().contains("cluster_id"));
    }
}
