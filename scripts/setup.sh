#!/usr/bin/env bash
# Idempotent setup: virtualenv with the pinned Python packages, and the pinned local IPFS node (npm ci).
# Re-running does nothing when nothing changed (stamps hold the hash of the lock files).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need node || ! need npm; then
  echo "setup: Node.js 20 and npm are needed for the local IPFS node; installing Debian's nodejs/npm" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

py_hash="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if ! stamp_ok .venv/.s3ipfs-stamp "$py_hash"; then
  echo "setup: installing Python packages into .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$py_hash" > .venv/.s3ipfs-stamp
fi

npm_hash="$(cat ipfs-node/package.json ipfs-node/package-lock.json | sha256sum | cut -d' ' -f1)"
if ! stamp_ok ipfs-node/node_modules/.s3ipfs-stamp "$npm_hash"; then
  echo "setup: installing the local IPFS node (npm ci, ~30 s)"
  (cd ipfs-node && NO_UPDATE_NOTIFIER=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$npm_hash" > ipfs-node/node_modules/.s3ipfs-stamp
fi

# Debian tools used by the tests: rclone and aws cli v2 (s3cmd and aws cli v1 come from PyPI in .venv).
missing=""
need curl || missing="$missing curl"
need rclone || missing="$missing rclone"
[ -x /usr/bin/aws ] || missing="$missing awscli"  # aws cli v2 (Debian); v1 comes from PyPI in .venv
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  apt-get update -qq && apt-get install -y -qq $missing >/dev/null
fi
# Debian tools of the packaging tests (tests/packaging, tests/packaging/container-test.sh): build and inspect the
# .deb/.rpm, make a bookworm root and boot it. systemd-container may upgrade systemd to its own exact version.
pkg_missing=""
need dpkg-architecture || pkg_missing="$pkg_missing dpkg-dev"
need lintian || pkg_missing="$pkg_missing lintian"
need rpmbuild || pkg_missing="$pkg_missing rpm"
need objdump || pkg_missing="$pkg_missing binutils"
need mmdebstrap || pkg_missing="$pkg_missing mmdebstrap"
need systemd-nspawn || pkg_missing="$pkg_missing systemd-container"
/usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null || pkg_missing="$pkg_missing python3.11-venv"
if [ -n "$pkg_missing" ]; then
  echo "setup: installing Debian packages for the packaging tests:$pkg_missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkg_missing >/dev/null
fi
# Prometheus 2.42 (Debian) and promtool: the alert-rule tests and the real-Prometheus scrape test
# (tests/packaging/test_monitoring_files.py, tests/integration/observe/test_prometheus_live.py). The tests run the
# binary themselves; its packaged service must not start:
# policy-rc.d denies invoke-rc.d during the install, and the unit is left disabled.
if ! need promtool || ! need prometheus; then
  echo "setup: installing prometheus (binary only; its service stays stopped)"
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # an existing policy (a container's) is left as it is
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get update -qq
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null || rc=$?
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || exit "$rc"
  if command -v systemctl >/dev/null; then systemctl disable prometheus >/dev/null 2>&1 || true; fi
fi
echo "setup: ok"
