#!/usr/bin/env bash
# End-to-end smoke test of the Docker deployment: builds vltava:latest, brings docker-compose.yml
# up (3 controllers, 3 brokers, gateway on 127.0.0.1:7070), then with the host's vltava binary:
# describes the cluster, creates a topic (3 partitions, replication factor 3), produces and
# consumes records with acks=all, kills the broker leading partition 0 with `docker kill`, checks
# that within FAILOVER_TIMEOUT seconds no partition is led by it and that every acknowledged record
# is still there, and finally `docker-compose down -v`.
#
#   deploy/docker/smoke.sh
#
# Environment:
#   VLTAVA_BIN        host binary (default: as build-image.sh finds it)
#   SKIP_BUILD=1      use the existing vltava:latest image instead of rebuilding it
#   KEEP=1            leave the cluster running at the end (then: docker-compose -p vltavasmoke down -v)
#   FAILOVER_TIMEOUT  seconds allowed for the new leaders (default 10)
#
# The compose project is `vltavasmoke`, so `down -v` never touches the volumes of a cluster
# started with `make cluster-up` (project `vltava`); both publish port 7070, so only one runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
project="vltavasmoke"
server="127.0.0.1:${VLTAVA_GATEWAY_PORT:-7070}"
topic="smoke"
failover_timeout="${FAILOVER_TIMEOUT:-10}"

log() { printf '\n== %s\n' "$*" >&2; }
fail() {
    printf '\nSMOKE FAILED: %s\n' "$*" >&2
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if command -v docker-compose >/dev/null; then
    compose_cmd=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
else
    fail "neither docker-compose nor 'docker compose' is installed"
fi
compose() { "${compose_cmd[@]}" -p "$project" -f "$repo/docker-compose.yml" "$@"; }

source "$(dirname "${BASH_SOURCE[0]}")/find-bin.sh"
bin="$(find_vltava_bin)"
[[ -n "$bin" && -x "$bin" ]] || fail "no vltava binary (set VLTAVA_BIN or run 'make release')"
vltava() { "$bin" "$@" --server "$server"; }

cleanup() {
    local status=$?
    if [[ $status -ne 0 ]]; then
        echo "--- last log lines of every container ---" >&2
        compose logs --no-color --tail=25 >&2 || true
    fi
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "KEEP=1: cluster left running; stop it with: ${compose_cmd[*]} -p $project -f $repo/docker-compose.yml down -v" >&2
    else
        log "docker-compose down -v"
        compose down -v --remove-orphans >&2 || true
    fi
    exit $status
}

# --- image and cluster ---------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building vltava:latest from $bin"
    VLTAVA_BIN="$bin" "$here/build-image.sh" >/dev/null
fi
docker image ls vltava:latest --format 'image vltava:latest: {{.Size}} ({{.ID}})' >&2

if (exec 3<>"/dev/tcp/127.0.0.1/${VLTAVA_GATEWAY_PORT:-7070}") 2>/dev/null; then
    fail "something already listens on $server (a 'make cluster-up' or 'vltava dev'?); stop it first"
fi

log "docker-compose up -d (project $project)"
trap cleanup EXIT
compose down -v --remove-orphans >/dev/null 2>&1 || true
started=$(now)
compose up -d

log "waiting for a controller leader and 3 live brokers behind the gateway"
# Ready = a leader and the same 3 live broker registrations (id and epoch) for 2.5 s, longer than
# the broker session timeout (1.5 s): a broker that registered but does not heartbeat yet gets
# fenced and registers again within that window (seen at start-up, see the report).
deadline=$(($(date +%s) + 120))
stable_since="" last=""
while :; do
    brokers=""
    if out="$(vltava cluster describe 2>&1)" && ! grep -q 'controller leader none' <<<"$out"; then
        brokers="$(awk '$1 ~ /^[0-9]+$/ && $4 == "alive" { print $1 "@" $5 }' <<<"$out" | xargs)"
    fi
    if [[ $(wc -w <<<"$brokers") -eq 3 && "$brokers" == "$last" ]]; then
        [[ $(awk -v a="$stable_since" -v b="$(now)" 'BEGIN { print (b - a >= 2.5) }') == 1 ]] && break
    else
        last="$brokers" stable_since="$(now)"
    fi
    [[ $(date +%s) -lt $deadline ]] || fail "cluster not ready after 120 s: $out"
    sleep 0.25
done
echo "cluster ready $(since "$started") s after 'up -d' (3 brokers alive and stable for 2.5 s)" >&2

log "vltava cluster describe --server $server"
vltava cluster describe

# --- topic, produce, consume ---------------------------------------------------------------------
# Partitions led by a broker: awk over `topic describe` (PARTITION LEADER REPLICAS ISR ...).
partitions_table() { awk 'f && NF >= 8 { print } /^PARTITION/ { f = 1 }' <<<"$1"; }

log "vltava topic create $topic --partitions 3 --replication-factor 3"
vltava topic create "$topic" --partitions 3 --replication-factor 3
desc="$(vltava topic describe "$topic")"
echo "$desc"
[[ $(partitions_table "$desc" | wc -l) -eq 3 ]] || fail "topic $topic does not have 3 partitions"
partitions_table "$desc" | awk '$2 == -1 { exit 1 } split($3, r, ",") != 3 { exit 1 }' ||
    fail "a partition of $topic has no leader or not 3 replicas"

# One record per partition at least: keys spread by murmur2, 9 keys cover 3 partitions.
records=9
input="$(for i in $(seq 1 $records); do echo "key-$i:value-$i"; done)"

# Consumes `records` records from $1 (from the beginning) within 15 s; prints them sorted.
consume_all() {
    "$bin" consume "$1" --from-beginning --max-messages "$records" --timeout-ms 15000 --print-key \
        --server "$server" | sort
}
expected="$(tr ':' '\t' <<<"$input" | sort)"

log "vltava produce $topic (acks=all, $records records) and vltava consume $topic --from-beginning"
produced_at=$(now)
printf '%s\n' "$input" | vltava produce "$topic" --key-separator : --acks all
got="$(consume_all "$topic")" || true
if [[ "$got" != "$expected" ]]; then
    vltava topic describe "$topic" || true
    fail "consumed $(grep -c . <<<"$got" || true) of $records records from $topic"
fi
echo "consumed all $records records from $topic ($(since "$produced_at") s for produce + consume)" >&2

# Kafka clients reach every broker's Kafka listener at its advertised address.
if command -v kcat >/dev/null; then
    kafka="${VLTAVA_NET:-10.70.70}.21:9092"
    log "kcat -b $kafka -L, then -C $topic from the beginning"
    meta="$(kcat -b "$kafka" -L -t "$topic")" || fail "kcat cannot read the metadata from $kafka"
    echo "$meta"
    [[ $(grep -c 'broker [123] at' <<<"$meta") -eq 3 ]] || fail "kcat does not see the 3 brokers' Kafka listeners"
    got="$(kcat -b "$kafka" -C -t "$topic" -o beginning -e -q -f '%k\t%s\n' | sort)" || true
    [[ "$got" == "$expected" ]] || fail "kcat read $(grep -c . <<<"$got" || true) of $records records from $topic"
else
    echo "kcat is not installed: the Kafka listeners are not checked" >&2
fi

# --- broker failure ------------------------------------------------------------------------------
desc="$(vltava topic describe "$topic")"
victim="$(partitions_table "$desc" | awk '$1 == 0 { print $2 }')"
[[ "$victim" =~ ^[0-9]+$ && "$victim" != 0 ]] || fail "no leader for $topic-0"
led="$(partitions_table "$desc" | awk -v b="$victim" '$2 == b { print $1 }' | xargs)"
container="$(compose ps -q "broker-$victim")"
[[ -n "$container" ]] || fail "no container for broker-$victim"

log "docker kill broker-$victim (leader of partitions $led)"
killed_at=$(now)
docker kill "$container" >/dev/null
deadline=$(($(date +%s) + failover_timeout))
while :; do
    if desc="$(vltava topic describe "$topic" 2>&1)" &&
        [[ $(partitions_table "$desc" | wc -l) -eq 3 ]] &&
        partitions_table "$desc" | awk -v b="$victim" '$2 == b || $2 == -1 { exit 1 }'; then
        break
    fi
    [[ $(date +%s) -lt $deadline ]] || fail "partitions still led by broker $victim (or leaderless) after ${failover_timeout} s: $desc"
    sleep 0.2
done
echo "no partition led by broker $victim $(since "$killed_at") s after docker kill" >&2
echo "$desc"
partitions_table "$desc" | awk -v b="$victim" '{ n = split($4, isr, ","); for (i = 1; i <= n; i++) if (isr[i] == b) exit 1 }' ||
    fail "broker $victim is still in an ISR"
[[ "$(docker inspect -f '{{.State.Running}}' "$container")" == false ]] ||
    fail "broker-$victim was restarted by Docker during the test"

log "vltava cluster describe (broker $victim should be fenced)"
out="$(vltava cluster describe)"
echo "$out"
awk -v b="$victim" '$1 == b && NF >= 5 && $4 == "fenced" { found = 1 } END { exit !found }' <<<"$out" ||
    fail "broker $victim is not shown fenced"

log "after the failover: every acknowledged record is still there"
got="$(consume_all "$topic")" || true
[[ "$got" == "$expected" ]] || fail "after killing broker $victim only $(grep -c . <<<"$got" || true) of $records records remain"
echo "consumed all $records records from $topic again" >&2

log "SMOKE PASSED"
