"""Live fixtures: one real IPFS node and one in-process gateway per session; a fresh bucket per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from appliance.ipfsconn.devnode import LocalNode
from tests.support import raw
from tests.support.nodes import start_local_node, stop_nodes
from tests.support.s3server import ThreadedGateway, running_gateway

_counter = itertools.count()


@pytest.fixture(scope="session")
def s3_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    node = start_local_node(tmp_path_factory.mktemp("s3node"))
    try:
        yield node
    finally:
        stop_nodes([node])


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, s3_node: LocalNode) -> Iterator[ThreadedGateway]:
    with running_gateway(tmp_path_factory.mktemp("s3gw"), s3_node.api_url) as gw:
        yield gw


@pytest.fixture(autouse=True)
def _reset_clock(gateway: ThreadedGateway) -> Iterator[None]:
    yield
    gateway.clock_offset[0] = 0.0


@pytest.fixture(scope="session")
def s3(gateway: ThreadedGateway) -> Any:
    return gateway.client()


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"test-{next(_counter)}-bucket"
    s3.create_bucket(Bucket=name)
    return name


class Raw:
    """Signed raw requests against the session gateway."""

    def __init__(self, gw: ThreadedGateway) -> None:
        self.gw = gw

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("access_key", self.gw.access_key)
        kwargs.setdefault("secret_key", self.gw.secret_key)
        return raw.send(self.gw.endpoint, method, path, **kwargs)


@pytest.fixture(scope="session")
def raw_s3(gateway: ThreadedGateway) -> Raw:
    return Raw(gateway)


def s3_code(response: httpx.Response) -> str:
    """The <Code> of an S3 error document."""
    from xml.etree import ElementTree as ET

    return ET.fromstring(response.content).findtext("Code") or ""
