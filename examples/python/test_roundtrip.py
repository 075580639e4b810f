#!/usr/bin/env python3
"""End-to-end test of the gateway from Python (plain unittest; run-test.sh starts a cluster for it).

    VLTAVA_GATEWAY=127.0.0.1:7070 VLTAVA_PB_DIR=./vltava_pb python test_roundtrip.py

Checks that what is published through GatewayService comes back exactly (keys, values, null values,
headers, order per partition) through Read and Consume, that keyed records land where Kafka's
murmur2 partitioner puts them, managed group subscriptions, committed offsets, error codes, the
standard health service and server reflection. Exits non-zero when anything fails.
"""

import json
import os
import subprocess
import sys
import threading
import time
import unittest
import uuid

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("VLTAVA_PB_DIR", os.path.join(HERE, "vltava_pb")))

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2  # noqa: E402

from vltava.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from vltava.v1 import common_pb2  # noqa: E402
from vltava.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
from vltava.v1 import groups_pb2, groups_pb2_grpc  # noqa: E402

GATEWAY = os.environ.get("VLTAVA_GATEWAY", "127.0.0.1:7070")
PARTITIONS = 3
TIMEOUT = 15.0  # seconds, for each unary call
STREAM_TIMEOUT = 60.0  # seconds, for each Consume stream


# --- Kafka's default partitioner, written out in Python --------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2` (seed 0x9747b28c), as a signed 32-bit int like Java's."""
    m = 0x5BD1E995
    r = 24
    mask = 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = data[length - length % 4 :]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(v: int) -> int:
    """Kafka's `Utils.toPositive`: clears the sign bit (not abs)."""
    return v & 0x7FFFFFFF


def partition_for_key(key: bytes, partitions: int) -> int:
    return to_positive(murmur2(key)) % partitions


# --- helpers ----------------------------------------------------------------------------------


def metadata_value(err: grpc.RpcError, name: str):
    for key, value in err.trailing_metadata() or ():
        if key == name:
            return value
    return None


def error_code_name(err: grpc.RpcError) -> str:
    """The error name in `vltava-error-code`, e.g. `UNKNOWN_TOPIC_OR_PARTITION`."""
    return metadata_value(err, "vltava-error-code") or ""


def error_detail(err: grpc.RpcError):
    """The `ErrorDetail` a failed call carries in its status details, if any."""
    raw = metadata_value(err, "grpc-status-details-bin")
    if not raw:
        return None
    detail = common_pb2.ErrorDetail()
    detail.ParseFromString(raw)
    return detail


def code_name(code: int) -> str:
    return common_pb2.ErrorCode.Name(code).removeprefix("ERROR_CODE_")


def as_tuple(record):
    """What a record carries, comparable between a published `Record` and a `ConsumedRecord`."""
    return (
        record.key if record.HasField("key") else None,
        record.value if record.HasField("value") else None,
        [(h.key, h.value) for h in record.headers],
    )


def wait_for_leaders(admin, topic: str, partitions: int) -> None:
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        try:
            desc = admin.DescribeTopic(admin_pb2.DescribeTopicRequest(name=topic), timeout=TIMEOUT).topic
            last = [(p.partition, p.leader) for p in desc.partitions]
            if len(desc.partitions) == partitions and all(p.leader >= 0 for p in desc.partitions):
                return
        except grpc.RpcError as err:
            last = f"{err.code()}: {err.details()}"
        time.sleep(0.2)
    raise AssertionError(f"topic {topic} did not get a leader for every partition within 30 s: {last}")


def consume_until(stream, expected: set, seen: list, assignments: list) -> None:
    """Reads `stream` until every (partition, offset) of `expected` has arrived, then cancels it."""
    missing = set(expected)
    try:
        for message in stream:
            if message.HasField("assignment"):
                assignments.append(message.assignment)
                continue
            for r in message.records.records:
                seen.append(r)
                missing.discard((r.partition, r.offset))
            if not missing:
                return
    finally:
        stream.cancel()
    raise AssertionError(f"the stream ended with {len(missing)} records missing")


class AssignmentWatcher:
    """Reads a managed Consume stream in a thread, keeping its latest Assignment."""

    def __init__(self, stream):
        self.stream = stream
        self.assignments = []
        self.error = None
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for message in self.stream:  # records are read and dropped
                if message.HasField("assignment"):
                    with self.changed:
                        self.assignments.append(message.assignment)
                        self.changed.notify_all()
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self.error = err
        with self.changed:
            self.changed.notify_all()

    def latest(self):
        with self.changed:
            return self.assignments[-1] if self.assignments else None

    def partitions(self) -> set:
        latest = self.latest()
        return set(latest.partitions) if latest else set()

    def wait_for(self, predicate, timeout: float = 30.0):
        """Waits until the latest assignment's partitions satisfy `predicate`; returns it."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                if self.assignments and predicate(set(self.assignments[-1].partitions)):
                    return self.assignments[-1]
                if self.error is not None or not self.thread.is_alive():
                    raise AssertionError(f"the stream ended: {self.error}; assignments {self.assignments}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such assignment within {timeout} s; got {self.assignments}")
                self.changed.wait(left)

    def stop(self):
        self.stream.cancel()
        self.thread.join(timeout=10)


# --- the test ---------------------------------------------------------------------------------


class KafkaPartitioner(unittest.TestCase):
    """The Python murmur2 above is Kafka's (needs no server)."""

    def test_murmur2_matches_kafka(self):
        # Kafka's UtilsTest.testMurmur2 vectors.
        vectors = {
            b"21": -973932308,
            b"foobar": -790332482,
            b"a-little-bit-long-string": -985981536,
            b"a-little-bit-longer-string": -1486304829,
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
            b"abc": 479470107,
        }
        for data, expected in vectors.items():
            self.assertEqual(murmur2(data), expected, data)
        self.assertEqual(to_positive(-1), 0x7FFFFFFF)
        self.assertEqual(to_positive(-(1 << 31)), 0)
        self.assertEqual(partition_for_key(b"foobar", 10), 1357151166 % 10)


class GatewayRoundTrip(unittest.TestCase):
    topic: str

    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(GATEWAY)
        grpc.channel_ready_future(cls.channel).result(timeout=TIMEOUT)
        cls.admin = admin_pb2_grpc.AdminServiceStub(cls.channel)
        cls.gateway = gateway_pb2_grpc.GatewayServiceStub(cls.channel)
        cls.groups = groups_pb2_grpc.GroupServiceStub(cls.channel)
        cls.run_id = uuid.uuid4().hex[:8]
        cls.topic = f"py-roundtrip-{cls.run_id}"
        cls.admin.CreateTopic(admin_pb2.CreateTopicRequest(name=cls.topic, partitions=PARTITIONS), timeout=TIMEOUT)
        wait_for_leaders(cls.admin, cls.topic, PARTITIONS)
        cls._published = None

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    @classmethod
    def _publish(cls):
        """Publishes the test's records once; the tests that need them share them."""
        records = []
        for i in range(30):
            records.append(
                gateway_pb2.Record(
                    key=f"customer-{i % 7}".encode(),
                    value=f"event {i}".encode() + bytes([0, 255, i]),  # binary-safe
                    headers=[
                        gateway_pb2.Header(key="seq", value=str(i).encode()),
                        gateway_pb2.Header(key="trace", value=b""),  # empty header value
                        gateway_pb2.Header(key="seq", value=b"again"),  # repeated header name, order kept
                    ],
                )
            )
        records.append(gateway_pb2.Record(key=b"customer-3"))  # null value (tombstone)
        records.append(gateway_pb2.Record(key=b"customer-4", value=b""))  # empty, not null
        records.append(gateway_pb2.Record(key=b"", value=b"empty key"))  # empty key, not absent
        for i in range(6):
            records.append(gateway_pb2.Record(value=f"unkeyed {i}".encode()))  # placed by the gateway
        records.append(gateway_pb2.Record(value=b"pinned", partition=2))  # explicit partition
        records.append(gateway_pb2.Record(key=b"stamped", value=b"t", timestamp_ms=1_700_000_000_123))

        response = cls.gateway.Publish(
            gateway_pb2.PublishRequest(topic=cls.topic, records=records), timeout=TIMEOUT
        )
        cls.publish_result_count = len(response.results)
        failed = [(i, code_name(r.error_code), r.error_message) for i, r in enumerate(response.results) if r.error_code]
        if failed:
            raise AssertionError(f"records failed to publish: {failed}")
        return list(zip(records, response.results))

    @property
    def published(self):
        """(Record, PublishResult) pairs, in request order."""
        cls = type(self)
        if cls._published is None:
            cls._published = cls._publish()
        return cls._published

    def expected_by_partition(self):
        out = {p: [] for p in range(PARTITIONS)}
        for record, result in self.published:
            out[result.partition].append((result.offset, as_tuple(record)))
        return out

    # -- Publish --

    def test_publish_results(self):
        published = self.published
        self.assertEqual(self.publish_result_count, len(published), "one result per record")
        for record, result in published:
            self.assertEqual(result.error_code, common_pb2.ERROR_CODE_NONE, result.error_message)
            self.assertIn(result.partition, range(PARTITIONS))
            self.assertGreaterEqual(result.offset, 0)
            if record.HasField("partition"):
                self.assertEqual(result.partition, record.partition, "explicit partition kept")
            elif record.HasField("key"):
                self.assertEqual(
                    result.partition,
                    partition_for_key(record.key, PARTITIONS),
                    f"key {record.key!r} is placed by murmur2, as Kafka places it",
                )
            if record.timestamp_ms:
                self.assertEqual(result.timestamp_ms, record.timestamp_ms)
            else:
                self.assertGreater(result.timestamp_ms, 1_600_000_000_000, "stamped by the gateway")
        # Offsets grow in request order within each partition, without gaps (a new topic).
        for partition, entries in self.expected_by_partition().items():
            offsets = [offset for offset, _ in entries]
            self.assertEqual(offsets, list(range(len(offsets))), f"partition {partition}")

    # -- Read --

    def read_all(self, partition: int, until: int):
        """Reads `partition` from the earliest offset until `until` (exclusive)."""
        records, offset = [], -2
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            request = gateway_pb2.ReadRequest(
                partitions=[gateway_pb2.ReadPartition(topic=self.topic, partition=partition, offset=offset)],
                max_wait_ms=500,
                max_records=7,  # several round trips
            )
            (part,) = self.gateway.Read(request, timeout=TIMEOUT).partitions
            self.assertEqual(part.error_code, common_pb2.ERROR_CODE_NONE, part.error_message)
            self.assertEqual((part.topic, part.partition), (self.topic, partition))
            self.assertLessEqual(len(part.records), 7)
            records.extend(part.records)
            if part.records:
                self.assertEqual(part.next_offset, part.records[-1].offset + 1)
            offset = part.next_offset
            if offset >= until:
                self.assertEqual(part.high_watermark, until)
                self.assertEqual(part.log_start_offset, 0)
                return records
        self.fail(f"partition {partition}: read only up to offset {offset} of {until} in 30 s")

    def test_read_returns_every_record_exactly(self):
        for partition, expected in self.expected_by_partition().items():
            got = self.read_all(partition, len(expected))
            self.assertEqual(
                [(r.offset, as_tuple(r)) for r in got],
                expected,
                f"partition {partition}: same records, same order",
            )
            for r in got:
                self.assertEqual(r.topic, self.topic)
                self.assertEqual(r.partition, partition)
        stamped = [r for rec, r in self.published if rec.key == b"stamped"][0]
        (part,) = self.gateway.Read(
            gateway_pb2.ReadRequest(
                partitions=[
                    gateway_pb2.ReadPartition(topic=self.topic, partition=stamped.partition, offset=stamped.offset)
                ],
                max_records=1,
            ),
            timeout=TIMEOUT,
        ).partitions
        self.assertEqual(part.records[0].timestamp_ms, 1_700_000_000_123, "creation time kept")

    def test_read_several_partitions_in_one_call(self):
        request = gateway_pb2.ReadRequest(
            partitions=[gateway_pb2.ReadPartition(topic=self.topic, partition=p, offset=-2) for p in (2, 0, 1)],
            max_wait_ms=100,
        )
        parts = self.gateway.Read(request, timeout=TIMEOUT).partitions
        self.assertEqual([p.partition for p in parts], [2, 0, 1], "one entry per partition, in request order")
        expected = self.expected_by_partition()
        for part in parts:
            self.assertEqual(part.error_code, common_pb2.ERROR_CODE_NONE, part.error_message)
            self.assertEqual(part.high_watermark, len(expected[part.partition]))
            # One call need not return everything, but what it returns is a prefix, in order.
            self.assertEqual(
                [(r.offset, as_tuple(r)) for r in part.records], expected[part.partition][: len(part.records)]
            )

    # -- Consume --

    def test_consume_stream_from_earliest(self):
        stream = self.gateway.Consume(
            gateway_pb2.ConsumeRequest(topic=self.topic, auto_offset_reset=gateway_pb2.OFFSET_RESET_EARLIEST),
            timeout=STREAM_TIMEOUT,
        )
        seen, assignments = [], []
        consume_until(stream, {(r.partition, r.offset) for _, r in self.published}, seen, assignments)
        expected = self.expected_by_partition()
        for partition in range(PARTITIONS):
            got = [(r.offset, as_tuple(r)) for r in seen if r.partition == partition]
            self.assertEqual(got, expected[partition], f"partition {partition}: exactly once, in order")

    def test_consume_only_named_partitions(self):
        stream = self.gateway.Consume(
            gateway_pb2.ConsumeRequest(
                topic=self.topic, partitions=[1], auto_offset_reset=gateway_pb2.OFFSET_RESET_EARLIEST
            ),
            timeout=STREAM_TIMEOUT,
        )
        seen, assignments = [], []
        consume_until(stream, {(1, offset) for offset, _ in self.expected_by_partition()[1]}, seen, assignments)
        self.assertEqual({r.partition for r in seen}, {1})

    def test_managed_consume_gets_an_assignment_then_the_records(self):
        group = f"py-group-{self.run_id}"
        stream = self.gateway.Consume(
            gateway_pb2.ConsumeRequest(
                topic=self.topic, group_id=group, auto_offset_reset=gateway_pb2.OFFSET_RESET_EARLIEST
            ),
            timeout=STREAM_TIMEOUT,
        )
        first = next(stream)
        self.assertTrue(first.HasField("assignment"), f"the first message is an assignment, got {first}")
        self.assertEqual(first.assignment.topic, self.topic)
        self.assertEqual(list(first.assignment.partitions), list(range(PARTITIONS)), "the only member gets all")
        seen, assignments = [], []
        consume_until(stream, {(r.partition, r.offset) for _, r in self.published}, seen, assignments)
        expected = self.expected_by_partition()
        for partition in range(PARTITIONS):
            got = [(r.offset, as_tuple(r)) for r in seen if r.partition == partition]
            self.assertEqual(got, expected[partition], f"partition {partition}")

    def test_group_rebalances_when_streams_come_and_go(self):
        group = f"py-rebalance-{self.run_id}"
        request = gateway_pb2.ConsumeRequest(
            topic=self.topic, group_id=group, auto_offset_reset=gateway_pb2.OFFSET_RESET_EARLIEST
        )
        everything = set(range(PARTITIONS))
        a = AssignmentWatcher(self.gateway.Consume(request, timeout=STREAM_TIMEOUT))
        b = None
        try:
            first = a.wait_for(lambda p: p == everything)
            b = AssignmentWatcher(self.gateway.Consume(request, timeout=STREAM_TIMEOUT))
            # The group settles with the partitions split between the two streams.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                pa, pb = a.partitions(), b.partitions()
                if pa and pb and not pa & pb and pa | pb == everything:
                    break
                time.sleep(0.05)
            else:
                self.fail(f"no split of the partitions between two streams: {a.partitions()} / {b.partitions()}")
            # The shrunk share comes with a new member epoch once the revocation is acknowledged.
            deadline = time.monotonic() + 30
            while a.latest().generation <= first.generation and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertGreater(a.latest().generation, first.generation)
            self.assertTrue(a.latest().member_id, "an assignment names the stream's member id")
            b.stop()  # B leaves: A gets everything back
            b = None
            a.wait_for(lambda p: p == everything)
        finally:
            a.stop()
            if b is not None:
                b.stop()

    def test_two_processes_share_a_group(self):
        """Two Python processes, each a managed Consume stream of one group: they split the
        partitions, and together read every record exactly once."""
        topic = f"py-shared-{self.run_id}"
        group = f"py-shared-group-{self.run_id}"
        self.admin.CreateTopic(admin_pb2.CreateTopicRequest(name=topic, partitions=4), timeout=TIMEOUT)
        wait_for_leaders(self.admin, topic, 4)
        script = os.path.join(HERE, "group_member.py")
        members = [
            subprocess.Popen(
                [sys.executable, script, GATEWAY, topic, group, "6"],
                stdout=subprocess.PIPE,
                text=True,
                env=dict(os.environ),
            )
            for _ in range(2)
        ]
        outputs = [[] for _ in members]
        readers = [
            threading.Thread(target=lambda p=p, out=out: out.extend(p.stdout), daemon=True)
            for p, out in zip(members, outputs)
        ]
        for reader in readers:
            reader.start()
        try:

            def latest_assignment(out):
                shares = [json.loads(line)["assignment"] for line in list(out) if '"assignment"' in line]
                return set(shares[-1]) if shares else set()

            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                a, b = (latest_assignment(out) for out in outputs)
                if a and b and not a & b and a | b == {0, 1, 2, 3}:
                    break
                time.sleep(0.1)
            else:
                self.fail(f"the two processes never split the partitions: {outputs}")
            records = [gateway_pb2.Record(value=f"shared-{i}".encode(), partition=i % 4) for i in range(40)]
            self.gateway.Publish(gateway_pb2.PublishRequest(topic=topic, records=records), timeout=TIMEOUT)
            for p in members:
                self.assertEqual(p.wait(timeout=90), 0, f"a member failed: {outputs}")
        finally:
            for p in members:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for reader in readers:
            reader.join(timeout=10)
        values = [[json.loads(line)["record"][2] for line in out if '"record"' in line] for out in outputs]
        self.assertTrue(values[0] and values[1], f"each process read a share: {values}")
        everything = values[0] + values[1]
        self.assertEqual(sorted(everything), sorted(f"shared-{i}" for i in range(40)), "every record exactly once")

    # -- GroupService --

    def test_commit_and_fetch_offsets(self):
        group = f"py-commit-{self.run_id}"
        committed = self.groups.CommitOffsets(
            groups_pb2.CommitOffsetsRequest(
                group_id=group,
                offsets=[groups_pb2.OffsetCommit(topic=self.topic, partition=0, offset=5, metadata="from python")],
            ),
            timeout=TIMEOUT,
        )
        self.assertEqual(
            [(r.topic, r.partition, r.error_code) for r in committed.results],
            [(self.topic, 0, common_pb2.ERROR_CODE_NONE)],
        )
        fetched = self.groups.FetchOffsets(
            groups_pb2.FetchOffsetsRequest(
                group_id=group,
                partitions=[
                    common_pb2.TopicPartition(topic=self.topic, partition=0),
                    common_pb2.TopicPartition(topic=self.topic, partition=1),
                ],
            ),
            timeout=TIMEOUT,
        )
        by_partition = {o.partition: o for o in fetched.offsets}
        self.assertEqual(by_partition[0].offset, 5)
        self.assertEqual(by_partition[0].metadata, "from python")
        self.assertEqual(by_partition[1].offset, -1, "never committed")
        groups = self.groups.ListGroups(groups_pb2.ListGroupsRequest(), timeout=TIMEOUT).group_ids
        self.assertIn(group, groups)

    # -- errors --

    def test_topic_already_exists(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.admin.CreateTopic(admin_pb2.CreateTopicRequest(name=self.topic, partitions=1), timeout=TIMEOUT)
        err = ctx.exception
        self.assertEqual(error_code_name(err), "TOPIC_ALREADY_EXISTS")
        self.assertEqual(err.code(), grpc.StatusCode.ALREADY_EXISTS)
        detail = error_detail(err)
        self.assertIsNotNone(detail, "ErrorDetail in the status details")
        self.assertEqual(detail.code, common_pb2.ERROR_CODE_TOPIC_ALREADY_EXISTS)

    def assert_unknown_topic(self, call):
        """The call fails with UNKNOWN_TOPIC_OR_PARTITION, as a status or as per-item error codes."""
        try:
            items = call()
        except grpc.RpcError as err:
            self.assertEqual(error_code_name(err), "UNKNOWN_TOPIC_OR_PARTITION", f"{err.code()}: {err.details()}")
            return
        self.assertTrue(items, "an answer with one entry per item")
        for item in items:
            self.assertEqual(
                code_name(item.error_code), "UNKNOWN_TOPIC_OR_PARTITION", f"per-item error: {item.error_message}"
            )

    def test_unknown_topic_error_code(self):
        missing = f"py-no-such-topic-{self.run_id}"
        self.assert_unknown_topic(
            lambda: self.gateway.Publish(
                gateway_pb2.PublishRequest(topic=missing, records=[gateway_pb2.Record(key=b"k", value=b"v")]),
                timeout=TIMEOUT,
            ).results
        )
        self.assert_unknown_topic(
            lambda: self.gateway.Read(
                gateway_pb2.ReadRequest(partitions=[gateway_pb2.ReadPartition(topic=missing, partition=0, offset=-2)]),
                timeout=TIMEOUT,
            ).partitions
        )
        # A partition that does not exist on an existing topic.
        self.assert_unknown_topic(
            lambda: self.gateway.Read(
                gateway_pb2.ReadRequest(
                    partitions=[gateway_pb2.ReadPartition(topic=self.topic, partition=PARTITIONS, offset=-2)]
                ),
                timeout=TIMEOUT,
            ).partitions
        )
        with self.assertRaises(grpc.RpcError) as ctx:
            self.admin.DescribeTopic(admin_pb2.DescribeTopicRequest(name=missing), timeout=TIMEOUT)
        self.assertEqual(error_code_name(ctx.exception), "UNKNOWN_TOPIC_OR_PARTITION")
        with self.assertRaises(grpc.RpcError) as ctx:
            next(
                iter(
                    self.gateway.Consume(
                        gateway_pb2.ConsumeRequest(topic=missing),
                        timeout=STREAM_TIMEOUT,
                    )
                )
            )
        self.assertEqual(error_code_name(ctx.exception), "UNKNOWN_TOPIC_OR_PARTITION")

    # -- standard services --

    def test_health_check_serving(self):
        health = health_pb2_grpc.HealthStub(self.channel)
        response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        self.assertEqual(response.status, health_pb2.HealthCheckResponse.SERVING)

    def test_reflection_lists_gateway_service(self):
        services = list_services(self.channel)
        for name in ("vltava.v1.GatewayService", "vltava.v1.AdminService", "vltava.v1.GroupService"):
            self.assertIn(name, services)


def list_services(channel) -> list:
    """Service names from server reflection, over `grpc.reflection.v1` or else `v1alpha` (the
    messages of both are the same; grpcio-reflection ships the v1alpha ones)."""
    last = None
    for version in ("v1", "v1alpha"):
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        try:
            responses = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT)
            for response in responses:
                return [s.name for s in response.list_services_response.service]
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            last = err
    raise AssertionError(f"no reflection service: {last}")


def main() -> int:
    print(f"testing the gateway at {GATEWAY}", flush=True)
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    # Errors of a test, not of a setUpClass (whose tests then never run: count those as failed).
    test_errors = [e for e in result.errors if isinstance(e[0], unittest.TestCase)]
    bad = len(result.failures) + len(test_errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - bad - len(result.skipped)
    failed = bad + suite.countTestCases() - result.testsRun
    print(f"python: {passed} passed, {failed} failed")
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
