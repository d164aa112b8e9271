"""Three real IPFS nodes and one cluster test peer (basic auth on) shared by the module; faults cleared and stopped
nodes restarted after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appliance.ipfsconn.devnode import LocalNode
from tests.support.cluster_peer import ClusterPeer
from tests.support.nodes import start_local_nodes, stop_nodes

AUTH = ("admin", "s3cret")
CAPACITY = 10 * 1024**3


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalNode]]:
    started = start_local_nodes(tmp_path_factory.mktemp("cluster-nodes"), 3)
    try:
        yield started
    finally:
        stop_nodes(started)


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory, nodes: list[LocalNode]) -> Iterator[ClusterPeer]:
    state = tmp_path_factory.mktemp("cluster-peer") / "pinset.json"
    with ClusterPeer([n.api_url for n in nodes], state, basic_auth=AUTH, capacity=CAPACITY, pin_timeout=20) as running:
        yield running


@pytest.fixture(autouse=True)
def _healthy(peer: ClusterPeer, nodes: list[LocalNode]) -> Iterator[None]:
    yield
    if peer.pid is None:
        peer.start()
    peer.clear_faults()
    restarted = [n for n in nodes if n.pid() is None]
    for node in restarted:
        node.start()
    for node in restarted:
        for other in nodes:
            if other is not node:
                node.connect(other)
