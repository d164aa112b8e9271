"""Install the official Kubo / IPFS-Cluster binaries from a release tarball (or an unpacked release directory),
verified by its SHA-256 before anything is written. The package does not bundle them."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from appliance.errors import ConfigError, S3IpfsError

__all__ = ["BINARIES", "add_parser", "install", "run"]

# Release archive member (top folder/binary) -> the command name installed.
BINARIES = {
    "kubo/ipfs": "ipfs",
    "ipfs-cluster-service/ipfs-cluster-service": "ipfs-cluster-service",
    "ipfs-cluster-ctl/ipfs-cluster-ctl": "ipfs-cluster-ctl",
}
_MAX_BINARY = 512 * 1024 * 1024


class NodeInstallError(S3IpfsError):
    """The release could not be verified or installed; nothing was changed."""

    exit_code = 5


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = commands.add_parser("node", help="the local Kubo and IPFS-Cluster daemons")
    actions = node.add_subparsers(dest="action", required=True, metavar="ACTION")
    inst = actions.add_parser("install", help=__doc__, description=__doc__)
    inst.add_argument("--from", dest="source", required=True, metavar="TARBALL_OR_DIR", help="a release .tar.gz or dir")
    inst.add_argument("--sha256", help="the release tarball's SHA-256 (required for a tarball)")
    inst.add_argument("--dest", default="/usr/bin", help="target directory (default /usr/bin, where the units look)")
    inst.set_defaults(handler=run)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _from_tarball(tarball: Path, staging: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive.getmembers():
                name = BINARIES.get(member.name.removeprefix("./"))
                if name is None:
                    continue
                if not member.isfile() or member.size > _MAX_BINARY:
                    raise NodeInstallError(f"{tarball}: {member.name} is not a regular file of a sane size")
                source = archive.extractfile(member)
                if source is None:
                    raise NodeInstallError(f"{tarball}: cannot read {member.name}")
                target = staging / name
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                found.append((target, name))
    except (tarfile.TarError, OSError) as exc:
        raise NodeInstallError(f"{tarball}: not a readable release tarball ({exc})") from exc
    return found


def install(source: Path, *, sha256: str | None, dest: Path) -> list[Path]:
    """Verify and install; returns the installed paths. Raises NodeInstallError (nothing written) or ConfigError."""
    if source.is_dir():
        found = [(source / member, name) for member, name in BINARIES.items() if (source / member).is_file()]
        found += [(source / name, name) for name in BINARIES.values() if (source / name).is_file()]
        staged = None
    else:
        if not source.is_file():
            raise ConfigError(f"--from {source}: no such file or directory")
        if not sha256:
            raise ConfigError("--sha256 is required for a tarball: take it from the release's .sha512/.sha256 file")
        actual = _sha256(source)
        if not hmac.compare_digest(actual, sha256.strip().lower()):
            raise NodeInstallError(f"{source}: SHA-256 is {actual}, not the expected {sha256.strip().lower()}")
        staged = tempfile.TemporaryDirectory(prefix="s3ipfs-node-")
        found = _from_tarball(source, Path(staged.name))
    try:
        if not found:
            raise NodeInstallError(f"{source}: holds none of {', '.join(sorted(BINARIES))}")
        dest.mkdir(parents=True, exist_ok=True)
        installed = []
        for path, name in found:
            target = dest / name
            temporary = dest / f".{name}.s3ipfs-new"
            shutil.copyfile(path, temporary)
            os.chmod(temporary, 0o755)  # noqa: S103 - an executable on PATH must be world-executable
            os.replace(temporary, target)  # atomic: a running daemon keeps its old binary until restarted
            installed.append(target)
        return installed
    finally:
        if staged is not None:
            staged.cleanup()


def run(args: argparse.Namespace) -> int:
    for path in install(Path(args.source), sha256=args.sha256, dest=Path(args.dest)):
        print(f"installed {path}")
    return 0
