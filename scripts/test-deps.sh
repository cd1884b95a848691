#!/usr/bin/env bash
# Install what the end-to-end suite (tests/e2e) needs, idempotently:
#   - Debian packages mosquitto-clients and openssl (apt-get, only if missing)
#   - a virtualenv at .venv in the repository root with pinned Python packages
# Works as root without a TTY (CI) or as a user with sudo.
# Usage: scripts/test-deps.sh   then   .venv/bin/pytest tests/e2e -q
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
PIP_PACKAGES=(
  "paho-mqtt==2.1.0"
  "pytest==8.4.2"
  "pytest-timeout==2.4.0"
  "cryptography==46.0.3"
  "boto3==1.44.5"
  "awscli==1.46.3"
  "awsiotsdk==1.31.0"
  "requests==2.32.5"
  "moto[server]==5.2.5"
)

say() { printf 'test-deps: %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get not found: install $* yourself"; return 1
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
if ! command -v mosquitto_pub >/dev/null 2>&1 || ! command -v mosquitto_sub >/dev/null 2>&1; then
  missing+=(mosquitto-clients)
fi
if ! command -v openssl >/dev/null 2>&1; then
  missing+=(openssl)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
else
  say "mosquitto-clients and openssl already installed"
fi

command -v "$PY" >/dev/null 2>&1 || { say "$PY not found"; exit 1; }

venv_ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }

if venv_ok; then
  say "virtualenv $VENV exists"
else
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 lacks ensurepip without python3-venv.
    rm -rf "$VENV"
    if ! deb_installed python3-venv; then
      apt_install python3-venv
    fi
    # A versioned package (python3.11-venv) may be needed for non-default pythons.
    if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt_install "python${ver}-venv"
      "$PY" -m venv "$VENV"
    fi
  fi
  say "created virtualenv $VENV"
fi

# Install only when a pin is not satisfied (keeps re-runs fast and offline-safe).
need_pip=0
for spec in "${PIP_PACKAGES[@]}"; do
  if ! "$VENV/bin/python" - "$spec" <<'PYEOF' >/dev/null 2>&1
import sys, fnmatch
from importlib.metadata import version
name, want = sys.argv[1].split("==")
name = name.split("[")[0]  # "moto[server]" is installed as "moto"
sys.exit(0 if fnmatch.fnmatch(version(name), want) else 1)
PYEOF
  then need_pip=1; fi
done
if [ "$need_pip" -eq 1 ]; then
  say "pip install ${PIP_PACKAGES[*]}"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PIP_PACKAGES[@]}"
else
  say "python packages already installed: ${PIP_PACKAGES[*]}"
fi

say "mosquitto_pub: $(mosquitto_pub --help 2>/dev/null | sed -n 2p || true)"
say "openssl: $(openssl version)"
say "python: $("$VENV/bin/python" --version); $("$VENV/bin/python" -c 'import paho.mqtt, pytest, cryptography; print("paho-mqtt", paho.mqtt.__version__, "pytest", pytest.__version__, "cryptography", cryptography.__version__)')"
say "done. Run: cargo build -p thingport && .venv/bin/pytest tests/e2e -q"
