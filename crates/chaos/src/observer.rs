//! Watches who leads what, once a second: each partition's leader, the group and transaction
//! coordinators and the controller quorum's leader, recording changes ([`Event::Leader`]) for
//! the picture of the run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use vltava_client::Admin;
use vltava_proto::v1::group_service_client::GroupServiceClient;
use vltava_proto::v1::transaction_service_client::TransactionServiceClient;
use vltava_proto::v1::{FindCoordinatorRequest, FindTransactionCoordinatorRequest};

use crate::faults::Subjects;
use crate::history::{Event, History};

/// Runs until `stop`.
pub async fn run(history: Arc<History>, subjects: Subjects, brokers: Vec<String>, mut stop: watch::Receiver<bool>) {
    let mut last: HashMap<String, i32> = HashMap::new();
    loop {
        let seen = tokio::time::timeout(Duration::from_secs(3), look(&subjects, &brokers)).await.unwrap_or_default();
        for (of, broker) in seen {
            if last.get(&of) != Some(&broker) {
                history.push(Event::Leader { t: history.now(), of: of.clone(), broker });
                last.insert(of, broker);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn look(subjects: &Subjects, brokers: &[String]) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    if let Ok(admin) = Admin::connect(&subjects.bootstrap).await {
        if let Ok(topic) = admin.describe_topic(&subjects.topic).await {
            out.extend(topic.partitions.iter().map(|p| (format!("p{}", p.partition), p.leader)));
        }
        if let Ok(cluster) = admin.describe_cluster().await {
            out.push(("controller".into(), cluster.leader_id as i32));
        }
    }
    for addr in brokers {
        let Ok(mut groups) = GroupServiceClient::connect(format!("http://{addr}")).await else { continue };
        if let Ok(r) = groups.find_coordinator(FindCoordinatorRequest { group_id: subjects.group.clone() }).await {
            out.push(("group".into(), r.into_inner().node_id));
        }
        if let Ok(mut txns) = TransactionServiceClient::connect(format!("http://{addr}")).await {
            let request = FindTransactionCoordinatorRequest { transactional_id: subjects.transactional_id.clone() };
            if let Ok(r) = txns.find_transaction_coordinator(request).await {
                out.push(("txn".into(), r.into_inner().node_id));
            }
        }
        break;
    }
    out
}
