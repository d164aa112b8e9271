#!/usr/bin/env bash
# Idempotent: create .cache/ansible-venv with the pinned ansible-core and ansible-lint (ansible/requirements.txt).
# A re-run is a no-op while the stamp matches the hash of the requirements file. Prints the venv's bin directory.
#
# Only ansible.builtin is used by the role. Test inventories that reach a chroot or a booted container need
# community.general (chroot connection) or community.docker (nsenter connection); install just those with
#   .cache/ansible-venv/bin/ansible-galaxy collection install community.general community.docker
# (Galaxy is reachable from some machines only) or use the `ansible` bundle, which ships them (568 MB).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${S3IPFS_ANSIBLE_VENV:-$ROOT/.cache/ansible-venv}"
REQ="$ROOT/ansible/requirements.txt"
PY="${PYTHON:-python3}"

# The stamp covers the pins and the interpreter: a different Python rebuilds the venv from scratch.
hash="$( { cat "$REQ"; "$PY" -c 'import sys; print(sys.executable, sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [ -f "$VENV/.s3ipfs-stamp" ] && [ "$(cat "$VENV/.s3ipfs-stamp")" = "$hash" ] && [ -x "$VENV/bin/ansible-lint" ]; then
  echo "$VENV/bin"
  exit 0
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "ansible-venv: $PY cannot create virtualenvs; apt-get install python3-venv" >&2
  exit 1
fi
echo "ansible-venv: installing ansible-core and ansible-lint into $VENV (about 30 s)" >&2
if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
  echo "ansible-venv: $VENV exists and is not a virtualenv; refusing to replace it" >&2
  exit 1
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" >&2
echo "$hash" > "$VENV/.s3ipfs-stamp"
echo "$VENV/bin"
