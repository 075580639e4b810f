//! Applying and healing the faults of a [`Window`] on the running cluster and network.

use std::io::Write;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use vltava_client::Admin;
use vltava_proto::v1::FindCoordinatorRequest;
use vltava_proto::v1::FindTransactionCoordinatorRequest;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;

use crate::cluster::{Cluster, Role};
use crate::error::ChaosError;
use crate::net::Network;
use crate::schedule::{FaultKind, Target, Window};

/// A fault in effect, and what healing it undoes.
#[derive(Debug)]
pub enum Applied {
    /// A killed process, restarted on heal.
    Killed(String),
    /// A paused process, resumed on heal.
    Paused(String),
    /// Filters in the network, removed on heal.
    Network,
    /// A filler file, removed on heal.
    DiskFilled(std::path::PathBuf),
    /// Nothing could be done (no such target now).
    Nothing,
}

/// What the faults need to know about the workload.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// The topic under test.
    pub topic: String,
    /// The workload's group.
    pub group: String,
    /// The first transactional id.
    pub transactional_id: String,
    /// The brokers' addresses.
    pub bootstrap: String,
}

/// The process a target names now (a role-based target is looked up in the cluster).
pub async fn resolve(target: &Target, cluster: &Cluster, subjects: &Subjects) -> Option<String> {
    let lookup = async {
        match target {
            Target::Named(name) => Some(name.clone()),
            Target::PartitionLeader(p) => {
                let admin = Admin::connect(&subjects.bootstrap).await.ok()?;
                let topic = admin.describe_topic(&subjects.topic).await.ok()?;
                let leader = topic.partitions.iter().find(|d| d.partition == *p)?.leader;
                (leader >= 0).then(|| Cluster::broker_name(leader))
            }
            Target::ControllerLeader => {
                let admin = Admin::connect(&subjects.bootstrap).await.ok()?;
                let leader = admin.describe_cluster().await.ok()?.leader_id;
                (leader != 0).then(|| format!("controller-{leader}"))
            }
            Target::GroupCoordinator => {
                let addr = cluster.procs.iter().find(|p| p.role == Role::Broker && p.is_up())?.address.clone();
                let mut client = GroupServiceClient::connect(format!("http://{addr}")).await.ok()?;
                let r =
                    client.find_coordinator(FindCoordinatorRequest { group_id: subjects.group.clone() }).await.ok()?;
                Some(Cluster::broker_name(r.into_inner().node_id))
            }
            Target::TxnCoordinator => {
                let addr = cluster.procs.iter().find(|p| p.role == Role::Broker && p.is_up())?.address.clone();
                let mut client = TransactionServiceClient::connect(format!("http://{addr}")).await.ok()?;
                let r = client
                    .find_transaction_coordinator(FindTransactionCoordinatorRequest {
                        transactional_id: subjects.transactional_id.clone(),
                    })
                    .await
                    .ok()?;
                Some(Cluster::broker_name(r.into_inner().node_id))
            }
        }
    };
    let name = tokio::time::timeout(Duration::from_secs(5), lookup).await.ok().flatten()?;
    cluster.procs.iter().any(|p| p.name == name && p.is_up()).then_some(name)
}

/// Applies `window`'s fault; returns what to undo and a description.
pub async fn apply(
    window: &Window,
    cluster: &mut Cluster,
    net: &Network,
    subjects: &Subjects,
) -> Result<(Applied, String), ChaosError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(window.pick);
    let names: Vec<String> = cluster.procs.iter().map(|p| p.name.clone()).collect();
    let others = |name: &str| names.iter().filter(|n| *n != name).cloned().collect::<Vec<_>>();
    let target = match window.kind {
        FaultKind::Split | FaultKind::Bridge | FaultKind::DiskFull => None,
        _ => match resolve(&window.target, cluster, subjects).await {
            Some(name) => Some(name),
            None => {
                return Ok((Applied::Nothing, format!("{} of {:?}: no such process now", window.kind, window.target)));
            }
        },
    };
    let who = target.clone().unwrap_or_default();
    let described = |what: String| format!("{what} ({:?})", window.target);
    Ok(match window.kind {
        FaultKind::Kill => {
            cluster.get_mut(&who).expect("resolved to a process").kill9();
            (Applied::Killed(who.clone()), described(format!("kill -9 {who}")))
        }
        FaultKind::Pause => {
            cluster.get_mut(&who).expect("resolved to a process").pause();
            (Applied::Paused(who.clone()), described(format!("SIGSTOP {who}")))
        }
        FaultKind::Isolate => {
            net.split(std::slice::from_ref(&who), &others(&who))?;
            (Applied::Network, described(format!("isolate {who}")))
        }
        FaultKind::OneWay => {
            net.block(std::slice::from_ref(&who), &others(&who))?;
            (Applied::Network, described(format!("drop {who}'s packets to every other node")))
        }
        FaultKind::Lossy => {
            net.drop_share(std::slice::from_ref(&who), &others(&who), 30)?;
            net.drop_share(&others(&who), std::slice::from_ref(&who), 30)?;
            (Applied::Network, described(format!("lose 30% of {who}'s packets")))
        }
        FaultKind::Split => {
            let controller = format!("controller-{}", rng.random_range(1..=3));
            let mut brokers: Vec<&String> = names.iter().filter(|n| n.starts_with("broker-")).collect();
            brokers.shuffle(&mut rng);
            let minority = vec![controller, brokers[0].clone()];
            let majority: Vec<String> = names.iter().filter(|n| !minority.contains(n)).cloned().collect();
            net.split(&minority, &majority)?;
            (Applied::Network, format!("split {minority:?} from the rest"))
        }
        FaultKind::Bridge => {
            let mut shuffled = names.clone();
            shuffled.shuffle(&mut rng);
            let bridge = shuffled.pop().expect("a cluster has processes");
            let half = shuffled.len() / 2;
            let (a, b) = shuffled.split_at(half);
            net.split(a, b)?;
            (Applied::Network, format!("split {a:?} from {b:?}, {bridge} reaching both"))
        }
        FaultKind::DiskFull => {
            let Some(dir) = cluster.procs.iter().find_map(|p| p.tmpfs.clone()) else {
                return Ok((Applied::Nothing, "disk-full: no broker has a tmpfs".into()));
            };
            let filler = dir.join("chaos-filler");
            fill(&filler);
            (Applied::DiskFilled(filler), format!("fill the disk of the broker on {}", dir.display()))
        }
    })
}

/// Writes `path` until the file system is full.
fn fill(path: &std::path::Path) {
    let Ok(mut file) = std::fs::File::create(path) else { return };
    let chunk = vec![0u8; 1 << 20];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.flush();
}

/// Undoes a fault.
pub fn heal(applied: Applied, cluster: &mut Cluster, net: &Network) -> Result<(), ChaosError> {
    match applied {
        Applied::Killed(name) => {
            if let Some(p) = cluster.get_mut(&name) {
                p.restart()?;
            }
        }
        Applied::Paused(name) => {
            if let Some(p) = cluster.get_mut(&name) {
                p.resume();
            }
        }
        Applied::Network => net.heal()?,
        Applied::DiskFilled(path) => {
            let _ = std::fs::remove_file(path);
        }
        Applied::Nothing => {}
    }
    Ok(())
}
