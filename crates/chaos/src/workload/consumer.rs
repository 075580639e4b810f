//! A member of the workload's group: polls (`read_committed`), records every record, then commits
//! the positions it reached (processing first, then the commit: at-least-once). On each new
//! assignment it records the committed offsets it finds ([`Event::Fetched`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use vltava_client::{Consumer, TopicPartition};

use super::{Env, consumer_config};
use crate::history::Event;

/// Runs until aborted; a consumer that fails is replaced (a new member).
pub async fn run(env: Arc<Env>, name: String, stop: watch::Receiver<bool>) {
    loop {
        let consumer = match Consumer::connect(consumer_config(&env, Some(&env.group))).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(client = %name, error = %e, "consumer cannot connect yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        member(&env, &name, consumer, &stop).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn member(env: &Env, name: &str, mut consumer: Consumer, _stop: &watch::Receiver<bool>) {
    if let Err(e) = consumer.subscribe([env.topic.as_str()]) {
        tracing::warn!(client = %name, error = %e, "subscribe failed");
        return;
    }
    let mut known: HashSet<TopicPartition> = HashSet::new();
    let mut failures = 0;
    loop {
        let records = match consumer.poll(Duration::from_millis(500)).await {
            Ok(r) => {
                failures = 0;
                r
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(client = %name, error = %e, "poll failed");
                if failures > 20 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let assignment: HashSet<TopicPartition> = consumer.assignment().into_iter().collect();
        let new: Vec<TopicPartition> = assignment.difference(&known).cloned().collect();
        known = assignment;
        if !new.is_empty() {
            let t = env.history.now();
            if let Ok(committed) = consumer.committed(&new).await {
                for tp in &new {
                    let offset = committed.get(tp).copied().unwrap_or(-1);
                    env.history.push(Event::Fetched { t, client: name.to_string(), partition: tp.partition, offset });
                }
            }
        }
        if records.is_empty() {
            continue;
        }
        let mut read: HashMap<TopicPartition, i64> = HashMap::new();
        for r in &records {
            env.history.push(Event::Read {
                t: env.history.now(),
                client: name.to_string(),
                group: true,
                committed: true,
                partition: r.partition,
                offset: r.offset,
                value: String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            });
            read.insert(TopicPartition::new(r.topic.to_string(), r.partition), r.offset + 1);
        }
        // Commit the positions reached in the partitions just read (the next offset to read).
        let positions = consumer.positions();
        let offsets: HashMap<TopicPartition, i64> =
            read.keys().filter_map(|tp| positions.get(tp).map(|p| (tp.clone(), p.offset))).collect();
        let t_start = env.history.now();
        let result = consumer.commit_offsets(offsets.clone()).await;
        let t = env.history.now();
        for (tp, offset) in offsets {
            env.history.push(Event::Commit {
                t_start,
                t,
                client: name.to_string(),
                partition: tp.partition,
                offset,
                ok: result.is_ok(),
            });
        }
    }
}
