"""Unmodified Kafka clients (confluent-kafka, which bundles librdkafka, and kafka-python) driven
by crates/cli/tests/kafka_python.rs against Vltava's Kafka listener. Each subcommand prints JSON
lines on stdout: events as they happen, then one result."""

import argparse
import json
import sys
import time
import uuid


def emit(**fields):
    print(json.dumps(fields), flush=True)


def text(b):
    return None if b is None else b.decode()


# --- confluent-kafka ---------------------------------------------------------------------------

def produce(args):
    from confluent_kafka import Producer

    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",  # Kafka's Java default, which the Vltava SDK uses too
        "linger.ms": 5,
        "compression.type": args.compression,
        "message.timeout.ms": 60000,
    })
    delivered, failed = [], []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            delivered.append([text(msg.key()), text(msg.value()), msg.partition(), msg.offset()])

    for i in range(args.count):
        key = f"key-{i % args.keys}"
        p.produce(args.topic, key=key, value=f"{args.prefix}{i}", on_delivery=on_delivery)
        if i % 1000 == 0:
            p.poll(0)
        if args.pace_ms:
            time.sleep(args.pace_ms / 1000)
            p.poll(0)
    remaining = p.flush(60)
    emit(result="produced", delivered=delivered, failed=failed, unflushed=remaining)


def consume(args):
    from confluent_kafka import Consumer, KafkaError

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": args.isolation,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "client.id": args.name,
    })
    assigned = []

    def on_assign(consumer, partitions):
        assigned[:] = sorted(p.partition for p in partitions)
        emit(event="assigned", name=args.name, partitions=assigned)

    c.subscribe(args.topic.split(","), on_assign=on_assign)
    records, last = [], time.time()
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            if args.expect and len(records) >= args.expect:
                break
            if args.idle and records and time.time() - last > args.idle:
                break
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            emit(event="error", error=str(msg.error()))
            continue
        records.append([msg.topic(), msg.partition(), msg.offset(), text(msg.key()), text(msg.value()), msg.timestamp()[1]])
        last = time.time()
        c.commit(message=msg, asynchronous=False)
    committed = [[tp.partition, tp.offset] for tp in c.committed(c.assignment(), timeout=10)] if c.assignment() else []
    c.close()
    emit(result="consumed", name=args.name, records=records, assigned=assigned, committed=committed)


def transactions(args):
    from confluent_kafka import Producer

    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.transactional_id,
        "transaction.timeout.ms": 30000,
    })
    p.init_transactions(30)
    topics = args.topic.split(",")
    outcomes = []
    for txn, (n, commit) in enumerate([(10, True), (5, False), (3, True)]):
        p.begin_transaction()
        for t in topics:
            for i in range(n):
                p.produce(t, key=f"k{i}", value=f"txn{txn}-{'commit' if commit else 'abort'}-{i}")
        if commit:
            p.commit_transaction(30)
        else:
            p.flush(30)
            p.abort_transaction(30)
        outcomes.append([txn, n, commit])
    emit(result="transactions", outcomes=outcomes)


def admin(args):
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    a = AdminClient({"bootstrap.servers": args.bootstrap})
    out = {}
    futures = a.create_topics([NewTopic(args.topic, num_partitions=3, replication_factor=1, config={"retention.ms": "3600000"})])
    futures[args.topic].result(30)
    out["created"] = True
    md = a.list_topics(timeout=30)
    out["partitions"] = len(md.topics[args.topic].partitions)
    out["brokers"] = sorted(b.id for b in md.brokers.values())
    resource = ConfigResource(ConfigResource.Type.TOPIC, args.topic)
    configs = a.describe_configs([resource])[resource].result(30)
    out["retention.ms"] = configs["retention.ms"].value
    out["retention.ms.default"] = configs["retention.ms"].is_default
    out["segment.bytes.default"] = configs["segment.bytes"].is_default
    altered = ConfigResource(ConfigResource.Type.TOPIC, args.topic, set_config={"retention.ms": "7200000", "cleanup.policy": "compact"})
    a.alter_configs([altered])[altered].result(30)
    configs = a.describe_configs([resource])[resource].result(30)
    out["after_alter"] = {k: configs[k].value for k in ("retention.ms", "cleanup.policy")}
    bad = a.create_topics([NewTopic(args.topic, num_partitions=1, replication_factor=1)])[args.topic]
    try:
        bad.result(30)
        out["duplicate"] = "created"
    except Exception as e:  # noqa: BLE001: the test asserts the error's name
        out["duplicate"] = e.args[0].name()
    a.delete_topics([args.topic])[args.topic].result(30)
    out["deleted"] = args.topic not in a.list_topics(timeout=30).topics
    emit(result="admin", **out)


# --- kafka-python ------------------------------------------------------------------------------

def kp_admin(args):
    from kafka.admin import KafkaAdminClient, NewTopic

    a = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="kafka-python-admin")
    a.create_topics([NewTopic(name=args.topic, num_partitions=args.partitions, replication_factor=1)])
    topics = a.list_topics()
    a.close()
    emit(result="kp_admin", topics=sorted(topics))


def kp_produce(args):
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all", retries=5,
                      key_serializer=str.encode, value_serializer=str.encode)
    futures = [p.send(args.topic, key=f"key-{i % args.keys}", value=f"{args.prefix}{i}") for i in range(args.count)]
    p.flush(60)
    delivered = []
    for i, f in enumerate(futures):
        md = f.get(timeout=60)
        delivered.append([f"key-{i % args.keys}", f"{args.prefix}{i}", md.partition, md.offset])
    p.close()
    emit(result="produced", delivered=delivered, failed=[], unflushed=0)


def kp_consume(args):
    from kafka import KafkaConsumer

    c = KafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=int(args.idle * 1000))
    records = []
    deadline = time.time() + args.timeout
    for msg in c:
        records.append([msg.topic, msg.partition, msg.offset, text(msg.key), text(msg.value), msg.timestamp])
        if len(records) >= args.expect or time.time() > deadline:
            break
    c.commit()
    c.close()
    emit(result="consumed", name=args.name, records=records, assigned=[], committed=[])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="t")
    ap.add_argument("--group", default=f"g-{uuid.uuid4()}")
    ap.add_argument("--name", default="c")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--prefix", default="v")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--idle", type=float, default=0)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--pace-ms", type=float, default=0)
    ap.add_argument("--compression", default="none")
    ap.add_argument("--isolation", default="read_committed")
    ap.add_argument("--transactional-id", default="tx")
    args = ap.parse_args()
    commands = {
        "produce": produce, "consume": consume, "transactions": transactions, "admin": admin,
        "kp-admin": kp_admin, "kp-produce": kp_produce, "kp-consume": kp_consume,
    }
    commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
