//! A transactional producer: transactions of a few keyed records each, committed or aborted at
//! random; the outcome of each is recorded with its values ([`Event::TxnEnd`]).

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use vltava_client::{Producer, ProducerRecord};

use super::{Env, connect_producer};
use crate::history::{Event, TxnOutcome};

/// Runs transactions until `stop`; a producer whose transaction failed is replaced by a new one
/// with the same transactional id (which fences the old one, as after a crash).
pub async fn run(env: Arc<Env>, name: String, mut stop: watch::Receiver<bool>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(env.seed ^ name.bytes().fold(7u64, |h, b| h * 31 + u64::from(b)));
    let mut n: u64 = 0;
    let mut txn_number = 0u64;
    'producers: while !*stop.borrow() {
        let Some(producer) = connect_producer(&env, &name, false, Some(format!("chaos-{name}")), &mut stop).await
        else {
            return;
        };
        if let Err(e) = producer.init_transactions().await {
            tracing::debug!(client = %name, error = %e, "init_transactions failed; retrying");
            producer.close().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        while !*stop.borrow() {
            let txn = format!("{name}/{txn_number}");
            txn_number += 1;
            if producer.begin_transaction().is_err() {
                producer.close().await;
                continue 'producers;
            }
            let size = rng.random_range(1..=8);
            let mut values = Vec::new();
            let mut deliveries = Vec::new();
            let mut failed = false;
            for _ in 0..size {
                let (key, value) = super::next_send(&env, &name, &mut n, Some(&txn));
                values.push(value.clone());
                match producer.send(ProducerRecord::new(env.topic.as_str(), value.clone()).key(key)).await {
                    Ok(d) => deliveries.push((value, d)),
                    Err(e) => {
                        super::producer::record(&env, &name, value, Err(e));
                        failed = true;
                        break;
                    }
                }
            }
            for (value, delivery) in deliveries {
                let result = delivery.await;
                failed |= result.is_err();
                super::producer::record(&env, &name, value, result);
            }
            let commit = !failed && rng.random_bool(0.7);
            let result = if commit { producer.commit_transaction().await } else { producer.abort_transaction().await };
            let outcome = match (&result, commit) {
                (Ok(()), true) => TxnOutcome::Commit,
                (Ok(()), false) => TxnOutcome::Abort,
                // A failed commit may have reached the coordinator; a failed abort ends aborted
                // all the same (the coordinator aborts it, or its timeout does).
                (Err(_), true) => TxnOutcome::Unknown,
                (Err(_), false) => TxnOutcome::Abort,
            };
            env.history.push(Event::TxnEnd { t: env.history.now(), client: name.clone(), txn, outcome, values });
            if result.is_err() {
                producer.close().await;
                continue 'producers;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(rng.random_range(20..200))) => {}
                _ = stop.changed() => {}
            }
        }
        close(producer).await;
    }
}

async fn close(producer: Producer) {
    let _ = tokio::time::timeout(Duration::from_secs(10), producer.close()).await;
}
