#!/usr/bin/env bash
# The whole test suite: lint, unit and integration tests, and the end-to-end
# suite with real clients (mosquitto_pub/sub, paho-mqtt). Installs what the
# tests need on a fresh Debian machine (see scripts/test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
scripts/test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "building (with the S3 scale-out backend)"
cargo build --workspace --all-features --locked

# A real third-party S3 server (moto) for the S3-compatible object backend.
if [ -z "${THINGPORT_TEST_S3_ENDPOINT:-}" ]; then
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/thingport-moto.log" 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
      export THINGPORT_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
      break
    fi
    sleep 0.1
  done
  [ -n "${THINGPORT_TEST_S3_ENDPOINT:-}" ] || echo "moto did not start (see ${TMPDIR:-/tmp}/thingport-moto.log)"
fi

step "unit and integration tests"
cargo test --workspace --all-features --locked

step "end-to-end tests with real clients"
THINGPORT_BIN="$PWD/target/debug/thingport" .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider

step "local services"
if [ -n "${THINGPORT_TEST_NATS_URL:-}" ]; then
  echo "NATS at $THINGPORT_TEST_NATS_URL: the rules stream action was tested against it"
else
  echo "skipped: THINGPORT_TEST_NATS_URL is not set, so the rules stream action was not tested against NATS"
fi
if [ -n "${THINGPORT_TEST_S3_ENDPOINT:-}" ]; then
  echo "S3 at $THINGPORT_TEST_S3_ENDPOINT (moto): the S3-compatible object backend was tested against it"
else
  echo "skipped: no S3 server, so the S3-compatible object backend was not tested"
fi
echo "(no PostgreSQL backend exists yet; the embedded defaults were tested above)"
