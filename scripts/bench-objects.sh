#!/usr/bin/env bash
# Object transfer throughput of the S3-compatible endpoint, against the local
# disk's own write speed (docs/benchmarks.md, "Object transfer (S3 endpoint)").
#
#   scripts/bench-objects.sh            about 1-2 minutes after the build
#
# It builds the release server (`cargo build --release -p thingport`; set
# THINGPORT_BIN=/path/to/thingport to skip the build), starts it on a fresh
# data directory with every listener on 127.0.0.1:0, and runs
# scripts/bench_objects.py: curl with SigV4 pre-signed PUT/GET URLs for 1 MiB
# (sequential, kept-alive, 4 concurrent) and 100 MiB objects, boto3
# upload_file/download_file for 100 MiB, and dd on the same filesystem. It
# prints a markdown table, then stops the server and removes every temp file.
#
# Environment: THINGPORT_BIN, BENCH_DIR (where the temp directory goes; default:
# the current directory, so the disk measured is the working directory's),
# PYTHON (default: .venv/bin/python of the repository, else python3),
# KEEP_TMP=1 (keep the temp directory), BENCH_JSON (also write the results as
# JSON there), THINGPORT_LOG (the server's log filter; default: its own).
# Extra arguments go to bench_objects.py (see its --help), e.g.
# --small-count 20 --large-runs 3 for a quicker run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[bench-objects %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v curl >/dev/null || die "curl is required"
command -v dd >/dev/null || die "dd is required"
PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import boto3' 2>/dev/null || die "$PYTHON has no boto3 (scripts/test-deps.sh sets up .venv)"

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

# --- server -------------------------------------------------------------------
BASE=${BENCH_DIR:-$PWD}
mkdir -p "$BASE"
TMP=$(mktemp -d "$BASE/.thingport-bench-objects.XXXXXX")
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
    "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))["s3"]' "$DATA/endpoints.json" 2>/dev/null; then
    ok=1
    break
  fi
  kill -0 "$PID" 2>/dev/null || { tail -20 "$TMP/server.log" >&2; die "the server exited during start-up"; }
  sleep 0.1
done
[[ -n "$ok" ]] || { tail -20 "$TMP/server.log" >&2; die "the server wrote no endpoints.json in 30 s"; }
log "server pid $PID, endpoints: $(tr -d '\n ' <"$DATA/endpoints.json")"

# --- measure ------------------------------------------------------------------
args=(--data-dir "$DATA" --server-pid "$PID" --work "$TMP/work")
[[ -n "${BENCH_JSON:-}" ]] && args+=(--json "$BENCH_JSON")
"$PYTHON" "$ROOT/scripts/bench_objects.py" "${args[@]}" "$@"

if grep -qE 'ERROR|WARN' "$TMP/server.log"; then
  log "server warnings/errors during the run (last 10):"
  grep -E 'ERROR|WARN' "$TMP/server.log" | tail -10 >&2
fi
log "server log: $(wc -l <"$TMP/server.log") lines"
