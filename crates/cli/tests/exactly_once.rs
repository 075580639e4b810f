//! Exactly-once delivery of the idempotent producer (issue 14), against a real broker over real
//! sockets: acknowledgements lost on the way back (a proxy drops the broker's answers while
//! its requests still arrive) make the producer retry batches the broker already stored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use vltava_client::{Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord, TopicPartition};
use vltava_testkit::inprocess::TestBroker;
use vltava_testkit::proxy::LossyProxy;

const TOPIC: &str = "t";

/// Acknowledged offset by value (-1: failed).
type Acked = Arc<Mutex<BTreeMap<u64, i64>>>;
/// Delivery errors, in order.
type Errors = Arc<Mutex<Vec<String>>>;

/// Sends `0..` one record per millisecond while the proxy loses every answer for 1.5 s in the
/// middle, then waits for every acknowledgement. Returns the acknowledged offsets by value and
/// the partition's records as stored, in offset order.
async fn produce_through_lost_answers(enable_idempotence: bool) -> (BTreeMap<u64, i64>, Vec<(i64, u64)>) {
    let broker = TestBroker::start(|_| {}).await;
    broker.create_topic(TOPIC, 1, &[]).await;
    let proxy = LossyProxy::start(&broker.addr).await;
    let producer = Producer::connect(ProducerConfig {
        enable_idempotence,
        via_gateway: true,
        linger: Duration::from_millis(2),
        request_timeout: Duration::from_millis(400),
        retry_backoff: Duration::from_millis(50),
        delivery_timeout: Duration::from_secs(60),
        ..ProducerConfig::new(proxy.addr.clone())
    })
    .await
    .unwrap();
    let acked: Acked = Arc::default();
    let errors: Errors = Arc::default();
    let mut n = 0u64;
    send_for(&producer, (&acked, &errors), 300, &mut n).await;
    proxy.lose_answers();
    send_for(&producer, (&acked, &errors), 1_500, &mut n).await;
    proxy.heal();
    send_for(&producer, (&acked, &errors), 300, &mut n).await;
    tokio::time::timeout(Duration::from_secs(60), producer.flush()).await.expect("flush in time").unwrap();
    let acked = acked.lock().clone();
    assert_eq!(acked.len() as u64, n, "every record is resolved");
    let failed: Vec<_> = acked.iter().filter(|(_, o)| **o < 0).map(|(v, _)| *v).collect();
    let first_error = errors.lock().first().cloned();
    assert!(failed.is_empty(), "every record is delivered; {} failed, the first with {first_error:?}", failed.len());

    let mut consumer = Consumer::connect(ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..ConsumerConfig::new(broker.addr.clone())
    })
    .await
    .unwrap();
    consumer.assign(vec![TopicPartition::new(TOPIC, 0)]);
    let end = *acked.values().max().unwrap();
    let mut stored = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stored.last().is_none_or(|(o, _)| *o < end) && tokio::time::Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap().parse().unwrap();
            stored.push((r.offset, v));
        }
    }
    producer.close().await;
    broker.stop().await;
    (acked, stored)
}

/// Sends one record (the next value of `n`) per millisecond for `millis` ms, recording each
/// acknowledged offset.
async fn send_for(producer: &Producer, outcomes: (&Acked, &Errors), millis: u64, n: &mut u64) {
    for _ in 0..millis {
        let (acked, errors, value) = (outcomes.0.clone(), outcomes.1.clone(), *n);
        producer
            .send_with_callback(ProducerRecord::new(TOPIC, value.to_string()).partition(0), move |r| {
                // -1 marks a failed delivery (asserted against below).
                let offset = match r {
                    Ok(m) => m.offset,
                    Err(e) => {
                        errors.lock().push(e.to_string());
                        -1
                    }
                };
                acked.lock().insert(value, offset);
            })
            .await
            .unwrap();
        *n += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_lost_acknowledgements_an_idempotent_producer_should_store_every_record_once_in_order() {
    let (acked, stored) = produce_through_lost_answers(true).await;
    let values: Vec<u64> = stored.iter().map(|(_, v)| *v).collect();
    let expected: Vec<u64> = (0..acked.len() as u64).collect();
    assert_eq!(values, expected, "each record exactly once, in send order");
    for (offset, v) in &stored {
        assert_eq!(acked[v], *offset, "record {v} was acknowledged at the offset it is stored at");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_lost_acknowledgements_without_idempotence_the_retries_are_stored_twice() {
    // The control: the same faults without idempotence duplicate records, so the test above
    // really exercised retries of stored batches.
    let (acked, stored) = produce_through_lost_answers(false).await;
    assert!(stored.len() > acked.len(), "{} stored for {} sent: no retry was stored twice", stored.len(), acked.len());
}
