"""The admin API's scrub and damage routes through Quart's test client, on a real LMDB store and the real scrub
service over a fake node: start (202), progress and summaries, 409 while one runs and for a cancel of nothing,
cancel, the damage list, the metrics, and hostile input (bad JSON, wrong content type, huge/negative/NaN rates, bad
bucket names, unknown fields) answered 400/404/415 with `{"error"}` and no run started."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from appliance.api.admin.app import AdminState
from appliance.model import DamageReport
from appliance.service.objects import ObjectService
from appliance.service.scrub import Scrubber
from appliance.service.unpinner import Unpinner
from appliance.state import LmdbMetadataStore
from tests.support.admin_auth import authed_admin_app
from tests.unit.service.scrub_fakes import FakeNode, Sleeper, make_scrubber, open_store, put_file
from tests.unit.state.support import BUCKET, GRACE

__all__ = ["ScrubAdmin", "build_scrub_admin"]


@dataclass
class ScrubAdmin:
    app: Quart
    store: LmdbMetadataStore
    node: FakeNode
    scrubber: Scrubber
    sleeper: Sleeper


def build_scrub_admin(path: Path, objects: int = 3, *, port: int = 9001) -> ScrubAdmin:
    """The admin app with a scrubber over a fake node holding `objects` objects (the caller closes `store`)."""
    store = open_store(path)
    node = FakeNode()
    for i in range(objects):
        put_file(store, node, f"k{i}")
    sleeper = Sleeper()
    scrubber = make_scrubber(store, node, sleeper)
    state = AdminState(
        objects=ObjectService(store, node, unpin_grace=GRACE),  # type: ignore[arg-type]
        content=node,  # type: ignore[arg-type]
        store=store,
        unpinner=Unpinner(store, node, interval=1.0),  # type: ignore[arg-type]
        scrubber=scrubber,
    )
    return ScrubAdmin(authed_admin_app(state, Path(path).parent, port=port), store, node, scrubber, sleeper)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[ScrubAdmin]:
    built = build_scrub_admin(tmp_path / "meta")
    yield built
    await built.scrubber.aclose()
    built.store.close()


async def post(admin: ScrubAdmin, body: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
    client = admin.app.test_client()
    if body is not None:
        kw["json"] = body
    response = await client.post("/scrub", **kw)
    return response.status_code, await response.get_json()


async def test_start_progress_summary_and_metrics(admin: ScrubAdmin) -> None:
    status, data = await post(admin, {"bucket": BUCKET, "rate": 100, "repair": False})
    assert status == 202 and data["running"] and data["current"]["options"]["bucket"] == BUCKET
    assert data["current"]["total"] == 3
    await admin.scrubber.wait()
    client = admin.app.test_client()
    state = await (await client.get("/scrub")).get_json()
    assert state["running"] is False and state["current"] is None
    last = state["last"]
    assert (last["state"], last["objects_checked"], last["damaged"], last["id"]) == (
        "done",
        3,
        0,
        data["current"]["id"],
    )
    metrics = (await (await client.get("/metrics")).get_data()).decode()
    assert "s3ipfs_scrub_objects_checked_total 3.0" in metrics
    assert "s3ipfs_scrub_running 0.0" in metrics
    assert "s3ipfs_damaged_blocks 0.0" in metrics
    assert "s3ipfs_scrub_damaged_blocks 0.0" in metrics


async def test_empty_body_uses_the_defaults(admin: ScrubAdmin) -> None:
    status, data = await post(admin)
    assert status == 202 and data["current"]["options"] == {"bucket": "", "prefix": "", "rate": 20.0, "repair": False}


async def test_busy_cancel_and_progress_with_eta(admin: ScrubAdmin) -> None:
    admin.sleeper.gate, admin.sleeper.free = asyncio.Event(), 1
    status, _ = await post(admin, {"rate": 2})
    assert status == 202
    while len(admin.sleeper.slept) < 2:
        await asyncio.sleep(0.01)
    assert (await post(admin, {}))[0] == 409
    client = admin.app.test_client()
    state = await (await client.get("/scrub")).get_json()
    current = state["current"]
    assert state["running"] and current["done"] == 2 and current["total"] == 3 and current["fraction"] > 0.6
    assert current["eta_seconds"] is not None and current["eta_seconds"] >= 0
    metrics = (await (await client.get("/metrics")).get_data()).decode()
    assert "s3ipfs_scrub_running 1.0" in metrics and "s3ipfs_scrub_progress_items 2.0" in metrics
    response = await client.delete("/scrub")
    assert response.status_code == 200 and (await response.get_json())["cancelled"] is True
    await admin.scrubber.wait()
    assert (await client.delete("/scrub")).status_code == 409
    assert (await (await client.get("/scrub")).get_json())["last"]["state"] == "cancelled"


async def test_damage_list_and_metric(admin: ScrubAdmin) -> None:
    admin.store.report_damage(DamageReport("bafkreiblock", "bafyroot", "hash mismatch", 1.0, 2.0, source="read"))
    client = admin.app.test_client()
    data = await (await client.get("/damage")).get_json()
    assert data["count"] == 1 and data["reports"][0]["block"] == "bafkreiblock"
    assert data["reports"][0]["source"] == "read"
    assert "s3ipfs_damaged_blocks 1.0" in (await (await client.get("/metrics")).get_data()).decode()
    for bad in ("0", "-1", "abc", "99999999", "%EF%BC%91", ""):
        response = await client.get(f"/damage?limit={bad}")
        assert response.status_code == 400 and "limit" in (await response.get_json())["error"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"rate": -1}, 400, "rate"),
        ({"rate": 0}, 400, "rate"),
        ({"rate": 1e308 * 10}, 400, "rate"),
        ({"rate": 10**400}, 400, "rate"),
        ({"rate": "fast"}, 400, "rate"),
        ({"rate": True}, 400, "rate"),
        ({"rate": 1e9}, 400, "rate"),
        ({"bucket": "Bad_Name"}, 400, "bucket"),
        ({"bucket": "a" * 300}, 400, "bucket"),
        ({"bucket": ["x"]}, 400, "bucket"),
        ({"bucket": "no-such-bucket"}, 404, "no-such-bucket"),
        ({"prefix": "x/"}, 400, "prefix"),
        ({"bucket": BUCKET, "prefix": "p" * 2000}, 400, "prefix"),
        ({"bucket": BUCKET, "prefix": 7}, 400, "prefix"),
        ({"repair": "yes"}, 400, "repair"),
        ({"nope": 1}, 400, "unknown"),
        ([1, 2], 400, "object"),
        ("text", 400, "object"),
    ],
)
async def test_hostile_json_bodies(admin: ScrubAdmin, body: Any, status: int, needle: str) -> None:
    code, data = await post(admin, data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert code == status and needle in data["error"]
    assert admin.store.scrub_state() is None and not admin.scrubber.running


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"x" * 100_000, "application/json", 400),
        (b'{"rate": 5}', "text/plain", 415),
        (b"rate=5", "application/x-www-form-urlencoded", 415),
        (b'{"rate": NaN}', "application/json", 400),
        (b'{"rate": Infinity}', "application/json", 400),
    ],
)
async def test_malformed_bodies(admin: ScrubAdmin, data: bytes, content_type: str, status: int) -> None:
    code, reply = await post(admin, data=data, headers={"Content-Type": content_type})
    assert code == status and reply["error"]
    assert admin.store.scrub_state() is None
