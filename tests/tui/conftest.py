"""TUI fixtures: one real IPFS node and one real `s3ipfs serve` (subprocess) per session, and a Pilot helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from appliance.ipfsconn.devnode import LocalNode
from tests.support.gateway import Gateway, start_gateway, stop_gateway
from tests.support.nodes import start_local_node, stop_nodes
from tui.api import AdminApi
from tui.app import S3ipfsApp

# A port nothing listens on (discard): the admin API there is "down", the same way every time (snapshots).
DOWN_URL = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def tui_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    node = start_local_node(tmp_path_factory.mktemp("tui-node"))
    try:
        yield node
    finally:
        stop_nodes([node])


@pytest.fixture(scope="session")
def tui_gateway(tmp_path_factory: pytest.TempPathFactory, tui_node: LocalNode) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("tui-gw"), tui_node, workers=1)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def live_api(gw: Gateway) -> AdminApi:
    """The admin API of a live daemon, with its local root token (re-read after a restart)."""
    return AdminApi(gw.admin_url, token_finder=lambda: gw.admin_token)


def down_app(**kwargs: object) -> S3ipfsApp:
    """An app whose daemon is down, without process stats: its screens render the same on every run."""
    return S3ipfsApp(AdminApi(DOWN_URL), watch_processes=False, **kwargs)  # type: ignore[arg-type]


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds; fails the test after `timeout` seconds."""
    steps = int(timeout / 0.1)
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"condition not met within {timeout} s")


def settled(app: S3ipfsApp) -> Callable[[Pilot[None]], Awaitable[None]]:
    """run_before for snapshots: wait until every worker (daemon probe, screen refresh) has finished."""

    async def run_before(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.daemon_error is not None)
        await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def shown(app: S3ipfsApp, selector: str) -> str:
    """The plain text a Static (found by CSS selector on the active screen) shows."""
    return str(app.screen.query_one(selector, Static).render())


def rows(app: S3ipfsApp, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
