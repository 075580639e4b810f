#!/usr/bin/env python3
"""One member of a consumer group, as a process of its own: a managed Consume stream through the
gateway (test_roundtrip.py starts two of these to check that they share a group's partitions).

    VLTAVA_PB_DIR=./vltava_pb python group_member.py GATEWAY TOPIC GROUP IDLE_SECONDS

Prints one JSON object per line, flushed at once: {"assignment": [partitions...]} whenever the
group changes the stream's partitions, {"record": [partition, offset, value]} per record. Exits
once it has owned partitions and then received nothing for IDLE_SECONDS; leaving the stream
commits what it delivered (auto-commit) and leaves the group.
"""

import json
import os
import queue
import sys
import threading

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("VLTAVA_PB_DIR", os.path.join(HERE, "vltava_pb")))

from vltava.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402


def main() -> int:
    gateway, topic, group, idle = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    channel = grpc.insecure_channel(gateway)
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    request = gateway_pb2.ConsumeRequest(
        topic=topic,
        group_id=group,
        auto_offset_reset=gateway_pb2.OFFSET_RESET_EARLIEST,
        auto_commit=True,
        auto_commit_interval_ms=200,
    )
    stream = stub.Consume(request, timeout=120)
    messages: queue.Queue = queue.Queue()

    def read():
        try:
            for message in stream:
                messages.put(message)
        except grpc.RpcError as err:
            messages.put(err)

    threading.Thread(target=read, daemon=True).start()
    assigned = False
    while True:
        try:
            message = messages.get(timeout=idle if assigned else 60)
        except queue.Empty:
            break
        if isinstance(message, grpc.RpcError):
            if message.code() != grpc.StatusCode.CANCELLED:
                print(json.dumps({"error": str(message)}), flush=True)
                return 1
            break
        if message.HasField("assignment"):
            # An empty share (partitions still held by another member) is not yet a start.
            assigned = assigned or bool(message.assignment.partitions)
            print(json.dumps({"assignment": sorted(message.assignment.partitions)}), flush=True)
        else:
            for r in message.records.records:
                print(json.dumps({"record": [r.partition, r.offset, r.value.decode()]}), flush=True)
    stream.cancel()
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
