"""`s3ipfs node …`: the local Kubo and IPFS-Cluster daemons (install, init, status, start, stop)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from appliance.cli.common import add_config_option, load
from appliance.errors import ConfigError, S3IpfsError
from appliance.nodesetup.devprocs import DevProcessError, DevProcesses, Outcome
from appliance.nodesetup.files import FileExistsRefusal, write_all
from appliance.nodesetup.setup import InitChoices, InitError, InitPlan, plan_init
from appliance.nodesetup.status import gather, render

__all__ = ["BINARIES", "add_parser", "install", "run", "run_init", "run_start", "run_status", "run_stop"]

_INSTALL_HELP = """Install the official Kubo / IPFS-Cluster binaries from a release tarball (or an unpacked release
directory), verified by its SHA-256 before anything is written. The package does not bundle them."""
_INIT_HELP = """Write the Kubo repo config (private network: swarm key, APIs on loopback, bootstrap only with the
given peers, AutoConf off) and the IPFS-Cluster service.json/identity.json/peerstore (crdt, trusted peers,
REST API on loopback with a generated password) for this host. Refuses to overwrite without --force."""
_STATUS_HELP = """Show whether Kubo and IPFS-Cluster answer, their versions, peer IDs and peers, and where their
binaries are. Exit 0 when every configured daemon is healthy, 3 otherwise."""
_START_HELP = """Development: start the local daemons this machine has (Kubo `ipfs daemon` on node.kubo_repo, else the
project's js-ipfs node; `ipfs-cluster-service daemon` on node.cluster_dir when its binary and service.json exist),
pid files in <state_dir>/run. Already running daemons are left alone. Production uses the systemd units."""
_STOP_HELP = """Development: stop the daemons `s3ipfs node start` started (cluster first). Stopped ones are fine."""
_UNHEALTHY = 3  # BackendUnavailable's exit code
_START_FAILED = 3

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
    inst = actions.add_parser("install", help="install Kubo/IPFS-Cluster binaries", description=_INSTALL_HELP)
    inst.add_argument("--from", dest="source", required=True, metavar="TARBALL_OR_DIR", help="a release .tar.gz or dir")
    inst.add_argument("--sha256", help="the release tarball's SHA-256 (required for a tarball)")
    inst.add_argument("--dest", default="/usr/bin", help="target directory (default /usr/bin, where the units look)")
    inst.set_defaults(handler=run)
    _add_init(actions)
    status = actions.add_parser("status", help="health, versions and peers of both daemons", description=_STATUS_HELP)
    add_config_option(status)
    status.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    status.add_argument("--timeout", type=float, default=5.0, help="seconds per daemon call (default 5)")
    status.set_defaults(handler=run_status)
    start = actions.add_parser("start", help="development: start the local daemons", description=_START_HELP)
    add_config_option(start)
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each daemon (default 60)")
    start.set_defaults(handler=run_start)
    stop = actions.add_parser("stop", help="development: stop the local daemons", description=_STOP_HELP)
    add_config_option(stop)
    stop.set_defaults(handler=run_stop)


def _tag(value: str) -> tuple[str, str]:
    key, sep, tag = value.partition("=")
    if not sep or not key or not tag:
        raise argparse.ArgumentTypeError(f"{value!r} must be KEY=VALUE, e.g. group=rack1")
    return key, tag


def _add_init(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = actions.add_parser(
        "init", help="write Kubo and IPFS-Cluster configs for a private LAN", description=_INIT_HELP
    )
    add_config_option(init)
    add = init.add_argument
    add(
        "--peer",
        action="append",
        default=[],
        metavar="MULTIADDR",
        help="another host's IPFS node, /ip4/10.0.0.2/tcp/4001/p2p/<peer id> (repeat; bootstrap + peering)",
    )
    add(
        "--cluster-peer",
        action="append",
        default=[],
        metavar="MULTIADDR",
        help="another host's cluster peer, /ip4/10.0.0.2/tcp/9096/p2p/<peer id> (repeat; peerstore + trusted)",
    )
    add("--swarm-key", type=Path, metavar="FILE", help="the network's swarm.key (default: generate one)")
    add(
        "--cluster-secret",
        type=Path,
        metavar="FILE",
        help="a file holding the 64-hex cluster secret (default: generate)",
    )
    add("--storage-max", default="10GB", metavar="SIZE", help="Kubo Datastore.StorageMax (default 10GB)")
    add("--replication-min", type=int, metavar="N", help="cluster default (default: pinning.replication_min, 0 = -1)")
    add("--replication-max", type=int, metavar="N", help="cluster default (default: pinning.replication_max, 0 = -1)")
    add("--peername", default="", help="this cluster peer's name (default: the host name)")
    add(
        "--swarm-listen",
        action="append",
        default=[],
        metavar="MULTIADDR",
        help="Kubo swarm listen address (repeat; default /ip4/0.0.0.0/tcp/4001 and /ip6/::/tcp/4001)",
    )
    add(
        "--cluster-listen",
        action="append",
        default=[],
        metavar="MULTIADDR",
        help="cluster listen address (repeat; default /ip4/0.0.0.0/tcp/9096)",
    )
    add("--announce", action="append", default=[], metavar="MULTIADDR", help="Kubo addresses to announce (repeat)")
    add(
        "--tag",
        action="append",
        default=[],
        type=_tag,
        metavar="KEY=VALUE",
        help="cluster allocation tag, e.g. group=rack1 (repeat; group defaults to 'default')",
    )
    add("--cluster-name", default="s3ipfs", help="crdt cluster_name, the same on every peer (default s3ipfs)")
    add("--api-user", default="s3ipfs", help="cluster REST API user (default s3ipfs; password generated)")
    add("--trust-all", action="store_true", help="crdt trusted_peers ['*'] instead of the listed peers")
    add("--mdns", action="store_true", help="turn Kubo's LAN multicast discovery on (default off)")
    add("--no-cluster", action="store_true", help="write only the Kubo repo files")
    add(
        "--force",
        action="store_true",
        help="overwrite existing files; peer identities, swarm key, cluster secret and API password are kept",
    )
    init.set_defaults(handler=run_init)


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


def _print_init(plan: InitPlan, written: list[Path]) -> None:
    for path in written:
        print(f"wrote {path}")
    print(f"ipfs peer id: {plan.kubo_peer_id}")
    if plan.cluster_peer_id:
        print(f"cluster peer id: {plan.cluster_peer_id}")
    if plan.generated_swarm_key or plan.generated_cluster_secret:
        print("\nGenerated secrets (shown only now; copy them to every other host and pass them there with")
        print("--swarm-key FILE / --cluster-secret FILE):")
        if plan.generated_swarm_key:
            print(f"  swarm key:      {plan.generated_swarm_key}   (the swarm.key file holds it)")
        if plan.generated_cluster_secret:
            print(f"  cluster secret: {plan.generated_cluster_secret}")
    if plan.api_password:
        print("\nCluster REST API credentials (shown only now; service.json holds them, mode 0600).")
        print("Put them in s3ipfs.yaml:")
        print("  cluster:")
        print("    endpoints: [http://127.0.0.1:9094]")
        print(f"    username: {plan.api_user}")
        print(f"    password: {plan.api_password}")


def run_init(args: argparse.Namespace) -> int:
    config = load(args)
    choices = InitChoices(
        peers=args.peer,
        cluster_peers=args.cluster_peer,
        swarm_key_file=args.swarm_key,
        cluster_secret_file=args.cluster_secret,
        storage_max=args.storage_max,
        replication_min=args.replication_min,
        replication_max=args.replication_max,
        peername=args.peername,
        swarm_listen=args.swarm_listen,
        cluster_listen=args.cluster_listen,
        announce=args.announce,
        mdns=args.mdns,
        tags=dict(args.tag),
        cluster_name=args.cluster_name,
        api_user=args.api_user,
        no_cluster=args.no_cluster,
        trust_all=args.trust_all,
    )
    try:
        plan = plan_init(choices, config)
        written = write_all(plan.files, force=args.force)
    except InitError as exc:
        raise ConfigError(str(exc)) from None
    except FileExistsRefusal as exc:
        names = ", ".join(str(p) for p in exc.paths)
        raise ConfigError(f"{names}: already exist; nothing was written. Pass --force to overwrite them") from None
    except OSError as exc:
        raise ConfigError(f"cannot write the node files ({exc}); nothing was written") from None
    _print_init(plan, written)
    return 0


def run_status(args: argparse.Namespace) -> int:
    config = load(args)
    if args.timeout <= 0:
        raise ConfigError("--timeout must be > 0")
    status = asyncio.run(gather(config, call_timeout=args.timeout))
    if args.json:
        json.dump(status.as_json(), sys.stdout, indent=2)
        print()
    else:
        print(render(status), end="")
    return 0 if status.healthy else _UNHEALTHY


def _print_outcomes(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        print(f"{outcome.name:<8} {outcome.state}" + (f": {outcome.detail}" if outcome.detail else ""))


def run_start(args: argparse.Namespace) -> int:
    config = load(args)
    if args.timeout <= 0:
        raise ConfigError("--timeout must be > 0")
    procs = DevProcesses(config, start_timeout=args.timeout)
    outcomes: list[Outcome] = []
    try:
        outcomes.append(procs.start_ipfs())
        outcomes.append(procs.start_cluster())
    except DevProcessError as exc:
        _print_outcomes(outcomes)
        print(f"s3ipfs: {exc}", file=sys.stderr)
        return _START_FAILED
    _print_outcomes(outcomes)
    return 0


def run_stop(args: argparse.Namespace) -> int:
    _print_outcomes(DevProcesses(load(args)).stop())
    return 0
