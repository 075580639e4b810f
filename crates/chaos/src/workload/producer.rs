//! An idempotent `acks=all` producer writing keyed records at a steady rate, each value naming
//! its send (`{client}:{n}`), recording every send and its outcome.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;
use vltava_client::{Producer, ProducerRecord};

use super::{Env, connect_producer};
use crate::history::Event;

/// Records in flight at most (beyond it, the producer waits for acknowledgements).
const MAX_IN_FLIGHT: usize = 2_000;

/// Runs until `stop` turns true, then flushes what it sent (bounded) and records the outcomes.
pub async fn run(env: Arc<Env>, name: String, via_gateway: bool, rate: u32, mut stop: watch::Receiver<bool>) {
    let Some(producer) = connect_producer(&env, &name, via_gateway, None, &mut stop).await else { return };
    let mut pending = FuturesUnordered::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    // A stalled send is not made up for with a burst: the rate stays the rate.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
            Some((value, result)) = pending.next(), if !pending.is_empty() => {
                record(&env, &name, value, result);
                continue;
            }
        }
        if pending.len() >= MAX_IN_FLIGHT {
            continue;
        }
        let (key, value) = super::next_send(&env, &name, &mut n, None);
        match send(&producer, &env.topic, key, value.clone()).await {
            Ok(delivery) => pending.push(async move { (value, delivery.await) }),
            Err(e) => record(&env, &name, value, Err(e)),
        }
    }
    let drain = async {
        while let Some((value, result)) = pending.next().await {
            record(&env, &name, value, result);
        }
    };
    let _ = tokio::time::timeout(env.drain_timeout, drain).await;
    producer.close().await;
}

async fn send(
    producer: &Producer,
    topic: &str,
    key: String,
    value: String,
) -> Result<vltava_client::DeliveryFuture, vltava_client::ClientError> {
    producer.send(ProducerRecord::new(topic, value.into_bytes()).key(key.into_bytes())).await
}

/// Records an acknowledgement or a failure.
pub(crate) fn record(
    env: &Env,
    name: &str,
    value: String,
    result: Result<vltava_client::RecordMetadata, vltava_client::ClientError>,
) {
    let t = env.history.now();
    env.history.push(match result {
        Ok(meta) => Event::Ack { t, client: name.to_string(), value, partition: meta.partition, offset: meta.offset },
        Err(e) => Event::SendFailed { t, client: name.to_string(), value, error: e.to_string() },
    });
}
