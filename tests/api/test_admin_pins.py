"""The admin API's pin routes through Quart's test client: listings, summary, detail (live from a fake pinner),
re-pin, bucket replication policies, peers, and the pin metrics."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from quart import Quart

from appliance.api.admin.app import AdminState
from appliance.errors import BackendUnavailable
from appliance.model import DamageReport, PeerInfo, ReplicationPolicy
from appliance.service.objects import ObjectService
from appliance.service.pin_orchestrator import OrchestratorSettings, PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.service.unpinner import Unpinner
from appliance.state import LmdbMetadataStore
from tests.support.admin_auth import authed_admin_app
from tests.unit.service.test_pin_orchestrator import FakePinner, MemoryContent, as_content, report
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta

DEFAULTS = ReplicationPolicy(2, 3)


def cid_of(n: int) -> str:
    """A valid base32 CIDv1 (raw, sha2-256)."""
    digest = hashlib.sha256(str(n).encode()).digest()
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


@dataclass
class Admin:
    app: Quart
    store: LmdbMetadataStore
    pinner: FakePinner
    orchestrator: PinOrchestrator

    async def get(self, path: str) -> tuple[int, Any]:
        response = await self.app.test_client().get(path)
        return response.status_code, await response.get_json()

    async def send(self, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        response = await self.app.test_client().open(path, method=method, data=body, headers=headers)  # type: ignore[call-arg]
        return response.status_code, await response.get_json()


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    store.create_bucket(make_bucket())
    content = as_content(MemoryContent())
    pinner = FakePinner()
    policies = PolicyBook(store, DEFAULTS)
    orchestrator = PinOrchestrator(
        store, pinner, policies, OrchestratorSettings(), rng=random.Random(1), registry=CollectorRegistry()
    )
    state = AdminState(
        objects=ObjectService(store, content, unpin_grace=GRACE),
        content=content,
        store=store,
        unpinner=Unpinner(store, content, interval=1.0),
        pinner=pinner,
        policies=policies,
        orchestrator=orchestrator,
    )
    yield Admin(authed_admin_app(state, tmp_path), store, pinner, orchestrator)
    store.close()


def put(admin: Admin, key: str, cid: str) -> None:
    admin.store.put_object(make_meta(key, cid), unpin_grace=GRACE, now=admin.orchestrator.now())


CIDS = sorted(cid_of(i) for i in range(5))


async def test_list_pages_and_filters(admin: Admin) -> None:
    for i, cid in enumerate(CIDS):
        put(admin, f"k{i}", cid)
    await admin.orchestrator.run_once()
    put(admin, "new", cid_of(99))
    status, body = await admin.get("/pins?limit=2")
    assert status == 200 and [p["cid"] for p in body["pins"]] == CIDS[:2] and body["next"] == CIDS[1]
    first = body["pins"][0]
    assert first["state"] == "pinned" and first["name"] == f"{BUCKET}/k0"
    assert first["peers"][0] == {"peer": "peer-a", "status": "pinned", "error": ""}
    status, body = await admin.get(f"/pins?limit=2&after={CIDS[1]}")
    assert [p["cid"] for p in body["pins"]] == CIDS[2:4]
    status, body = await admin.get("/pins?state=queued")
    assert [p["cid"] for p in body["pins"]] == [cid_of(99)] and body["next"] is None


@pytest.mark.parametrize("query", ["state=bogus", "limit=0", "limit=abc", "limit=10001", "limit=-1"])
async def test_list_rejects_bad_arguments(admin: Admin, query: str) -> None:
    status, body = await admin.get(f"/pins?{query}")
    assert status == 400 and ("state must be one of" in body["error"] or "limit must be" in body["error"])


async def test_summary(admin: Admin) -> None:
    put(admin, "a", CIDS[0])
    put(admin, "b", CIDS[1])
    admin.pinner.pin_failures = [BackendUnavailable("down")]
    await admin.orchestrator.run_once()
    status, body = await admin.get("/pins/summary")
    assert status == 200
    assert body["pinner"] == "fake" and body["outbox_depth"] == 1
    assert body["states"] == {"queued": 0, "pinning": 0, "pinned": 1, "error": 1, "unpinning": 0}
    assert (body["completed_total"], body["errors_total"]) == (1, 1)


async def test_detail(admin: Admin) -> None:
    put(admin, "k", CIDS[0])
    status, body = await admin.get(f"/pins/{CIDS[0]}")
    assert status == 200 and body["cid"] == CIDS[0]
    assert body["status"]["state"] == "queued" and body["job"]["state"] == "queued" and "live" not in body
    admin.pinner.statuses[CIDS[0]] = [report(CIDS[0], "pinned", ("pin_error", "no space"), allocations=("peer-a",))]
    status, body = await admin.get(f"/pins/{CIDS[0]}?live=1")
    assert body["live"] == {
        "pinned": 1,
        "allocations": ["peer-a"],
        "peers": [
            {"peer": "peer-a", "status": "pinned", "error": ""},
            {"peer": "peer-b", "status": "pin_error", "error": "no space"},
        ],
    }
    admin.pinner.statuses[CIDS[0]] = [BackendUnavailable("cluster down")]
    status, body = await admin.get(f"/pins/{CIDS[0]}?live=true")
    # The pinner's own text stays in the log (tests/api/test_error_text.py): a generic message with a request id.
    assert status == 503 and body["code"] == "ServiceUnavailable" and "cluster down" not in str(body)
    assert body["error"] == f"Service is unavailable. Please retry. (request id {body['request_id']})"


async def test_detail_errors(admin: Admin) -> None:
    status, body = await admin.get(f"/pins/{CIDS[3]}")
    assert status == 404 and CIDS[3] in body["error"]
    status, body = await admin.get("/pins/not-a-cid")
    assert status == 400 and body["error"] == "not a CID: 'not-a-cid'"


async def test_repin(admin: Admin) -> None:
    put(admin, "k", CIDS[0])
    await admin.orchestrator.run_once()
    assert admin.store.pin_job(CIDS[0]) is None
    status, body = await admin.send("POST", f"/pins/{CIDS[0]}/repin")
    assert status == 202 and body == {"queued": 1}
    job = admin.store.pin_job(CIDS[0])
    assert job is not None and job.state == "queued"
    status, body = await admin.send("POST", f"/pins/{CIDS[1]}/repin")
    assert status == 404 and "no object references" in body["error"]
    status, _ = await admin.send("POST", "/pins/nope/repin")
    assert status == 400


async def test_policy_routes(admin: Admin) -> None:
    path = f"/buckets/{BUCKET}/replication"
    status, body = await admin.get(path)
    assert status == 200 and body["own"] is False
    assert body["policy"] == {"replication_min": 2, "replication_max": 3, "ack": "local", "allocations": [], "tags": {}}
    status, body = await admin.send("PUT", path, b'{"replication_min": 1, "tags": {"site": "paris"}, "ack": "cluster"}')
    assert status == 200 and body["own"] is True
    assert body["policy"] == {
        "replication_min": 1,
        "replication_max": 3,
        "ack": "cluster",
        "allocations": [],
        "tags": {"site": "paris"},
    }
    status, body = await admin.get(path)
    assert body["own"] is True and body["policy"]["tags"] == {"site": "paris"}
    status, body = await admin.send("DELETE", path)
    assert status == 200 and body["own"] is False and body["policy"]["replication_min"] == 2
    assert (await admin.get(path))[1]["own"] is False


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "message"),
    [
        ("PUT", f"/buckets/{BUCKET}/replication", b"{not json", 400, "the body is not JSON"),
        ("PUT", f"/buckets/{BUCKET}/replication", b"\xff\xfe", 400, "the body is not JSON"),
        ("PUT", f"/buckets/{BUCKET}/replication", b'{"ack": "x"}', 400, "ack must be"),
        ("PUT", f"/buckets/{BUCKET}/replication", b"[]", 400, "is a JSON object"),
        ("PUT", f"/buckets/{BUCKET}/replication", b" " * (64 * 1024 + 1), 400, "larger than 65536 bytes"),
        ("PUT", "/buckets/nope/replication", b"{}", 404, "no such bucket"),
        ("GET", "/buckets/nope/replication", b"", 404, "does not exist"),
        ("DELETE", "/buckets/nope/replication", b"", 404, "does not exist"),
    ],
)
async def test_policy_errors(admin: Admin, method: str, path: str, body: bytes, code: int, message: str) -> None:
    status, answer = await admin.send(method, path, body)
    assert status == code and message in answer["error"]
    assert admin.store.get_bucket_config(BUCKET, "replication") is None


async def test_peers(admin: Admin) -> None:
    admin.pinner.peer_list = [
        PeerInfo("peer-a", "a", ("/ip4/10.0.0.1",), freespace=42, tags=(("site", "paris"),)),
        PeerInfo("peer-b", "b", error="unreachable"),
    ]
    status, body = await admin.get("/peers")
    assert status == 200 and body["pinner"] == "fake"
    assert body["peers"] == [
        {
            "id": "peer-a",
            "name": "a",
            "addresses": ["/ip4/10.0.0.1"],
            "error": "",
            "freespace": 42,
            "tags": {"site": "paris"},
        },
        {"id": "peer-b", "name": "b", "addresses": [], "error": "unreachable", "freespace": None, "tags": {}},
    ]


async def test_metrics(admin: Admin) -> None:
    put(admin, "a", CIDS[0])
    put(admin, "b", CIDS[1])
    admin.pinner.pin_failures = [BackendUnavailable("down")]
    await admin.orchestrator.run_once()
    response = await admin.app.test_client().get("/metrics")
    text = await response.get_data(as_text=True)
    assert response.status_code == 200
    lines = set(text.splitlines())
    assert "s3ipfs_pin_outbox_depth 1.0" in lines
    assert "s3ipfs_pin_errors_total 1.0" in lines
    assert "s3ipfs_pin_jobs_completed_total 1.0" in lines
    assert 'ipfs_pin_duration_seconds_count{pinner="fake"} 1.0' in lines
    assert "s3ipfs_damaged_blocks 0.0" in lines


async def test_metrics_count_damaged_blocks(admin: Admin) -> None:
    for block, source in (("bafka", "read"), ("bafka", "read"), ("bafkb", "scrub")):
        admin.store.report_damage(DamageReport(block, "bafkroot", "hash mismatch", 1.0, 1.0, source=source))
    admin.store.clear_damage("bafka")
    text = await (await admin.app.test_client().get("/metrics")).get_data(as_text=True)
    lines = set(text.splitlines())
    assert "s3ipfs_damaged_blocks 1.0" in lines  # open reports
    assert 's3ipfs_content_verification_failures_total{source="read"} 2.0' in lines  # every report, cleared or not
    assert 's3ipfs_content_verification_failures_total{source="scrub"} 1.0' in lines
