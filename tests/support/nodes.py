"""Test helpers that run real local IPFS nodes on 127.0.0.1 (plain functions; conftest.py wraps them).

node = start_local_node(tmp_path)            # init + start one node in tmp_path/node0
nodes = start_local_nodes(tmp_path, 3)       # started in parallel, swarm-connected to each other
stop_nodes(nodes)                            # always, also on failure (or use `running_nodes`)
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from appliance.ipfsconn.devnode import LocalNode

__all__ = ["free_ports", "running_nodes", "start_local_node", "start_local_nodes", "stop_nodes"]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def start_local_node(tmp_path: Path, name: str = "node0", timeout: float = 60.0) -> LocalNode:
    """Init a loopback-only node in `tmp_path/name` and start it; stopped again if the start fails."""
    api, swarm = free_ports(2)
    node = LocalNode.init(Path(tmp_path) / name, api, swarm)
    try:
        node.start(timeout)
    except BaseException:
        node.stop()
        raise
    return node


def start_local_nodes(tmp_path: Path, count: int, *, connect: bool = True, timeout: float = 60.0) -> list[LocalNode]:
    """Start `count` nodes in parallel (node0 … nodeN-1); with `connect`, every pair is swarm-connected.
    If any start fails, the others are stopped and the error is raised."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(start_local_node, tmp_path, f"node{i}", timeout) for i in range(count)]
    nodes = [f.result() for f in futures if f.exception() is None]
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        stop_nodes(nodes)
        raise failed[0]  # type: ignore[misc]
    try:
        if connect:
            for i, node in enumerate(nodes):
                for other in nodes[i + 1 :]:
                    node.connect(other)
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes: list[LocalNode]) -> None:
    """Stop every node (in parallel); a node that is already stopped is fine."""
    if nodes:
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(LocalNode.stop, nodes))


@contextlib.contextmanager
def running_nodes(tmp_path: Path, count: int = 1, *, connect: bool = True) -> Iterator[list[LocalNode]]:
    """`count` running nodes for the duration of the block; stopped however the block ends."""
    nodes = start_local_nodes(tmp_path, count, connect=connect)
    try:
        yield nodes
    finally:
        stop_nodes(nodes)
