#!/usr/bin/env python3
"""Vltava from Python: create a topic, publish, read, consume and commit, all through the gateway.

    pip install -r requirements.txt
    ./generate.sh                      # stubs into ./vltava_pb (or set VLTAVA_PB_DIR)
    python quickstart.py [HOST:PORT]   # default: $VLTAVA_GATEWAY, else 127.0.0.1:7071 (`make dev`'s gateway)

Only the gateway's address is needed: it places records on partitions (murmur2 of the key, as
Kafka does), routes every call to the partition's leader and decodes what it reads.
"""

import os
import sys
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("VLTAVA_PB_DIR", os.path.join(HERE, "vltava_pb")))

from vltava.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from vltava.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from vltava.v1 import groups_pb2, groups_pb2_grpc  # noqa: E402

TOPIC = "python-quickstart"
GROUP = "python-quickstart-group"
TIMEOUT = 10.0  # seconds, for every unary call


def error_code(err: grpc.RpcError) -> str:
    """The Kafka-style error name of a failed call, from the `vltava-error-code` metadata."""
    for key, value in err.trailing_metadata() or ():
        if key == "vltava-error-code":
            return value
    return ""


def create_topic(admin: admin_pb2_grpc.AdminServiceStub) -> None:
    try:
        admin.CreateTopic(admin_pb2.CreateTopicRequest(name=TOPIC, partitions=3), timeout=TIMEOUT)
        print(f"created topic {TOPIC} with 3 partitions")
    except grpc.RpcError as err:
        if error_code(err) != "TOPIC_ALREADY_EXISTS":
            raise
        print(f"topic {TOPIC} already exists")
    # Leaders are elected right after creation: wait until every partition has one.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.DescribeTopic(admin_pb2.DescribeTopicRequest(name=TOPIC), timeout=TIMEOUT).topic
        if topic.partitions and all(p.leader >= 0 for p in topic.partitions):
            return
        time.sleep(0.2)
    raise RuntimeError(f"topic {TOPIC} has partitions without a leader")


def publish(gateway: gateway_pb2_grpc.GatewayServiceStub) -> list:
    customers = ["alice", "bob", "carol", "dave"]  # the key: one customer's orders stay in order
    records = [
        gateway_pb2.Record(
            key=customers[i % 4].encode(),
            value=f"order #{i}".encode(),
            headers=[gateway_pb2.Header(key="source", value=b"quickstart.py")],
        )
        for i in range(8)
    ]
    # A record without a value is a tombstone (a null value, not an empty one).
    records.append(gateway_pb2.Record(key=b"alice"))
    response = gateway.Publish(gateway_pb2.PublishRequest(topic=TOPIC, records=records), timeout=TIMEOUT)
    for record, result in zip(records, response.results):
        if result.error_code:  # each record succeeds or fails on its own
            raise RuntimeError(f"record {record.key!r} failed: {result.error_message}")
        print(f"  {record.key.decode()} -> partition {result.partition} offset {result.offset}")
    return list(response.results)


def read_from_earliest(gateway: gateway_pb2_grpc.GatewayServiceStub) -> None:
    request = gateway_pb2.ReadRequest(
        partitions=[gateway_pb2.ReadPartition(topic=TOPIC, partition=p, offset=-2) for p in range(3)],
        max_wait_ms=500,
    )
    for part in gateway.Read(request, timeout=TIMEOUT).partitions:
        print(f"  partition {part.partition}: {len(part.records)} records, high watermark {part.high_watermark}")
        for r in part.records:
            value = r.value.decode() if r.HasField("value") else None
            headers = [(h.key, h.value) for h in r.headers]
            print(f"    offset {r.offset}: key={r.key.decode()} value={value!r} headers={headers}")


def consume(gateway: gateway_pb2_grpc.GatewayServiceStub, groups: groups_pb2_grpc.GroupServiceStub, published: list) -> None:
    """A managed subscription: the stream is a member of the group, which assigns it partitions;
    each starts at the group's committed offset (else at the earliest one). Once every record has
    come back, it commits as the member (the member id and epoch of its latest assignment), then
    leaves."""
    wanted = {(r.partition, r.offset) for r in published}
    request = gateway_pb2.ConsumeRequest(
        topic=TOPIC,
        group_id=GROUP,
        auto_offset_reset=gateway_pb2.OFFSET_RESET_EARLIEST,
    )
    stream = gateway.Consume(request, timeout=30)
    member = None
    try:
        for message in stream:
            if message.HasField("assignment"):
                member = message.assignment
                print(f"  assigned partitions {list(member.partitions)} as member {member.member_id}")
                continue
            for r in message.records.records:
                wanted.discard((r.partition, r.offset))
            print(f"  received {len(message.records.records)} records ({len(wanted)} of ours to go)")
            if not wanted:  # everything this run published has come back
                print("  committing and fetching an offset:")
                commit_and_fetch(groups, published, member)
                break
    finally:
        stream.cancel()  # leaving the group: its partitions go to the group's other streams


def commit_and_fetch(groups: groups_pb2_grpc.GroupServiceStub, results: list, member) -> None:
    # Commit the partition of the last record: the offset committed is the next one to read, as in Kafka.
    last = results[-1]
    committed = groups.CommitOffsets(
        groups_pb2.CommitOffsetsRequest(
            group_id=GROUP,
            offsets=[
                groups_pb2.OffsetCommit(
                    topic=TOPIC, partition=last.partition, offset=last.offset + 1, metadata="quickstart"
                )
            ],
            # A group with members takes commits from its members only (a zombie is refused).
            member_id=member.member_id,
            member_epoch=member.member_epoch,
        ),
        timeout=TIMEOUT,
    )
    for r in committed.results:
        if r.error_code:
            raise RuntimeError(f"commit of {r.topic}[{r.partition}] failed: {r.error_message}")
    fetched = groups.FetchOffsets(groups_pb2.FetchOffsetsRequest(group_id=GROUP), timeout=TIMEOUT)
    for o in fetched.offsets:
        print(f"  {GROUP} {o.topic}[{o.partition}] committed at {o.offset} ({o.metadata!r})")


def main() -> int:
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("VLTAVA_GATEWAY", "127.0.0.1:7071")
    print(f"connecting to the gateway at {address}")
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        gateway = gateway_pb2_grpc.GatewayServiceStub(channel)
        groups = groups_pb2_grpc.GroupServiceStub(channel)

        create_topic(admin)
        print("publishing:")
        results = publish(gateway)
        print("reading every partition from the earliest offset:")
        read_from_earliest(gateway)
        print(f"consuming as group {GROUP}:")
        consume(gateway, groups, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
