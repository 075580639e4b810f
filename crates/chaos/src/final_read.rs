//! The read of the healed cluster that the history is checked against: every partition of the
//! topic from its beginning to its high watermark, `read_uncommitted` and `read_committed`, and
//! the group's committed offsets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vltava_client::{Admin, Consumer, IsolationLevel, OffsetSpec, TopicPartition};

use crate::checker::{FinalRead, Incomplete};
use crate::error::ChaosError;
use crate::workload::{Env, consumer_config};

/// Reads everything; `limit` bounds each of the two reads.
pub async fn read(env: &Env, limit: Duration) -> Result<FinalRead, ChaosError> {
    let admin = Admin::connect(&env.bootstrap).await?;
    let topic = admin.describe_topic(&env.topic).await?;
    // The high watermarks, read until two readings agree (just after a leader change a new
    // leader's high watermark can still move up).
    let mut ends = BTreeMap::new();
    for _ in 0..10 {
        let mut now = BTreeMap::new();
        for p in &topic.partitions {
            let tp = TopicPartition::new(env.topic.clone(), p.partition);
            now.insert(p.partition, admin.list_offsets(&tp, OffsetSpec::Latest).await?);
        }
        if now == ends {
            break;
        }
        ends = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (uncommitted, mut incomplete) = read_all(env, &ends, IsolationLevel::ReadUncommitted, limit).await?;
    let (committed, stuck) = read_all(env, &ends, IsolationLevel::ReadCommitted, limit).await?;
    incomplete.extend(stuck);
    let group_offsets = admin
        .group_offsets(&env.group)
        .await
        .map(|offsets| offsets.into_iter().map(|(tp, o)| (tp.partition, o)).collect())
        .unwrap_or_default();
    Ok(FinalRead { uncommitted, committed, group_offsets, incomplete })
}

/// The records of every partition up to its end, and for each partition that could not be read to
/// its end within `limit`, why (its position and end).
async fn read_all(
    env: &Env,
    ends: &BTreeMap<i32, i64>,
    isolation: IsolationLevel,
    limit: Duration,
) -> Result<(BTreeMap<i32, Vec<(i64, String)>>, Vec<Incomplete>), ChaosError> {
    let mut config = consumer_config(env, None);
    config.isolation_level = isolation;
    // An out-of-range answer (a deposed leader) must not rewind the read to the beginning.
    config.auto_offset_reset = vltava_client::OffsetReset::None;
    let mut consumer = Consumer::connect(config).await?;
    let partitions: Vec<TopicPartition> = ends.keys().map(|p| TopicPartition::new(env.topic.clone(), *p)).collect();
    consumer.assign(partitions.clone());
    consumer.seek_to_beginning(&partitions)?;
    // By offset: a record read twice (a retried fetch) is kept once.
    let mut out: BTreeMap<i32, BTreeMap<i64, String>> = ends.keys().map(|p| (*p, BTreeMap::new())).collect();
    let deadline = Instant::now() + limit;
    loop {
        let mut behind = Vec::new();
        for tp in &partitions {
            let position = consumer.position(tp).await.unwrap_or(0);
            if position < ends[&tp.partition] {
                behind.push(Incomplete {
                    committed: isolation == IsolationLevel::ReadCommitted,
                    partition: tp.partition,
                    position,
                    end: ends[&tp.partition],
                });
            }
        }
        if behind.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Ok((flatten(out), behind));
        }
        for r in consumer.poll(Duration::from_millis(500)).await.unwrap_or_default() {
            let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            out.entry(r.partition).or_default().insert(r.offset, value);
        }
    }
    Ok((flatten(out), Vec::new()))
}

fn flatten(read: BTreeMap<i32, BTreeMap<i64, String>>) -> BTreeMap<i32, Vec<(i64, String)>> {
    read.into_iter().map(|(p, records)| (p, records.into_iter().collect())).collect()
}
