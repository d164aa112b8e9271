#!/usr/bin/env bash
# `make test-packaging`: install dist/s3ipfs_<version>_amd64.deb into a fresh Debian bookworm root, boot it with
# systemd-nspawn and check the package the way an operator meets it. The container has a network of its own
# (--private-network: only its loopback), so nothing the host listens on (a Kubo on :5001, another gateway on :9000)
# can answer for it; host tools that must talk to it (curl, the dev IPFS node, the aws cli) run inside its network
# namespace (`in_net`: nsenter -n). Needs root, mmdebstrap and systemd-container (installed with apt if missing).
#
# Checks: apt installs the .deb (dependencies from the mirror); the user, state dirs and enabled units exist; the
# booted system starts s3ipfs.service (Type=notify: active only after READY=1) with a STATUS text; /ready answers on
# the admin port, naming Kubo while no node is reachable; with a local IPFS node (the dev node of the host, run in the
# container's network) /ready is ready and the host's aws cli, in that network, makes a put/get round trip; the main PID runs hardened (NoNewPrivs, seccomp, no
# capabilities); SIGKILL leads to a restart; a broken config fails fast (exit 2, no restart loop, error in the
# journal); a clean stop; an upgrade (reinstall) keeps an edited conffile; apt purge removes units, state and config.
# Then the .rpm is installed with its scripts (rpm --root) into a fresh copy of the root, run, and erased.
#
# The base root (mmdebstrap minbase + systemd + python3-apt) is cached in .cache/packaging/bookworm-base-<hash>.tar
# (the hash is that of its package list); delete it to refresh.
#
# Usage: tests/packaging/container-test.sh [--build]   (--build: make the packages first with scripts/build-packages.sh)
# S3IPFS_SKIP_PACKAGING=1 skips it on purpose, loudly. S3IPFS_DIST_DIR: where the packages are (default dist/).
set -euo pipefail
if [ "${S3IPFS_SKIP_PACKAGING:-}" = 1 ]; then
	line="$(printf '#%.0s' $(seq 1 91))"
	printf '%s\n' "" "$line" "### container-test SKIPPED: S3IPFS_SKIP_PACKAGING=1, so the .deb and .rpm were NOT tested ###" \
		"$line" "" >&2
	exit 0
fi
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$ROOT/.cache/packaging"
# The base root's packages: python3 and python3-apt are what Ansible's apt module needs on a target host.
BASE_PACKAGES="systemd,systemd-sysv,dbus,curl,ca-certificates,procps,python3,python3-apt"
BASE="$CACHE/bookworm-base-$(sha256sum <<<"$BASE_PACKAGES" | cut -c1-12).tar"  # a new package list, a new root
CT="$CACHE/container-root"
VERSION="$(/usr/bin/python3.11 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
	"$ROOT/pyproject.toml")"
DIST="${S3IPFS_DIST_DIR:-$ROOT/dist}"
DEB="$DIST/s3ipfs_${VERSION}_amd64.deb"
RPM="$DIST/s3ipfs-${VERSION}.x86_64.rpm"
DEVPY="$ROOT/.venv/bin/python"
NS=""
LEADER=""
IPFS_REPO=""
failures=0
started=$SECONDS

log() { printf '[%4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
ok() { log "ok   $*"; }
bad() { log "FAIL $*"; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...: run a check, record the result, never abort the run
	local what="$1"
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, systemd-nspawn); S3IPFS_SKIP_PACKAGING=1 skips on purpose"
if [ "${1:-}" = --build ]; then
	t0=$SECONDS
	bash "$ROOT/scripts/build-packages.sh" || die "scripts/build-packages.sh failed (see above)"
	ok "packages built in $((SECONDS - t0)) s"
fi
[ -f "$DEB" ] || die "$DEB is missing: run make packages"
# S3IPFS_<KEY> variables are config overrides to s3ipfs: none of this shell's (S3IPFS_DIST_DIR…) may reach the
# chroot or container commands below.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^S3IPFS_' || true)

missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v nsenter >/dev/null || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian mirror this machine's own apt uses.
mirror() {
	local uri
	uri="$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
		2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')"
	echo "${uri:-http://deb.debian.org/debian}"
}

free_port() { "$DEVPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Commands in the container get a clean environment, as on a real host (no S3IPFS_* overrides of this shell).
in_ct() { nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root "$@"; }
# A host command (its files, its environment) in the container's network namespace: its 127.0.0.1 is the container's.
in_net() { nsenter -t "$LEADER" -n "$@"; }

cleanup() {
	set +e
	if [ -n "$NS" ] && kill -0 "$NS" 2>/dev/null; then
		kill -TERM "$NS"
		for _ in $(seq 1 60); do kill -0 "$NS" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$NS" 2>/dev/null && kill -KILL "$NS"
	fi
	if [ -n "$IPFS_REPO" ]; then "$DEVPY" -m appliance.ipfsconn.devnode stop "$IPFS_REPO" >/dev/null 2>&1; fi
	rm -rf "$CT" "${IPFS_REPO%/ipfs}"
}
trap cleanup EXIT

# --- a fresh root -------------------------------------------------------------------------------------------------
mkdir -p "$CACHE"
if [ ! -s "$BASE" ]; then
	M="$(mirror)"
	log "mmdebstrap bookworm from $M (cached in $BASE)"
	rm -f "$CACHE"/bookworm-base*.tar "$CACHE"/bookworm-base*.tar.tmp # roots of older package lists
	t0=$SECONDS
	mmdebstrap --quiet --format=tar --variant=minbase --include="$BASE_PACKAGES" bookworm \
		"$BASE.tmp" "deb $M bookworm main" "deb $M bookworm-updates main" \
		"deb ${M%/debian*}/debian-security bookworm-security main"
	mv "$BASE.tmp" "$BASE"
	ok "mmdebstrap in $((SECONDS - t0)) s"
fi
rm -rf "$CT"
mkdir -p "$CT"
tar -C "$CT" -xf "$BASE"
cp "$DEB" "$CT/root/s3ipfs.deb"
log "apt install $(basename "$DEB") into the fresh root"
t0=$SECONDS
chroot "$CT" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/s3ipfs.deb' \
	>"$CACHE/apt-install.log" 2>&1 || { tail -30 "$CACHE/apt-install.log" >&2; die "apt install failed"; }
ok "apt install in $((SECONDS - t0)) s"
check "s3ipfs user exists" chroot "$CT" getent passwd s3ipfs
check "state dir /var/lib/s3ipfs owned by s3ipfs" test "$(chroot "$CT" stat -c %U:%a /var/lib/s3ipfs)" = s3ipfs:750
check "config is root:s3ipfs 0640" test "$(chroot "$CT" stat -c %U:%G:%a /etc/s3ipfs/s3ipfs.yaml)" = root:s3ipfs:640
check "s3ipfs.service enabled" test -L "$CT/etc/systemd/system/multi-user.target.wants/s3ipfs.service"
check "byte-code compiled by postinst" test -n "$(find "$CT/opt/s3ipfs/venv/lib" -name '*.pyc' -print -quit)"

# The packaged default ports: the container's network is its own, so they are free whatever the host runs. Two
# workers, set by a drop-in as `systemctl edit` would write.
S3_PORT=9000
ADMIN_PORT=9001
mkdir -p "$CT/etc/systemd/system/s3ipfs.service.d"
cat >"$CT/etc/systemd/system/s3ipfs.service.d/test.conf" <<EOF
[Service]
Environment=S3IPFS_S3__WORKERS=2
EOF

# --- boot ---------------------------------------------------------------------------------------------------------
log "booting the container"
systemd-nspawn -q -D "$CT" --register=no --keep-unit --link-journal=no --console=pipe --private-network -b \
	>"$CACHE/nspawn.log" 2>&1 </dev/null &
NS=$!
# The container's init is a child of nspawn named systemd (an intermediate child may come and go first).
for _ in $(seq 1 100); do
	LEADER="$(pgrep -P "$NS" -x systemd | head -1 || true)"
	[ -n "$LEADER" ] && break
	sleep 0.1
done
[ -n "$LEADER" ] || die "the container did not start: $(tail -5 "$CACHE/nspawn.log")"
state=""
for _ in $(seq 1 120); do # until the container's bus answers and start-up has finished
	state="$(in_ct systemctl is-system-running 2>/dev/null || true)"
	case "$state" in running | degraded | maintenance) break ;; esac
	sleep 0.5
done
log "system state: $state"
in_ct systemctl --no-pager --failed --no-legend >&2 || true

active="$(in_ct systemctl is-active s3ipfs.service || true)"
if [ "$active" = active ]; then ok "s3ipfs.service is active (READY=1 received)"; else
	bad "s3ipfs.service is $active"
	in_ct journalctl -u s3ipfs --no-pager -n 40 >&2 || true
fi
status="$(in_ct systemctl show -p StatusText --value s3ipfs.service)"
check "STATUS text is set ($status)" test -n "$status"
check "s3ipfs-ipfs.service skipped (no Kubo binary), not failed" \
	test "$(in_ct systemctl show -p ConditionResult --value s3ipfs-ipfs.service)" = no
pid="$(in_ct systemctl show -p MainPID --value s3ipfs.service)"
if [ "${pid:-0}" != 0 ]; then
	st="$(in_ct cat "/proc/$pid/status")"
	check "main PID runs as s3ipfs" test "$(in_ct ps -o user= -p "$pid" | tr -d ' ')" = s3ipfs
	check "NoNewPrivs: 1" grep -qE '^NoNewPrivs:\s+1' <<<"$st"
	check "Seccomp: 2" grep -qE '^Seccomp:\s+2' <<<"$st"
	check "CapEff: 0" grep -qE '^CapEff:\s+0+$' <<<"$st"
fi
# Only the gateway: verify (rightly) reports the absent Kubo/Cluster binaries; tests/packaging/test_units.py verifies
# those units against stub binaries.
verify_err="$(in_ct systemd-analyze verify s3ipfs.service 2>&1 >/dev/null || echo "rc=$?")"
check "systemd-analyze verify of the installed s3ipfs.service: empty stderr ${verify_err:0:200}" test -z "$verify_err"
exposure="$(in_ct systemd-analyze security --no-pager s3ipfs.service | sed -n 's/.*Overall exposure level for s3ipfs.service: \([0-9.]*\).*/\1/p')"
check "systemd-analyze security (online) exposure $exposure <= 2.0" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }'
check "s3ipfs config check accepts the packaged config" \
	bash -c "nsenter -t $LEADER -a /usr/bin/s3ipfs config check --config /etc/s3ipfs/s3ipfs.yaml >/dev/null"
ready="$(in_net curl -s -m 5 "http://127.0.0.1:$ADMIN_PORT/ready" || true)"
log "/ready without an IPFS node: $ready"
check "/ready answers and is not ready without a node" grep -q '"not ready"' <<<"$ready"

# --- with an IPFS node on loopback: /ready and an S3 round trip -----------------------------------------------------
if [ -x "$DEVPY" ] && [ -d "$ROOT/ipfs-node/node_modules" ]; then
	IPFS_REPO="$(mktemp -d)/ipfs"
	"$DEVPY" -m appliance.ipfsconn.devnode init "$IPFS_REPO" --api-port "$(free_port)" --swarm-port "$(free_port)" >/dev/null
	in_net "$DEVPY" -m appliance.ipfsconn.devnode start "$IPFS_REPO" >/dev/null # it listens in the container's network
	API_URL="$("$DEVPY" -c 'import sys; from appliance.ipfsconn.devnode import LocalNode; print(LocalNode(sys.argv[1]).api_url)' "$IPFS_REPO")"
	echo "Environment=S3IPFS_IPFS__API_URL=$API_URL" >>"$CT/etc/systemd/system/s3ipfs.service.d/test.conf"
	in_ct systemctl daemon-reload
	in_ct systemctl restart s3ipfs.service || true
	for _ in $(seq 1 30); do
		ready="$(in_net curl -s -m 5 "http://127.0.0.1:$ADMIN_PORT/ready" || true)"
		grep -q '"status": *"ready"' <<<"$ready" && break
		sleep 1
	done
	log "/ready with the node at $API_URL: $ready"
	check "/ready is ready with a node" grep -q '"status": *"ready"' <<<"$ready"
	creds="$(in_ct /usr/bin/s3ipfs credentials show --config /etc/s3ipfs/s3ipfs.yaml || true)"
	key="$(sed -n 's/^access_key=//p' <<<"$creds")"
	secret="$(sed -n 's/^secret_key=//p' <<<"$creds")"
	if [ -n "$key" ] && [ -n "$secret" ] && [ -x "$ROOT/.venv/bin/aws" ]; then
		export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_DEFAULT_REGION=us-east-1
		aws=(in_net "$ROOT/.venv/bin/aws" --endpoint-url "http://127.0.0.1:$S3_PORT")
		head -c 300000 /dev/urandom >"$CACHE/object.bin"
		"${aws[@]}" s3 mb s3://pkgtest >/dev/null &&
			"${aws[@]}" s3 cp "$CACHE/object.bin" s3://pkgtest/object.bin >/dev/null &&
			"${aws[@]}" s3 cp s3://pkgtest/object.bin "$CACHE/object.back" >/dev/null
		check "aws cli put/get round trip (host client, container network) through the packaged gateway" cmp -s "$CACHE/object.bin" "$CACHE/object.back"
	else
		bad "could not read root credentials with \`s3ipfs credentials\` (got: ${creds:0:200})"
	fi
else
	bad "no local IPFS node to test against: .venv or ipfs-node/node_modules missing (run make setup)"
fi

# --- systemctl reload: SIGHUP reloads the TLS certificates; the same main process keeps serving ------------------
pid_before="$(in_ct systemctl show -p MainPID --value s3ipfs.service)"
check "systemctl reload s3ipfs (ExecReload=)" bash -c "nsenter -t $LEADER -a systemctl reload s3ipfs.service"
sleep 1
check "same main PID and still active after the reload" \
	test "$(in_ct systemctl show -p MainPID --value s3ipfs.service)" = "$pid_before" -a \
	"$(in_ct systemctl is-active s3ipfs.service || true)" = active

# --- restart on failure, broken config, clean stop --------------------------------------------------------------
in_ct systemctl kill -s KILL s3ipfs.service
for _ in $(seq 1 60); do # RestartSec=2s, then a start up to READY=1 (slower on a loaded machine): wait, not sleep
	[ "$(in_ct systemctl show -p NRestarts --value s3ipfs.service)" = 1 ] &&
		[ "$(in_ct systemctl is-active s3ipfs.service || true)" = active ] && break
	sleep 0.5
done
check "restarted after SIGKILL (NRestarts=1)" test "$(in_ct systemctl show -p NRestarts --value s3ipfs.service)" = 1
check "active again after the restart" test "$(in_ct systemctl is-active s3ipfs.service || true)" = active

cp "$CT/etc/s3ipfs/s3ipfs.yaml" "$CACHE/s3ipfs.yaml.orig"
printf 's3:\n  prot: 9000\n' >>"$CT/etc/s3ipfs/s3ipfs.yaml"  # a misspelt key
in_ct systemctl reset-failed s3ipfs.service || true
in_ct systemctl restart s3ipfs.service 2>/dev/null || true
sleep 3
check "broken config: failed, exit status 2" \
	test "$(in_ct systemctl show -p ExecMainStatus --value s3ipfs.service)" = 2
check "broken config: no restart loop (NRestarts=0)" \
	test "$(in_ct systemctl show -p NRestarts --value s3ipfs.service)" = 0
check "broken config: the error is in the journal" \
	bash -c "nsenter -t $LEADER -a journalctl -u s3ipfs --no-pager -n 30 | grep -q 's3.prot: unknown key'"
cp "$CACHE/s3ipfs.yaml.orig" "$CT/etc/s3ipfs/s3ipfs.yaml"
in_ct systemctl reset-failed s3ipfs.service || true
in_ct systemctl start s3ipfs.service || true
t0=$SECONDS
in_ct systemctl stop s3ipfs.service
check "clean stop in $((SECONDS - t0)) s (inactive, not failed)" \
	test "$(in_ct systemctl show -p ActiveState --value s3ipfs.service)" = inactive

# --- upgrade keeps an edited conffile; purge removes everything -------------------------------------------------
echo "# edited by the operator" >>"$CT/etc/s3ipfs/s3ipfs.yaml"
in_ct sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall -o Dpkg::Options::=--force-confold /root/s3ipfs.deb' \
	>>"$CACHE/apt-install.log" 2>&1 || bad "reinstall failed"
check "reinstall kept the edited conffile" grep -q "edited by the operator" "$CT/etc/s3ipfs/s3ipfs.yaml"
check "active again after the reinstall (postinst restart)" \
	test "$(in_ct systemctl is-active s3ipfs.service || true)" = active
in_ct sh -c 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq s3ipfs' >>"$CACHE/apt-install.log" 2>&1 ||
	bad "apt remove failed"
check "remove stopped the gateway" test "$(in_ct systemctl is-active s3ipfs.service || true)" != active
check "remove kept state and config" test -d "$CT/var/lib/s3ipfs" -a -f "$CT/etc/s3ipfs/s3ipfs.yaml"
in_ct sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq s3ipfs' >>"$CACHE/apt-install.log" 2>&1 ||
	bad "apt purge failed"
for path in /var/lib/s3ipfs /etc/s3ipfs /opt/s3ipfs /lib/systemd/system/s3ipfs.service; do
	check "purge removed $path" test ! -e "$CT$path"
done
left="$(find "$CT/etc/systemd/system" -name 's3ipfs*' ! -path '*s3ipfs.service.d*' | tr '\n' ' ')"
check "purge left no unit links (${left:-none})" test -z "$left"

# --- Ansible: the real playbook into the booted container, now a fresh host again ----------------------------------
# ansible/site.yml installs the .deb, writes the config and drop-in, starts the gateway and waits for /ready; a second
# run must change nothing. The connection is tests/packaging/ansible_plugins/connection/s3ipfs_nsenter.py.
ANSIBLE_VENV_BIN="$(bash "$ROOT/scripts/ansible-venv.sh")" || die "scripts/ansible-venv.sh failed"
rm -rf "$CT/etc/systemd/system/s3ipfs.service.d" # the test drop-in; the role writes its own
in_ct systemctl daemon-reload
AN="$CACHE/ansible"
rm -rf "$AN"
mkdir -p "$AN/tmp"
cat >"$AN/inventory.ini" <<EOF
[s3ipfs]
container ansible_connection=s3ipfs_nsenter ansible_nsenter_pid=$LEADER ansible_python_interpreter=/usr/bin/python3 ansible_become=false
EOF
cat >"$AN/vars.yml" <<EOF
s3ipfs_package_file: $DEB
s3ipfs_s3_port: $S3_PORT
s3ipfs_admin_port: $ADMIN_PORT
s3ipfs_s3_workers: 2
s3ipfs_ipfs_api_url: "${API_URL:-http://127.0.0.1:5001}"
s3ipfs_ready_retries: 15
s3ipfs_ready_delay: 1
EOF
playbook() { # playbook LOG: one run of ansible/site.yml into the container
	env PATH="$ANSIBLE_VENV_BIN:$PATH" ANSIBLE_CONNECTION_PLUGINS="$ROOT/tests/packaging/ansible_plugins/connection" \
		ANSIBLE_LOCAL_TEMP="$AN/tmp" ANSIBLE_NOCOLOR=1 ANSIBLE_PIPELINING=1 PYTHONWARNINGS=ignore::DeprecationWarning \
		ansible-playbook -i "$AN/inventory.ini" -e "@$AN/vars.yml" "$ROOT/ansible/site.yml" >"$1" 2>&1 ||
		{ rc=$?; tail -40 "$1" >&2; bad "ansible-playbook exited $rc (log: $1)"; }
}
recap_of() { grep -E '^container +:' "$1" || echo "no PLAY RECAP in $1"; }
recap_field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }
t0=$SECONDS
playbook "$AN/run1.log"
recap="$(recap_of "$AN/run1.log")"
log "ansible run 1 in $((SECONDS - t0)) s: $recap"
check "ansible run 1 converged (failed=0 unreachable=0)" \
	test "$(recap_field failed "$recap")/$(recap_field unreachable "$recap")" = 0/0
check "ansible run 1 installed and configured (changed > 0)" test "$(recap_field changed "$recap")" -gt 0
check "ansible run 1 waited for /ready (the play's last task)" \
	grep -q '^ok: \[container\]' <(sed -n '/TASK \[Wait until the gateway reports ready/,/^$/p' "$AN/run1.log")
check "s3ipfs.service active after the ansible run" test "$(in_ct systemctl is-active s3ipfs.service || true)" = active
ready="$(in_net curl -s -m 5 "http://127.0.0.1:$ADMIN_PORT/ready" || true)"
check "/ready is ready after the ansible run" grep -q '"status": *"ready"' <<<"$ready"
check "the role's drop-in is in place" test -f "$CT/etc/systemd/system/s3ipfs.service.d/50-ansible.conf"
t0=$SECONDS
playbook "$AN/run2.log"
recap="$(recap_of "$AN/run2.log")"
log "ansible run 2 in $((SECONDS - t0)) s: $recap"
check "ansible run 2 is idempotent (changed=0, failed=0, unreachable=0)" \
	test "$(recap_field changed "$recap")/$(recap_field failed "$recap")/$(recap_field unreachable "$recap")" = 0/0/0
if [ "$(recap_field changed "$recap")" != 0 ]; then grep -B2 -E '^changed:' "$AN/run2.log" >&2 || true; fi

# --- the .rpm, scripts and all, into a fresh copy of the base root (rpm keeps its database in /root/.rpmdb) ----------
if [ -f "$RPM" ] && command -v rpm >/dev/null; then
	kill -TERM "$NS" 2>/dev/null || true
	wait "$NS" 2>/dev/null || true
	NS=""
	rm -rf "$CT"
	mkdir -p "$CT"
	tar -C "$CT" -xf "$BASE"
	# The rpm's only real dependency, from the mirror (the rpm is installed --nodeps: dpkg does not know rpm's database).
	chroot "$CT" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11' \
		>>"$CACHE/apt-install.log" 2>&1 || bad "apt install python3.11 for the rpm"
	rpm --root "$CT" --initdb
	check "rpm -i with scripts into a bookworm root" rpm -i --nodeps --root "$CT" "$RPM"
	check "rpm %pre created the s3ipfs user" chroot "$CT" getent passwd s3ipfs
	check "rpm %post enabled s3ipfs.service" test -L "$CT/etc/systemd/system/multi-user.target.wants/s3ipfs.service"
	check "rpm config is root:s3ipfs 0640" \
		test "$(chroot "$CT" stat -c %U:%G:%a /etc/s3ipfs/s3ipfs.yaml)" = root:s3ipfs:640
	check "the rpm's s3ipfs command runs" \
		bash -c "chroot '$CT' /usr/bin/s3ipfs config check --config /etc/s3ipfs/s3ipfs.yaml >/dev/null"
	check "rpm -e" rpm -e --root "$CT" s3ipfs
	check "rpm -e removed /opt/s3ipfs" test ! -e "$CT/opt/s3ipfs"
else
	bad "no $RPM (or no rpm tool) to install"
fi

if [ "$failures" -gt 0 ]; then
	log "test-packaging: $failures check(s) failed"
	exit 1
fi
log "test-packaging: all checks passed"
