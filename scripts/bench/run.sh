#!/usr/bin/env bash
# Thingport vs Mosquitto: the same load generator (thingport-bench), the same
# machine, the same mutual-TLS identities, in one run.
#
#   scripts/bench/run.sh            full run (7-8 minutes after the build; the broker
#                                   logs in /tmp can reach a few GB while it runs)
#   scripts/bench/run.sh --quick    smoke run (short scenarios, 1,000 connections)
#
# Environment overrides: DURATION (8s), WARMUP (2s), DRAIN (5s), CONNS (10000),
# CONNECT_RATE (500), HOLD (10s), HS_TIME (10), OUT_DIR, KEEP_TMP=1,
# SKIP_BUILD=1 (use the binaries already in the cargo target directory;
# CARGO_TARGET_DIR is honoured), THINGPORT_COMMIT (label when not in a git
# checkout), MQ_EXTRA_CONF (extra mosquitto.conf lines, e.g.
# "set_tcp_nodelay true"), QUIET_CORES (0.3) / QUIET_WAIT (60): before each
# run, wait up to QUIET_WAIT seconds for at most QUIET_CORES busy cores.
#
# It installs mosquitto and openssl if missing, builds the release binaries,
# starts Thingport on 127.0.0.1:28883 and a private Mosquitto 2 on
# 127.0.0.1:28884 (never the system one), both requiring client certificates
# from Thingport's CA, runs every scenario against both, prints a markdown
# table and writes results.{md,json,jsonl} to OUT_DIR. Both brokers are
# stopped on exit. See docs/benchmarks.md for the method.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
DRAIN=${DRAIN:-5s}
CONNS=${CONNS:-10000}
CONNECT_RATE=${CONNECT_RATE:-500}
HOLD=${HOLD:-10s}
HS_TIME=${HS_TIME:-10}
QUIET_CORES=${QUIET_CORES:-0.3}
QUIET_WAIT=${QUIET_WAIT:-60}
if [[ "${1:-}" == "--quick" ]]; then
  DURATION=2s WARMUP=1s DRAIN=2s CONNS=1000 HOLD=2s HS_TIME=2
fi
TP_PORT=28883
TP_API=29080
MQ_PORT=28884
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- dependencies -----------------------------------------------------------
need_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || need_pkgs+=(mosquitto mosquitto-clients)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${need_pkgs[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${need_pkgs[@]}" >&2; }
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x "$MOSQUITTO" ]] || die "mosquitto not found"

# Open files: every idle connection is a descriptor in both processes.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < CONNS + 200)); then
  log "warning: open-files limit $(ulimit -n) is below $((CONNS + 200)); the connections scenario may fail"
fi
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
if ((port_hi - port_lo < CONNS + 2000)); then
  log "warning: local port range $port_lo-$port_hi is small for $CONNS connections"
fi

# --- build --------------------------------------------------------------------
cd "$ROOT"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building release binaries"
  cargo build --release -p thingport >&2
  cargo build --release -p thingport-bench >&2
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=${TARGET_DIR:-$ROOT/target}/release
THINGPORT=$BIN/thingport
BENCH=$BIN/thingport-bench

# --- brokers --------------------------------------------------------------------
TMP=$(mktemp -d /tmp/thingport-bench.XXXXXX)
TP_PID=""
MQ_PID=""
cleanup() {
  local rc=$?
  for pid in "$TP_PID" "$MQ_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
    fi
  done
  for pid in "$TP_PID" "$MQ_PID"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_port() { # port pid what
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || die "$3 exited during start-up"
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$3 is not listening on port $1"
}

log "starting Thingport on 127.0.0.1:$TP_PORT (data in $TMP/tp)"
"$THINGPORT" serve --data-dir "$TMP/tp" --mqtt-listen "127.0.0.1:$TP_PORT" --api-listen "127.0.0.1:$TP_API" \
  --https-listen 127.0.0.1:28443 --s3-listen 127.0.0.1:29000 >"$TMP/thingport.log" 2>&1 &
TP_PID=$!
for _ in $(seq 1 300); do
  [[ -s "$TMP/tp/endpoints.json" ]] && break
  kill -0 "$TP_PID" 2>/dev/null || { tail -20 "$TMP/thingport.log" >&2; die "Thingport exited during start-up"; }
  sleep 0.1
done
[[ -s "$TMP/tp/endpoints.json" ]] || die "Thingport did not write endpoints.json"
wait_for_port "$TP_PORT" "$TP_PID" Thingport

# One identity for every bench client: Thingport accepts one certificate on
# many connections with distinct client ids (its default device policy wants
# NAME or NAME-*), and Mosquitto only needs the certificate to chain to the CA.
THING=bench-1
"$THINGPORT" provision "$THING" --out "$TMP/dev1" --data-dir "$TMP/tp" >/dev/null
CA=$TMP/dev1/root-ca.pem
CERT=$TMP/dev1/certificate.pem.crt
KEY=$TMP/dev1/private.pem.key

# Mosquitto gets copies of Thingport's server certificate, key and CA.
mkdir -p "$TMP/mq"
cp "$TMP/tp/server/server.pem" "$TMP/tp/server/server.key" "$TMP/tp/ca/root-ca.pem" "$TMP/mq/"
MQ_USER_LINE=""
if [[ $(id -u) == 0 ]]; then
  if id mosquitto >/dev/null 2>&1; then
    # Mosquitto drops root for the 'mosquitto' user: let it read its files.
    chmod 711 "$TMP"
    chown -R mosquitto: "$TMP/mq"
    MQ_USER_LINE="user mosquitto"
  else
    MQ_USER_LINE="user root"
  fi
fi
cat >"$TMP/mq/mosquitto.conf" <<EOF
# Private benchmark instance; logging left at Mosquitto's defaults, like Thingport's.
$MQ_USER_LINE
per_listener_settings false
persistence false
log_dest stderr
max_queued_messages 10000
max_inflight_messages 100
listener $MQ_PORT 127.0.0.1
cafile $TMP/mq/root-ca.pem
certfile $TMP/mq/server.pem
keyfile $TMP/mq/server.key
require_certificate true
use_identity_as_username true
allow_anonymous false
${MQ_EXTRA_CONF:-}
EOF
log "starting Mosquitto on 127.0.0.1:$MQ_PORT"
"$MOSQUITTO" -c "$TMP/mq/mosquitto.conf" >"$TMP/mosquitto.log" 2>&1 &
MQ_PID=$!
wait_for_port "$MQ_PORT" "$MQ_PID" Mosquitto

# --- scenarios ------------------------------------------------------------------
# The load generator and both brokers share this machine's cores: anything
# else running skews every figure. Say so rather than hide it.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  log "warning: load average is $LOAD_BEFORE before the run; other processes will skew the results"
fi
mkdir -p "$OUT_DIR"
RESULTS=$OUT_DIR/results.jsonl
: >"$RESULTS"
# Client ids and topics start with the thing name, so that Thingport's
# default device policy (client id NAME or NAME-*, topics NAME/…) allows them.
TLS=(--tls --ca "$CA" --cert "$CERT" --key "$KEY" --client-id-prefix "$THING")

# Busy cores of the whole machine over one second (from /proc/stat).
busy_cores() {
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN {
    split(a, x, " "); split(b, y, " "); d = y[2] - x[2]
    if (d <= 0) { print "0.00"; exit }
    printf "%.2f", (y[1] - x[1]) / d * n }'
}

# Wait (up to QUIET_WAIT seconds) until the machine is nearly idle: on a
# shared machine, someone else's build would otherwise be measured too.
wait_quiet() {
  local waited=0 busy
  while :; do
    busy=$(busy_cores)
    if awk -v b="$busy" -v q="$QUIET_CORES" 'BEGIN { exit !(b <= q) }'; then return 0; fi
    if ((waited == 0)); then log "  waiting for the machine to be idle ($busy cores busy)"; fi
    waited=$((waited + 1))
    if ((waited >= QUIET_WAIT)); then
      log "  still $busy cores busy after ${QUIET_WAIT}s; running anyway"
      return 0
    fi
  done
}

broker_port() { [[ $1 == thingport ]] && echo "$TP_PORT" || echo "$MQ_PORT"; }
broker_pid() { [[ $1 == thingport ]] && echo "$TP_PID" || echo "$MQ_PID"; }

# run BROKER "SCENARIO" SUBCOMMAND ARGS... : one JSON line into $RESULTS
run() {
  local broker=$1 scenario=$2 sub=$3
  shift 3
  local pid port
  pid=$(broker_pid "$broker")
  port=$(broker_port "$broker")
  kill -0 "$pid" 2>/dev/null || die "$broker is no longer running (before: $scenario)"
  wait_quiet
  log "$scenario — $broker"
  local out rc=0
  out=$("$BENCH" "$sub" --port "$port" --broker-pid "$pid" --json \
    --tag "broker=$broker" --tag "scenario=$scenario" "$@" 2>"$TMP/bench.err") || rc=$?
  if ((rc == 0)) && [[ -n "$out" ]]; then
    printf '%s\n' "$out" >>"$RESULTS"
  else
    local why
    why=$(tail -1 "$TMP/bench.err" | tr -d '"\\' | cut -c1-300)
    log "  FAILED (exit $rc): $why"
    printf '{"kind":"failed","tags":{"broker":"%s","scenario":"%s"},"errors":["thingport-bench exited with %s: %s"]}\n' \
      "$broker" "$scenario" "$rc" "$why" >>"$RESULTS"
  fi
  kill -0 "$pid" 2>/dev/null || die "$broker died during: $scenario"
}

both() { # "SCENARIO" SUBCOMMAND ARGS...
  local scenario=$1
  shift
  run thingport "$scenario" "$@"
  run mosquitto "$scenario" "$@"
}

PS=(--topic-prefix "$THING" --payload 64 --duration "$DURATION" --warmup "$WARMUP" --drain "$DRAIN" "${TLS[@]}")

# Memory per connection first, on brokers that have not yet carried traffic.
both "$CONNS idle mTLS connections" connections "${TLS[@]}" --count "$CONNS" \
  --connect-rate "$CONNECT_RATE" --hold "$HOLD" --keep-alive 120
both "full mTLS handshake (openssl s_time)" handshake --ca "$CA" --cert "$CERT" --key "$KEY" --time "$HS_TIME"
for qos in 0 1; do
  both "QoS $qos 1→1 max rate" pubsub "${PS[@]}" --qos "$qos" --publishers 1 --subscribers 1 --topic-mode pairs
done
for qos in 0 1; do
  both "QoS $qos 100→1 fan-in max rate" pubsub "${PS[@]}" --qos "$qos" --publishers 100 --subscribers 1 --topic-mode fan-in
done
for qos in 0 1; do
  both "QoS $qos 1→100 fan-out max rate" pubsub "${PS[@]}" --qos "$qos" --publishers 1 --subscribers 100 --topic-mode fan-out
done
for qos in 0 1; do
  both "QoS $qos 1→1 at 1,000 msg/s" pubsub "${PS[@]}" --qos "$qos" --publishers 1 --subscribers 1 --topic-mode pairs --rate 1000
done
both "QoS 0 100→1 fan-in at 50,000 msg/s" pubsub "${PS[@]}" --qos 0 --publishers 100 --subscribers 1 --topic-mode fan-in --rate 50000

# --- report -----------------------------------------------------------------------
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
TP_LOG_BYTES=$(stat -c %s "$TMP/thingport.log")
TP_QUEUE_FULL=$(grep -c "session queue full" "$TMP/thingport.log" || true)
MQ_LOG_BYTES=$(stat -c %s "$TMP/mosquitto.log")
MQ_DROPPING=$(grep -c "Outgoing messages are being dropped" "$TMP/mosquitto.log" || true)
COMMIT=${THINGPORT_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}
DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -qv '^??' && echo " (uncommitted changes)" || true)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1 || true)
MEM_GIB=$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)
MQ_VERSION=$({ "$MOSQUITTO" -h 2>/dev/null || true; } | sed -n 's/^mosquitto version //p' | head -1)
OPENSSL_VERSION=$(openssl version)

{
  echo "## Thingport vs Mosquitto — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- machine: $(nproc) cores, $CPU_MODEL, $MEM_GIB GiB, kernel $(uname -r); load average $LOAD_BEFORE before, $LOAD_AFTER after"
  echo "- Thingport $COMMIT$DIRTY; Mosquitto $MQ_VERSION; $OPENSSL_VERSION (s_time, Mosquitto's TLS)"
  echo "- pub/sub: $DURATION measured after $WARMUP warm-up, up to $DRAIN drain; 64-byte payloads; MQTT 3.1.1; mTLS (TLS 1.3)"
  echo "- broker logs: Thingport $TP_LOG_BYTES bytes ($TP_QUEUE_FULL 'session queue full' lines), Mosquitto $MQ_LOG_BYTES bytes ($MQ_DROPPING 'messages are being dropped' lines)"
  echo
  "$BENCH" report "$RESULTS"
} | tee "$OUT_DIR/results.md"

{
  printf '{"meta":{"date":"%s","nproc":%s,"cpu":"%s","mem_gib":%s,"kernel":"%s","thingport_commit":"%s%s","mosquitto":"%s","openssl":"%s",' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$CPU_MODEL" "$MEM_GIB" "$(uname -r)" "$COMMIT" "$DIRTY" "$MQ_VERSION" "$OPENSSL_VERSION"
  printf '"load_before":"%s","load_after":"%s",' "$LOAD_BEFORE" "$LOAD_AFTER"
  printf '"duration":"%s","warmup":"%s","drain":"%s","connections":%s,"connect_rate":%s,"hold":"%s","s_time_seconds":%s,' \
    "$DURATION" "$WARMUP" "$DRAIN" "$CONNS" "$CONNECT_RATE" "$HOLD" "$HS_TIME"
  printf '"thingport_log_bytes":%s,"thingport_queue_full_lines":%s,"mosquitto_log_bytes":%s,"mosquitto_dropping_lines":%s},"results":' \
    "$TP_LOG_BYTES" "$TP_QUEUE_FULL" "$MQ_LOG_BYTES" "$MQ_DROPPING"
  "$BENCH" report --format json "$RESULTS"
  printf '}\n'
} >"$OUT_DIR/results.json"
log "results in $OUT_DIR (results.md, results.json, results.jsonl)"
