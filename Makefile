# Vltava: `make dev` runs a one-process server on 127.0.0.1:7070; `make test` runs the whole suite.
#
# Builds share one warm target directory outside the checkout (RocksDB's C++ takes ~20 minutes
# to build from scratch on 2 cores); override CARGO_TARGET_DIR to put it elsewhere.
CARGO_TARGET_DIR ?= $(HOME)/.cache/vltava-target
export CARGO_TARGET_DIR
CARGO ?= cargo
LISTEN ?= 127.0.0.1:7070
DATA_DIR ?= ./data/dev

.PHONY: dev test test-python fuzz-smoke chaos-smoke chaos lint fmt deps test-deps build release bench perf perf-groups perf-transactions perf-cleaner perf-kafka clean-data docker cluster-up cluster-down

## Install the system packages the build needs (libclang for RocksDB's bindgen).
deps:
	@./deploy/install-deps.sh

## Install what the tests need beyond the build (kcat for the Kafka protocol tests).
test-deps: deps
	@./deploy/install-test-deps.sh

## Run `vltava dev` (release build) on $(LISTEN) with data in $(DATA_DIR).
dev: deps
	$(CARGO) run --release -p vltava-cli --bin vltava -- dev --listen $(LISTEN) --data-dir $(DATA_DIR)

## The full test suite: unit, storage, SDK, CLI and end-to-end tests against real processes.
test: test-deps
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc
	$(MAKE) test-python
	$(MAKE) fuzz-smoke
	$(MAKE) chaos-smoke

## Every fuzz target (fuzz/) over its committed inputs plus 10,000 new ones from libFuzzer seed 1
## (docs/reliability.md).
fuzz-smoke:
	./deploy/fuzz.sh smoke 10000

## Short vltava-chaos runs (every kind of fault) that must find nothing, and a run on a build that
## breaks acks=all on purpose that must report lost writes. Needs root (network namespaces).
chaos-smoke:
	./deploy/chaos-smoke.sh

## The figure docs/reliability.md quotes: 100 chaos runs of a minute on the release build.
chaos: release
	$(CARGO) build --release -p vltava-chaos
	$(CARGO_TARGET_DIR)/release/vltava-chaos --runs 100 --duration 60s --out chaos-runs

## The Python example (examples/python) against a `vltava local-cluster` of the debug binary the
## cargo tests built: a venv in ~/.cache/vltava-py-venv, grpcio stubs generated from proto/.
test-python:
	./examples/python/run-test.sh

## Formatting, lints and the import-cycle check, as CI runs them.
lint: deps
	python3 deploy/check-import-cycles.py
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release -p vltava-cli --bin vltava

## Criterion benchmarks of the storage engine.
bench: deps
	$(CARGO) bench -p vltava-storage

## End-to-end throughput against a release `vltava dev` (see docs/benchmarks.md).
perf: release
	./deploy/perf.sh

## The group coordinator: rebalance time and offset commits against a release local-cluster.
perf-groups: release
	./deploy/perf-groups.sh

## Exactly-once: idempotence on/off, transactional throughput and commits/s (release local-cluster).
perf-transactions: release
	./deploy/perf-transactions.sh

## What the log cleaner costs producers: keyed produce to a delete vs a compacted topic (release dev).
perf-cleaner: release
	./deploy/perf-cleaner.sh

## Kafka clients (kcat, librdkafka) beside `vltava perf` over gRPC, same run (docs/benchmarks.md).
perf-kafka: release test-deps
	./deploy/perf-kafka.sh

clean-data:
	rm -rf ./data

## Docker: `make docker` builds vltava:latest FROM scratch (the release binary and the shared
## libraries ldd names); `make cluster-up` / `cluster-down` run docker-compose.yml (3 controllers,
## 3 brokers, gateway on 127.0.0.1:7070) as compose project $(COMPOSE_PROJECT).
## deploy/docker/smoke.sh tests it end to end.
COMPOSE ?= docker-compose
COMPOSE_PROJECT ?= vltava

docker: release
	VLTAVA_BIN=$(CARGO_TARGET_DIR)/release/vltava ./deploy/docker/build-image.sh

cluster-up:
	$(COMPOSE) -p $(COMPOSE_PROJECT) up -d

cluster-down:
	$(COMPOSE) -p $(COMPOSE_PROJECT) down
