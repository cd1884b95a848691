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

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "building"
cargo build --workspace --locked

step "unit and integration tests"
cargo test --workspace --locked

step "end-to-end tests with real clients"
THINGPORT_BIN="$PWD/target/debug/thingport" .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider

step "local services"
if [ -n "${THINGPORT_TEST_NATS_URL:-}" ]; then
  echo "NATS at $THINGPORT_TEST_NATS_URL: the rules stream action was tested against it"
else
  echo "skipped: THINGPORT_TEST_NATS_URL is not set, so the rules stream action was not tested against NATS"
fi
echo "(no PostgreSQL or S3 scale-out backend exists yet; the embedded defaults were tested above)"
