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
    // What this member last committed per partition.
    let mut committed: HashMap<TopicPartition, i64> = HashMap::new();
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
        committed.retain(|tp, _| known.contains(tp));
        if !new.is_empty() {
            let t = env.history.now();
            if let Ok(found) = consumer.committed(&new).await {
                for tp in &new {
                    let offset = found.get(tp).copied().unwrap_or(-1);
                    env.history.push(Event::Fetched { t, client: name.to_string(), partition: tp.partition, offset });
                }
            }
        }
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
        }
        // Commit the positions that moved since the last commit (the next offsets to read; a
        // position also moves over transaction markers and aborted records, which no poll returns).
        let offsets: HashMap<TopicPartition, i64> = consumer
            .positions()
            .into_iter()
            .filter(|(tp, p)| known.contains(tp) && committed.get(tp).is_none_or(|c| p.offset > *c))
            .map(|(tp, p)| (tp, p.offset))
            .collect();
        if offsets.is_empty() {
            continue;
        }
        let t_start = env.history.now();
        let result = consumer.commit_offsets(offsets.clone()).await;
        let t = env.history.now();
        for (tp, offset) in offsets {
            if result.is_ok() {
                committed.insert(tp.clone(), offset);
            }
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
