//! `vltava cluster describe`: the controller quorum and the brokers.

use clap::{Args, Subcommand};
use serde::Serialize;
use vltava_client::Admin;
use vltava_proto::v1::DescribeClusterResponse;

use super::ServerArgs;
use crate::output::{Table, print_json, print_text};

/// Cluster commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClusterCommand {
    /// Shows the controllers (which leads, the Raft term, applied index) and the brokers (alive or fenced).
    Describe(DescribeClusterArgs),
}

/// Arguments of `vltava cluster describe`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DescribeClusterArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The JSON form of `cluster describe`.
#[derive(Debug, Serialize)]
pub struct ClusterJson {
    cluster_id: String,
    leader_id: u64,
    term: u64,
    commit_index: u64,
    applied_index: u64,
    metadata_version: u64,
    answered_by: u64,
    controllers: Vec<ControllerJson>,
    brokers: Vec<BrokerJson>,
}

#[derive(Debug, Serialize)]
struct ControllerJson {
    id: u64,
    address: String,
    leader: bool,
    voter: bool,
    match_index: u64,
}

#[derive(Debug, Serialize)]
struct BrokerJson {
    id: i32,
    address: String,
    rack: String,
    state: &'static str,
    epoch: i64,
}

impl From<&DescribeClusterResponse> for ClusterJson {
    fn from(r: &DescribeClusterResponse) -> Self {
        Self {
            cluster_id: r.cluster_id.clone(),
            leader_id: r.leader_id,
            term: r.term,
            commit_index: r.commit_index,
            applied_index: r.applied_index,
            metadata_version: r.metadata_version,
            answered_by: r.answered_by,
            controllers: r
                .controllers
                .iter()
                .map(|c| ControllerJson {
                    id: c.id,
                    address: c.address.clone(),
                    leader: c.leader,
                    voter: c.voter,
                    match_index: c.match_index,
                })
                .collect(),
            brokers: r
                .brokers
                .iter()
                .map(|b| BrokerJson {
                    id: b.id,
                    address: b.address.clone(),
                    rack: b.rack.clone(),
                    state: if b.fenced { "fenced" } else { "alive" },
                    epoch: b.epoch,
                })
                .collect(),
        }
    }
}

/// Runs a cluster command.
pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Describe(args) => {
            let admin = Admin::connect(&args.server.server).await?;
            let r = admin.describe_cluster().await?;
            if args.json { print_json(&ClusterJson::from(&r)) } else { print_text(&describe_text(&r)) }
        }
    }
}

/// The text form of `cluster describe`.
pub fn describe_text(r: &DescribeClusterResponse) -> String {
    let mut out = format!(
        "Cluster {}: controller leader {} (term {}, commit index {}, applied {} on controller {}), metadata version {}\n\n",
        r.cluster_id,
        if r.leader_id == 0 { "none".to_string() } else { r.leader_id.to_string() },
        r.term,
        r.commit_index,
        r.applied_index,
        r.answered_by,
        r.metadata_version
    );
    let mut controllers = Table::new(["CONTROLLER", "ADDRESS", "ROLE", "VOTER", "MATCH-INDEX"]);
    for c in &r.controllers {
        controllers.row([
            c.id.to_string(),
            c.address.clone(),
            if c.leader { "leader".to_string() } else { "follower".to_string() },
            c.voter.to_string(),
            c.match_index.to_string(),
        ]);
    }
    out.push_str(&controllers.render());
    out.push('\n');
    let mut brokers = Table::new(["BROKER", "ADDRESS", "RACK", "STATE", "EPOCH"]);
    for b in &r.brokers {
        brokers.row([
            b.id.to_string(),
            b.address.clone(),
            if b.rack.is_empty() { "-".to_string() } else { b.rack.clone() },
            if b.fenced { "fenced".to_string() } else { "alive".to_string() },
            b.epoch.to_string(),
        ]);
    }
    out.push_str(&brokers.render());
    out
}
