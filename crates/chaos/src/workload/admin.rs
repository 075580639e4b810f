//! Admin operations now and then, as operators run them during incidents: creating a topic,
//! adding partitions to it, and reassigning a partition of the topic under test (a new replica
//! order, so its preferred leader moves).

use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use vltava_client::{Admin, NewTopic};

use super::Env;
use crate::history::Event;

/// Runs an operation every 10 to 20 seconds until `stop`.
pub async fn run(env: Arc<Env>, mut stop: watch::Receiver<bool>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(env.seed ^ 0xad31);
    let mut created = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(rng.random_range(10_000..20_000))) => {}
            _ = stop.changed() => return,
        }
        let Ok(admin) = Admin::connect(&env.bootstrap).await else { continue };
        let choice = rng.random_range(0..3);
        let (op, ok) = match choice {
            0 => {
                created += 1;
                let name = format!("chaos-extra-{created}");
                let r = admin.create_topic(NewTopic::new(name.clone(), 2).replication_factor(3)).await;
                (format!("create topic {name}"), r.is_ok())
            }
            1 if created > 0 => {
                let name = format!("chaos-extra-{created}");
                let total = match admin.describe_topic(&name).await {
                    Ok(d) => d.partitions.len() as i32 + 1,
                    Err(_) => 3,
                };
                let r = admin.create_partitions(&name, total).await;
                (format!("grow {name} to {total} partitions"), r.is_ok())
            }
            _ => {
                let Ok(topic) = admin.describe_topic(&env.topic).await else { continue };
                let Some(partition) = topic.partitions.get(rng.random_range(0..topic.partitions.len().max(1))) else {
                    continue;
                };
                let mut replicas = partition.replicas.clone();
                replicas.shuffle(&mut rng);
                let r = admin.reassign_partition(&env.topic, partition.partition, replicas.clone()).await;
                (format!("reassign p{} to {replicas:?}", partition.partition), r.is_ok())
            }
        };
        env.history.push(Event::Admin { t: env.history.now(), op, ok });
    }
}
