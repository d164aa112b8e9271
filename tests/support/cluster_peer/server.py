"""The test peer process: parse the command line, open the cluster over the nodes, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from tests.support.cluster_peer.api import Api
from tests.support.cluster_peer.cluster import Cluster
from tests.support.cluster_peer.faults import Faults
from tests.support.cluster_peer.state import SharedState
from tests.support.cluster_peer.wire import serve

__all__ = ["main", "parser"]

DEFAULT_CAPACITY = 10 * 1024**3


def _tag(text: str) -> tuple[int, str, str]:
    index, _, rest = text.partition(":")
    name, _, value = rest.partition("=")
    if not index.isdigit() or not name:
        raise argparse.ArgumentTypeError("a tag is INDEX:NAME=VALUE, e.g. 0:region=eu")
    return int(index), name, value


def _credentials(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("basic auth is USER:PASSWORD")
    return user, password


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.support.cluster_peer", description=__doc__)
    p.add_argument("--port", type=int, required=True, help="REST API port on 127.0.0.1")
    p.add_argument("--node", action="append", required=True, help="Kubo RPC URL of one IPFS node (repeat)")
    p.add_argument("--state", type=Path, required=True, help="pinset file (kept across restarts)")
    p.add_argument("--basic-auth", type=_credentials, action="append", default=[], help="USER:PASSWORD (repeat)")
    p.add_argument("--capacity", type=int, default=DEFAULT_CAPACITY, help="bytes per peer (freespace metric)")
    p.add_argument("--tag", type=_tag, action="append", default=[], help="INDEX:NAME=VALUE peer tag (repeat)")
    p.add_argument("--replication-min", type=int, default=-1)
    p.add_argument("--replication-max", type=int, default=-1)
    p.add_argument("--allocate-by", default="tag:group,freespace")
    p.add_argument("--pin-timeout", type=float, default=120.0, help="seconds per pin/add on a node")
    p.add_argument("--disable-repinning", action="store_true", help="recover retries in place, never re-allocates")
    return p


async def _run(args: argparse.Namespace) -> None:
    tags: dict[int, dict[str, str]] = {}
    for index, name, value in args.tag:
        tags.setdefault(index, {})[name] = value
    faults = Faults()
    cluster = Cluster(
        SharedState.load(args.state),
        args.node,
        capacity=args.capacity,
        tags=tags,
        replication=(args.replication_min, args.replication_max),
        allocate_by=[item for item in args.allocate_by.split(",") if item],
        pin_timeout=args.pin_timeout,
        repinning=not args.disable_repinning,
        faults=faults,
    )
    await cluster.open()
    credentials = dict(args.basic_auth) if args.basic_auth else None
    server = await serve(Api(cluster, faults, credentials), args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await cluster.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        asyncio.run(_run(args))
    except OSError as exc:
        print(f"cluster_peer: {exc}", file=sys.stderr)
        return 1
    return 0
