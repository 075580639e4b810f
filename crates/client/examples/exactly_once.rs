//! Consume-transform-produce, exactly once: reads `input` as a member of a consumer group
//! (read_committed), writes each record's value upper-cased to `output`, and commits the
//! consumed offsets in the same transaction as the output records. A crash anywhere leaves
//! either both (the results and the offsets) or neither: a restarted worker with the same
//! `transactional.id` fences its predecessor, its open transaction is aborted, and it resumes
//! from the committed offsets, so each input's result is in `output` exactly once for
//! read_committed consumers.
//!
//! ```text
//! cargo run -p vltava-client --example exactly_once -- 127.0.0.1:7070 input output
//! ```
//!
//! Arguments: bootstrap address, input topic, output topic, and optionally the group id
//! (default `uppercase`) and the transactional id (default `uppercase-worker-1`; give every
//! worker process its own, stable across its restarts).

use std::time::Duration;

use vltava_client::{
    ClientError, Consumer, ConsumerConfig, IsolationLevel, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, output, rest @ ..] = args.as_slice() else {
        eprintln!("usage: exactly_once BOOTSTRAP INPUT OUTPUT [GROUP] [TRANSACTIONAL_ID]");
        std::process::exit(2);
    };
    let group = rest.first().cloned().unwrap_or_else(|| "uppercase".into());
    let transactional_id = rest.get(1).cloned().unwrap_or_else(|| "uppercase-worker-1".into());

    let producer = Producer::connect(ProducerConfig {
        transactional_id: Some(transactional_id),
        ..ProducerConfig::new(bootstrap.clone())
    })
    .await?;
    // Fences any earlier instance of this worker and aborts what it left open.
    producer.init_transactions().await?;

    let mut consumer = Consumer::connect(ConsumerConfig {
        group_id: Some(group),
        enable_auto_commit: false, // offsets are committed by the transactions
        auto_offset_reset: OffsetReset::Earliest,
        isolation_level: IsolationLevel::ReadCommitted, // never read aborted upstream output
        ..ConsumerConfig::new(bootstrap.clone())
    })
    .await?;
    consumer.subscribe([input.as_str()])?;

    loop {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        if records.is_empty() {
            continue;
        }
        producer.begin_transaction()?;
        let outcome = async {
            for r in &records {
                let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).to_uppercase();
                let mut out = ProducerRecord::new(output.as_str(), value);
                if let Some(key) = &r.key {
                    out = out.key(key.clone());
                }
                let _delivery = producer.send(out).await?;
            }
            let group = consumer.group_metadata().expect("a group member");
            producer.send_offsets_to_transaction(&consumer.positions(), &group).await?;
            producer.commit_transaction().await
        }
        .await;
        match outcome {
            Ok(()) => println!("committed {} record(s)", records.len()),
            Err(ClientError::TransactionAbortable(why)) => {
                // Nothing of this batch counts: abort, and read it again from the committed offsets.
                eprintln!("aborting: {why}");
                producer.abort_transaction().await?;
                let assigned = consumer.assignment();
                let committed = consumer.committed(&assigned).await?;
                for tp in &assigned {
                    match committed.get(tp) {
                        Some(offset) => consumer.seek(tp, *offset)?,
                        None => consumer.seek_to_beginning(std::slice::from_ref(tp))?,
                    }
                }
            }
            // Fenced by a newer instance, or a fatal error: stop.
            Err(e) => return Err(e.into()),
        }
    }
}
