//! A `read_committed` reader of every partition from the beginning, outside any group: what it
//! reads is checked for aborted records and for offsets holding other values than elsewhere.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use vltava_client::Consumer;

use super::{Env, consumer_config};
use crate::history::Event;

/// Reads until aborted; a reader that fails resumes where the last one stopped.
pub async fn run(env: Arc<Env>, name: String, _stop: watch::Receiver<bool>) {
    let mut resume: Vec<(vltava_client::TopicPartition, i64)> = Vec::new();
    loop {
        let mut consumer = match Consumer::connect(consumer_config(&env, None)).await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if consumer.assign_topic(&env.topic).await.is_err() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        for (tp, offset) in &resume {
            let _ = consumer.seek(tp, *offset);
        }
        let mut failures = 0;
        while failures < 20 {
            match consumer.poll(Duration::from_millis(500)).await {
                Ok(records) => {
                    failures = 0;
                    for r in records {
                        env.history.push(Event::Read {
                            t: env.history.now(),
                            client: name.clone(),
                            group: false,
                            committed: true,
                            partition: r.partition,
                            offset: r.offset,
                            value: String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                        });
                    }
                }
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        resume = consumer.positions().into_iter().map(|(tp, p)| (tp, p.offset)).collect();
    }
}
