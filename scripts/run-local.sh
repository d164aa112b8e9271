#!/usr/bin/env bash
# Run a local gateway on a local IPFS node, all on 127.0.0.1 (`make run` / `make stop`). Idempotent.
#
#   scripts/run-local.sh STATE_DIR          start (init once) the IPFS node in STATE_DIR/ipfs, then the gateway in
#                                           the foreground; Ctrl-C stops the gateway, the node keeps running
#   scripts/run-local.sh --stop STATE_DIR   stop the IPFS node
#
# Environment: S3IPFS_DEV_IPFS_API_PORT (default 5001, or a free port if 5001 is busy), S3IPFS_DEV_IPFS_SWARM_PORT
# (default 4001, likewise), S3IPFS_DEV_S3_PORT (9000), S3IPFS_DEV_ADMIN_PORT (9001), S3IPFS_DEV_WORKERS (2); the
# ports and workers are used only when STATE_DIR/s3ipfs.yaml is first written (edit that file afterwards).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"

usage() { echo "usage: $0 STATE_DIR | $0 --stop STATE_DIR" >&2; exit 2; }

stop=0
if [ "${1:-}" = "--stop" ]; then stop=1; shift; fi
[ $# -eq 1 ] || usage
if [ "$stop" -eq 1 ] && [ ! -d "$1" ]; then echo "run-local: nothing to stop in $1"; exit 0; fi
mkdir -p "$1"
STATE="$(cd "$1" && pwd)"
REPO="$STATE/ipfs"
CONFIG="$STATE/s3ipfs.yaml"
cd "$ROOT"

devnode() { "$PY" -m appliance.ipfsconn.devnode "$@"; }

if [ "$stop" -eq 1 ]; then
  if [ -f "$REPO/config" ]; then devnode stop "$REPO"; fi
  echo "run-local: IPFS node in $REPO stopped"
  exit 0
fi

# The wanted port if it is free on 127.0.0.1, else any free port.
pick_port() {
  "$PY" - "$1" <<'EOF'
import socket, sys
want = int(sys.argv[1])
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", want))
    except OSError:
        s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

if [ ! -f "$REPO/config" ]; then
  api_port="$(pick_port "${S3IPFS_DEV_IPFS_API_PORT:-5001}")"
  swarm_port="$(pick_port "${S3IPFS_DEV_IPFS_SWARM_PORT:-4001}")"
  [ "$swarm_port" != "$api_port" ] || swarm_port="$(pick_port 0)"
  devnode init "$REPO" --api-port "$api_port" --swarm-port "$swarm_port"
fi
devnode start "$REPO"
api_url="$("$PY" -c 'import sys; from appliance.ipfsconn.devnode import LocalNode; print(LocalNode(sys.argv[1]).api_url)' "$REPO")"

if [ ! -f "$CONFIG" ]; then
  cat >"$CONFIG" <<EOF
# Written by scripts/run-local.sh for a local demo; everything listens on 127.0.0.1.
state_dir: $STATE
ipfs:
  api_url: $api_url
s3:
  host: 127.0.0.1
  port: ${S3IPFS_DEV_S3_PORT:-9000}
  workers: ${S3IPFS_DEV_WORKERS:-2}
admin:
  host: 127.0.0.1
  port: ${S3IPFS_DEV_ADMIN_PORT:-9001}
EOF
  echo "run-local: wrote $CONFIG"
fi

# S3IPFS_CONFIG and S3IPFS_<SECTION>__<KEY> from the caller's shell would change what runs: drop them.
while IFS= read -r name; do unset "$name"; done < <(env | sed -n 's/^\(S3IPFS_[A-Za-z0-9_]*\)=.*/\1/p')

.venv/bin/s3ipfs config check --config "$CONFIG" >/dev/null
creds="$(.venv/bin/s3ipfs credentials show --config "$CONFIG")"
access_key="$(sed -n 's/^access_key=//p' <<<"$creds")"
secret_key="$(sed -n 's/^secret_key=//p' <<<"$creds")"
endpoint="$("$PY" -c '
import sys
from appliance.config import load_config
c = load_config(sys.argv[1], env={})
print(f"http://{c.s3.host}:{c.s3.port} http://{c.admin.host}:{c.admin.port}")' "$CONFIG")"
s3_url="${endpoint% *}"
admin_url="${endpoint#* }"

cat <<EOF

  s3ipfs local gateway
  S3 endpoint   $s3_url
  admin API     $admin_url  (/health, /ready, /metrics)
  IPFS node     $api_url  (stop it with: make stop)
  access key    $access_key
  secret key    $secret_key
  config        $CONFIG

  Try it:
    AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key aws --endpoint-url $s3_url s3 mb s3://demo

  Ctrl-C stops the gateway.

EOF
exec .venv/bin/s3ipfs serve --config "$CONFIG"
