#!/usr/bin/env bash
# Payload keys: data keys issued per second over MQTT (RSA-2048, EC P-256 and
# EC P-384 devices; 1 and 4 devices at once) and through KMS GenerateDataKey
# with boto3; envelope encrypt/decrypt throughput of the Rust `keys` crate and
# of the device-side Python implementation against bare AES-256-GCM
# (docs/benchmarks.md, "Payload keys").
#
#   scripts/bench-keys.sh            about a minute after the build (more if it waits for a quiet machine)
#
# It builds the release server (`cargo build --release -p thingport`; set
# THINGPORT_BIN=/path/to/thingport to skip the build) and the keys crate's
# timing test (`cargo test --release -p keys --test timing --no-run`), starts
# the server on a fresh data directory with every listener on 127.0.0.1:0,
# and runs scripts/bench_keys.py: it provisions the devices with the CLI
# (a policy allowing exactly the data-key flow), drives them with paho-mqtt,
# then boto3's KMS client, then the envelope timings. It prints markdown
# tables, then stops the server and removes every temp file.
#
# Environment: THINGPORT_BIN, BENCH_DIR (where the temp directory goes;
# default: the current directory), PYTHON (default: .venv/bin/python of the
# repository, else python3), KEEP_TMP=1 (keep the temp directory), BENCH_JSON
# (also write the results as JSON there), THINGPORT_LOG (the server's log
# filter; default: its own), SKIP_RUST_TIMING=1 (no cargo at all: skip the
# Rust envelope timing). Extra arguments go to bench_keys.py (see its --help),
# e.g. --seconds 2 --inflight 16 --devices 2.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[bench-keys %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import boto3, paho.mqtt, cryptography' 2>/dev/null ||
  die "$PYTHON lacks boto3, paho-mqtt or cryptography (scripts/test-deps.sh sets up .venv)"

# --- build --------------------------------------------------------------------
if [[ -n "${THINGPORT_BIN:-}" ]]; then
  THINGPORT=$THINGPORT_BIN
else
  log "building the release server (cargo build --release -p thingport)"
  (cd "$ROOT" && cargo build --release -p thingport >&2)
  TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  THINGPORT=${TARGET_DIR:-$ROOT/target}/release/thingport
fi
[[ -x "$THINGPORT" ]] || die "no server binary at $THINGPORT"
THINGPORT=$(cd "$(dirname "$THINGPORT")" && pwd)/$(basename "$THINGPORT")
RUST_TIMING="cargo test --release -p keys --test timing -- --ignored --nocapture"
if [[ "${SKIP_RUST_TIMING:-0}" == 1 ]]; then
  RUST_TIMING=""
else
  # Compile now, so that the measured run only runs it.
  log "building the envelope timing test (cargo test --release -p keys --test timing --no-run)"
  (cd "$ROOT" && cargo test --release -p keys --test timing --no-run >&2)
fi

# --- server -------------------------------------------------------------------
BASE=${BENCH_DIR:-$PWD}
mkdir -p "$BASE"
TMP=$(mktemp -d "$BASE/.thingport-bench-keys.XXXXXX")
PID=""
cleanup() {
  local rc=$?
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DATA=$TMP/data
log "starting $THINGPORT (data in $DATA)"
"$THINGPORT" serve --data-dir "$DATA" \
  --mqtt-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --s3-listen 127.0.0.1:0 \
  >"$TMP/server.log" 2>&1 &
PID=$!
ok=""
for _ in $(seq 1 300); do
  if [[ -s "$DATA/endpoints.json" ]] &&
    "$PYTHON" -c 'import json,sys; e=json.load(open(sys.argv[1])); e["mqtt"]; e["api"]' "$DATA/endpoints.json" 2>/dev/null; then
    ok=1
    break
  fi
  kill -0 "$PID" 2>/dev/null || { tail -20 "$TMP/server.log" >&2; die "the server exited during start-up"; }
  sleep 0.1
done
[[ -n "$ok" ]] || { tail -20 "$TMP/server.log" >&2; die "the server wrote no endpoints.json in 30 s"; }
log "server pid $PID, endpoints: $(tr -d '\n ' <"$DATA/endpoints.json")"

# --- measure ------------------------------------------------------------------
args=(--data-dir "$DATA" --server-pid "$PID" --thingport "$THINGPORT" --work "$TMP/work" --rust-timing "$RUST_TIMING")
[[ -n "${BENCH_JSON:-}" ]] && args+=(--json "$BENCH_JSON")
rc=0
"$PYTHON" "$ROOT/scripts/bench_keys.py" "${args[@]}" "$@" || rc=$?

if grep -qE 'ERROR|WARN' "$TMP/server.log"; then
  log "server warnings/errors during the run (last 10):"
  grep -E 'ERROR|WARN' "$TMP/server.log" | tail -10 >&2
fi
log "server log: $(wc -l <"$TMP/server.log") lines"
exit "$rc"
