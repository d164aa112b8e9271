#!/usr/bin/env bash
# Build dist/s3ipfs_<version>_amd64.deb and dist/s3ipfs-<version>.x86_64.rpm from this tree.
#
# One staged tree (.cache/packaging/stage) feeds both packages: a virtualenv at /opt/s3ipfs/venv made with Debian's
# /usr/bin/python3.11 (runtime dependencies pinned by requirements.lock), /usr/bin/s3ipfs, the units from systemd/,
# sysusers/tmpfiles snippets and /etc/s3ipfs/s3ipfs.yaml generated from the config model (packaging/gen-config.py).
# The .deb is made with dpkg-deb and must pass lintian; the .rpm with rpmbuild and packaging/rpm/s3ipfs.spec.
# Installs its build tools with apt when they are missing (dpkg-dev, lintian, rpm, binutils). Safe to re-run.
#
# Usage: scripts/build-packages.sh [--no-lintian]
# Environment: S3IPFS_DIST_DIR (default dist/), S3IPFS_PKG_WORK (default .cache/packaging), S3IPFS_MAINTAINER,
# SOURCE_DATE_EPOCH (default: the last commit's time).
set -euo pipefail

# Debian's tools, never pyenv shims (they come first in PATH on the development machines).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8
PYTHON=/usr/bin/python3.11

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Both can be moved (the tests build into a temporary directory).
WORK="${S3IPFS_PKG_WORK:-$ROOT/.cache/packaging}"
STAGE="$WORK/stage"
DIST="${S3IPFS_DIST_DIR:-$ROOT/dist}"
# The address lintian and the changelog carry; set S3IPFS_MAINTAINER to the real one for a release.
MAINTAINER="${S3IPFS_MAINTAINER:-s3ipfs maintainers <maintainers@s3ipfs.example.org>}"
RUN_LINTIAN=1
[ "${1:-}" = "--no-lintian" ] && RUN_LINTIAN=0

log() { printf 'build-packages: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_tools() {
	local missing=()
	command -v dpkg-deb >/dev/null || missing+=(dpkg)
	command -v dpkg-architecture >/dev/null || missing+=(dpkg-dev)
	command -v lintian >/dev/null || missing+=(lintian)
	command -v rpmbuild >/dev/null || missing+=(rpm)
	command -v objdump >/dev/null || missing+=(binutils)
	[ -x "$PYTHON" ] || missing+=(python3.11 python3.11-venv)
	"$PYTHON" -c 'import ensurepip' 2>/dev/null || missing+=(python3.11-venv)
	[ "${#missing[@]}" -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing build tools (${missing[*]}); run: sudo apt-get install ${missing[*]}"
	log "installing build tools: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_tools
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 is built (this host is $(dpkg --print-architecture))"

VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
	"$ROOT/pyproject.toml")"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
DEB="$DIST/s3ipfs_${VERSION}_amd64.deb"
RPM="$DIST/s3ipfs-${VERSION}.x86_64.rpm"
started=$SECONDS
log "s3ipfs $VERSION"

# --- the staged tree -------------------------------------------------------------------------------------------------
rm -rf "$STAGE" "$WORK/src" "$WORK/rpmbuild"
mkdir -p "$STAGE" "$WORK/src" "$DIST"
umask 022

# Build from a copy of the sources, so pip's in-tree build leaves no build/ or *.egg-info in the checkout.
tar -C "$ROOT" --exclude=__pycache__ -cf - pyproject.toml README.md appliance $( [ -d "$ROOT/tui" ] && echo tui ) |
	tar -C "$WORK/src" -xf -

V=/opt/s3ipfs/venv
log "virtualenv $V (Python $("$PYTHON" -c 'import platform; print(platform.python_version())'))"
"$PYTHON" -m venv "$STAGE$V"
"$STAGE$V/bin/python" -m pip install -q --disable-pip-version-check --no-compile \
	-c "$ROOT/requirements.lock" "$WORK/src"
# Every bundled distribution must be pinned by the lock, at the locked version (nothing floats in the package).
"$STAGE$V/bin/python" -m pip list -q --disable-pip-version-check --format=freeze --exclude pip --exclude setuptools \
	--exclude s3ipfs | "$PYTHON" -c '
import re, sys
norm = lambda line: re.sub(r"[-_.]+", "-", line.strip().lower())
lock = {norm(line) for line in open(sys.argv[1]) if "==" in line}
unpinned = [line.strip() for line in sys.stdin if norm(line) not in lock]
sys.exit(f"not pinned by requirements.lock: {unpinned}" if unpinned else 0)' "$ROOT/requirements.lock"
"$STAGE$V/bin/python" -m pip uninstall -q -y pip setuptools
# The package must not remember where it was staged (shebangs, activate scripts, pyvenv.cfg, RECORD files).
grep -rlI --null "$STAGE" "$STAGE$V" | xargs -0 --no-run-if-empty sed -i "s#$STAGE##g"
if grep -rqI "$STAGE" "$STAGE$V"; then die "the venv still names the staging directory $STAGE"; fi
find "$STAGE$V" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$STAGE$V" -name '*.so*' -type f -exec strip --strip-unneeded {} +
# Only the s3ipfs command is shipped: drop the other console scripts of the dependencies and the activate scripts.
find "$STAGE$V/bin" -type f ! -name s3ipfs -delete
# Library files are never run directly (wheels ship some with a stray executable bit).
find "$STAGE$V/lib" -type f -perm /111 ! -name '*.so' ! -name '*.so.*' -exec chmod a-x {} +
[ "$(readlink "$STAGE$V/bin/python3.11")" = "$PYTHON" ] || die "the venv python does not link to $PYTHON"

install -d "$STAGE/usr/bin"
ln -s "$V/bin/s3ipfs" "$STAGE/usr/bin/s3ipfs"

install -d "$STAGE/etc/s3ipfs"
"$STAGE$V/bin/python" "$ROOT/packaging/gen-config.py" "$VERSION" >"$STAGE/etc/s3ipfs/s3ipfs.yaml"
"$STAGE$V/bin/python" -c 'import sys; from appliance.config import AppConfig, load_config
# The packaged file differs from the model defaults only in the TLS minimum version (1.3 for both listeners).
packaged = AppConfig.model_validate({"s3": {"tls_min_version": "1.3"}, "admin": {"tls_min_version": "1.3"}})
assert load_config(sys.argv[1], env={}) == packaged, "generated config differs from the defaults"' \
	"$STAGE/etc/s3ipfs/s3ipfs.yaml"

install -d "$STAGE/lib/systemd/system" "$STAGE/usr/lib/sysusers.d" "$STAGE/usr/lib/tmpfiles.d"
install -m 0644 "$ROOT"/systemd/*.service "$STAGE/lib/systemd/system/"
install -m 0644 "$ROOT/systemd/s3ipfs.sysusers" "$STAGE/usr/lib/sysusers.d/s3ipfs.conf"
install -m 0644 "$ROOT/systemd/s3ipfs.tmpfiles" "$STAGE/usr/lib/tmpfiles.d/s3ipfs.conf"

DOC="$STAGE/usr/share/doc/s3ipfs"
install -d "$DOC" "$STAGE/usr/share/lintian/overrides"
install -m 0644 "$ROOT/packaging/debian/copyright" "$DOC/copyright"
install -m 0644 "$ROOT/README.md" "$DOC/README.md"
cat >"$WORK/changelog" <<EOF
s3ipfs ($VERSION) unstable; urgency=medium

  * Package built from the s3ipfs source tree (scripts/build-packages.sh).

 -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9n <"$WORK/changelog" >"$DOC/changelog.gz"
install -m 0644 "$ROOT/packaging/debian/lintian-overrides" "$STAGE/usr/share/lintian/overrides/s3ipfs"

chmod -R u+rwX,go+rX,go-w "$STAGE"
find "$STAGE" -depth -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

# --- .deb ------------------------------------------------------------------------------------------------------------
GLIBC="$(find "$STAGE$V" -name '*.so*' -type f -print0 | xargs -0 objdump -T 2>/dev/null |
	grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
[ -n "$GLIBC" ] || die "could not read the glibc version the bundled extensions need"
INSTALLED_SIZE="$(du -sk --apparent-size "$STAGE" | cut -f1)"
install -d "$STAGE/DEBIAN"
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$INSTALLED_SIZE/" -e "s/@GLIBC@/$GLIBC/" \
	-e "s|@MAINTAINER@|$MAINTAINER|" \
	"$ROOT/packaging/debian/control.in" >"$STAGE/DEBIAN/control"
install -m 0644 "$ROOT/packaging/debian/conffiles" "$STAGE/DEBIAN/conffiles"
install -m 0755 "$ROOT"/packaging/debian/{postinst,prerm,postrm} "$STAGE/DEBIAN/"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
	>"$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums"
rm -f "$DEB"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
log "built $DEB ($(du -h "$DEB" | cut -f1), depends libc6 >= $GLIBC) after $((SECONDS - started)) s"

if [ "$RUN_LINTIAN" = 1 ]; then
	log "lintian"
	lintian --fail-on error,warning --tag-display-limit 0 "$DEB" >&2
fi

# --- .rpm ------------------------------------------------------------------------------------------------------------
TOP="$WORK/rpmbuild"
mkdir -p "$TOP"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,BUILDROOT}
tar -C "$STAGE" --exclude=./DEBIAN --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
	-czf "$TOP/SOURCES/s3ipfs-tree-$VERSION.tar.gz" .
rpmbuild -bb --quiet --define "_topdir $TOP" --define "s3ipfs_version $VERSION" \
	--define "_dbpath $WORK/rpmdb" "$ROOT/packaging/rpm/s3ipfs.spec" >&2
rm -f "$RPM"
cp "$TOP/RPMS/x86_64/s3ipfs-$VERSION-1.x86_64.rpm" "$RPM"
log "built $RPM ($(du -h "$RPM" | cut -f1)) after $((SECONDS - started)) s"
