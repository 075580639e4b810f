#!/usr/bin/env python3
"""An OTLP/gRPC sink for benchmarks: accepts every trace, metrics and logs export and drops it.

Usage: otlp-sink.py PORT. Needs grpcio only: requests are taken as raw bytes, and an empty
Export*ServiceResponse encodes as zero bytes. Prints the number of exports and bytes received
every 5 seconds, and once more on exit.
"""
import signal
import sys
import threading
from concurrent import futures

import grpc

SERVICES = [
    "opentelemetry.proto.collector.trace.v1.TraceService",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "opentelemetry.proto.collector.logs.v1.LogsService",
]
stats = {"exports": 0, "bytes": 0}
lock = threading.Lock()


def export(request: bytes, _context) -> bytes:
    with lock:
        stats["exports"] += 1
        stats["bytes"] += len(request)
    return b""


def main() -> None:
    port = int(sys.argv[1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = [
        grpc.method_handlers_generic_handler(
            name, {"Export": grpc.unary_unary_rpc_method_handler(export)}
        )
        for name in SERVICES
    ]
    server.add_generic_rpc_handlers(handlers)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    while not done.wait(5):
        print(f"exports {stats['exports']} bytes {stats['bytes']}", flush=True)
    print(f"exports {stats['exports']} bytes {stats['bytes']}", flush=True)
    server.stop(1)


if __name__ == "__main__":
    main()
