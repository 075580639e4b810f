//! The workload of a run, every task recording into the [`History`]:
//! - [`producer`]: idempotent `acks=all` producers (one of them through the gateway);
//! - [`transactional`]: transactional producers committing or aborting at random;
//! - [`consumer`]: members of one group (`read_committed`) committing after processing;
//! - [`reader`]: a `read_committed` reader of every partition, outside any group;
//! - [`admin`]: topic creation, added partitions and reassignments now and then.

pub mod admin;
pub mod consumer;
pub mod producer;
pub mod reader;
pub mod transactional;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vltava_client::{Acks, ConsumerConfig, IsolationLevel, OffsetReset, Producer, ProducerConfig};

use crate::history::History;

/// What every task shares.
#[derive(Debug)]
pub struct Env {
    /// The recorder.
    pub history: Arc<History>,
    /// The brokers (the SDK's bootstrap).
    pub bootstrap: String,
    /// The gateway.
    pub gateway: String,
    /// The topic under test.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// Distinct keys per producer.
    pub keys: u64,
    /// How long producers wait for outstanding acknowledgements when stopped.
    pub drain_timeout: Duration,
    /// The run's seed (tasks derive their own random streams from it).
    pub seed: u64,
}

/// How much work to run.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Idempotent producers (the first goes through the gateway).
    pub producers: u32,
    /// Records per second per producer.
    pub rate: u32,
    /// Transactional producers.
    pub transactional: u32,
    /// Group members.
    pub consumers: u32,
    /// Whether admin operations run.
    pub admin: bool,
}

/// The running tasks.
pub struct Workload {
    stop: watch::Sender<bool>,
    producers: Vec<JoinHandle<()>>,
    consumers: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts every task.
    pub fn start(env: Arc<Env>, shape: &Shape) -> Workload {
        let (stop, rx) = watch::channel(false);
        let mut producers = Vec::new();
        for i in 0..shape.producers {
            let via_gateway = i == 0;
            let name = if via_gateway { format!("gw{i}") } else { format!("p{i}") };
            producers.push(tokio::spawn(producer::run(env.clone(), name, via_gateway, shape.rate, rx.clone())));
        }
        for i in 0..shape.transactional {
            producers.push(tokio::spawn(transactional::run(env.clone(), format!("t{i}"), rx.clone())));
        }
        if shape.admin {
            producers.push(tokio::spawn(admin::run(env.clone(), rx.clone())));
        }
        let mut consumers = Vec::new();
        for i in 0..shape.consumers {
            consumers.push(tokio::spawn(consumer::run(env.clone(), format!("c{i}"), rx.clone())));
        }
        consumers.push(tokio::spawn(reader::run(env.clone(), "reader".into(), rx.clone())));
        Workload { stop, producers, consumers }
    }

    /// Stops the producers (each waits for its outstanding acknowledgements, bounded by
    /// [`Env::drain_timeout`]; a task still running after a minute is aborted).
    pub async fn stop_producers(&mut self) {
        let _ = self.stop.send(true);
        for mut h in self.producers.drain(..) {
            // Bounded: a transactional producer's retries have no overall deadline of their own.
            if tokio::time::timeout(Duration::from_secs(60), &mut h).await.is_err() {
                h.abort();
            }
        }
    }

    /// Stops the consumers.
    pub async fn stop_consumers(self) {
        for h in self.consumers {
            h.abort();
            let _ = h.await;
        }
    }
}

/// Waits until the group has committed every partition of the topic to its end (the consumers
/// caught up), or `limit` passed; true if they caught up.
pub async fn wait_caught_up(env: &Env, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let caught_up = async {
            let admin = vltava_client::Admin::connect(&env.bootstrap).await.ok()?;
            let topic = admin.describe_topic(&env.topic).await.ok()?;
            let committed: std::collections::HashMap<i32, i64> =
                admin.group_offsets(&env.group).await.ok()?.into_iter().map(|(tp, o)| (tp.partition, o)).collect();
            for p in &topic.partitions {
                let tp = vltava_client::TopicPartition::new(env.topic.clone(), p.partition);
                let end = admin.list_offsets(&tp, vltava_client::OffsetSpec::Latest).await.ok()?;
                if end > 0 && committed.get(&p.partition).copied().unwrap_or(0) < end {
                    return Some(false);
                }
            }
            Some(true)
        };
        if tokio::time::timeout(Duration::from_secs(5), caught_up).await.ok().flatten() == Some(true) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// The next send of producer `name`: its key and value (`{name}:{n}`), recorded as sent.
pub(crate) fn next_send(env: &Env, name: &str, n: &mut u64, txn: Option<&str>) -> (String, String) {
    let value = format!("{name}:{n}");
    let key = format!("k{}", *n % env.keys);
    *n += 1;
    env.history.push(crate::history::Event::Send {
        t: env.history.now(),
        client: name.to_string(),
        key: key.clone(),
        value: value.clone(),
        txn: txn.map(str::to_string),
    });
    (key, value)
}

/// A producer for `name`, retried until it connects (the cluster may be faulted) or `stop`.
pub(crate) async fn connect_producer(
    env: &Env,
    name: &str,
    via_gateway: bool,
    transactional_id: Option<String>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Producer> {
    let mut config = ProducerConfig::new(if via_gateway { env.gateway.clone() } else { env.bootstrap.clone() });
    config.acks = Acks::All;
    config.enable_idempotence = true;
    config.via_gateway = via_gateway;
    config.linger = Duration::from_millis(5);
    config.request_timeout = Duration::from_secs(5);
    config.delivery_timeout = Duration::from_secs(30);
    config.metadata_max_age = Duration::from_secs(5);
    config.transaction_timeout = Duration::from_secs(10);
    config.transactional_id = transactional_id;
    loop {
        match Producer::connect(config.clone()).await {
            Ok(p) => return Some(p),
            Err(e) => tracing::debug!(client = name, error = %e, "producer cannot connect yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return None,
        }
    }
}

/// Consumer settings of the workload: `read_committed`, from the earliest offset, no auto-commit.
pub(crate) fn consumer_config(env: &Env, group: Option<&str>) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(env.bootstrap.clone());
    config.group_id = group.map(str::to_string);
    config.auto_offset_reset = OffsetReset::Earliest;
    config.enable_auto_commit = false;
    config.isolation_level = IsolationLevel::ReadCommitted;
    config.request_timeout = Duration::from_secs(5);
    config.fetch_max_wait = Duration::from_millis(200);
    config.max_poll_interval = Duration::from_secs(30);
    config
}
