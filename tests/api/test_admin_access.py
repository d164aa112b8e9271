"""The admin API's gate: allow/deny lists on the resolved client address answer 403 JSON before any route runs;
/metrics shows the rate limiter's shared table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from appliance.api.access import ListenerAccess
from appliance.api.admin.app import AdminState
from appliance.api.admin.ratelimit_metrics import RateLimitMetrics
from appliance.config import AdminConfig
from appliance.service.objects import ObjectService
from appliance.service.rate_table import KIND_IP, KIND_KEY, RateTable
from appliance.service.unpinner import Unpinner
from tests.support.admin_auth import authed_admin_app
from tests.unit.service.scrub_fakes import FakeNode, open_store
from tests.unit.state.support import GRACE


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Any, RateTable]]:
    store = open_store(tmp_path / "meta")
    table = RateTable.create(tmp_path / "rl.table", 128)
    node = FakeNode()

    def make(admin: AdminConfig) -> Quart:
        state = AdminState(
            objects=ObjectService(store, node, unpin_grace=GRACE),  # type: ignore[arg-type]
            content=node,  # type: ignore[arg-type]
            store=store,
            unpinner=Unpinner(store, node, interval=1.0),  # type: ignore[arg-type]
            access=ListenerAccess.from_config(admin),
            collectors=(RateLimitMetrics(table, clock=lambda: 10.0),),
        )
        return authed_admin_app(state, tmp_path)  # authenticated as root: these tests are about the gate

    yield make, table
    table.close()
    store.close()


async def _get(app: Quart, path: str, client: str, headers: dict[str, str] | None = None) -> Any:
    return await app.test_client().get(path, headers=headers or {}, scope_base={"client": (client, 1234)})


async def test_allow_and_deny(parts: tuple[Any, RateTable]) -> None:
    make, _table = parts
    app = make(AdminConfig(allow_cidrs=("127.0.0.0/8",), deny_cidrs=("127.0.0.66",)))
    assert (await _get(app, "/health", "127.0.0.1")).status_code == 200
    for client in ("192.0.2.1", "127.0.0.66", "::1"):
        refused = await _get(app, "/health", client)
        assert refused.status_code == 403
        assert await refused.get_json() == {"error": "access denied"}
    assert (await _get(app, "/objects/by-cid/x", "192.0.2.1")).status_code == 403  # every route, not just /health


async def test_trusted_proxy_for_the_admin_listener(parts: tuple[Any, RateTable]) -> None:
    make, _table = parts
    app = make(AdminConfig(trusted_proxies=("127.0.0.1",), allow_cidrs=("10.0.0.0/8",)))
    assert (await _get(app, "/health", "127.0.0.1", {"X-Forwarded-For": "10.2.3.4"})).status_code == 200
    assert (await _get(app, "/health", "127.0.0.1", {"X-Forwarded-For": "192.0.2.1"})).status_code == 403
    assert (await _get(app, "/health", "127.0.0.1")).status_code == 403  # the proxy itself is not allowed
    assert (await _get(app, "/health", "192.0.2.9", {"X-Forwarded-For": "10.2.3.4"})).status_code == 403


async def test_metrics_show_the_shared_table(parts: tuple[Any, RateTable]) -> None:
    make, table = parts
    for _ in range(3):
        table.take(KIND_KEY, "AK", 1.0, 1, 10.0)
    table.take(KIND_IP, "192.0.2.1", 1.0, 5, 10.0)
    app = make(AdminConfig())
    text = (await (await _get(app, "/metrics", "127.0.0.1")).get_data()).decode()
    assert 's3ipfs_ratelimit_throttled_total{bucket="key"} 2.0' in text
    assert 's3ipfs_ratelimit_throttled_total{bucket="ip"} 0.0' in text
    assert 's3ipfs_ratelimit_tracked{bucket="key"} 1.0' in text
    assert 's3ipfs_ratelimit_tracked{bucket="ip"} 1.0' in text
