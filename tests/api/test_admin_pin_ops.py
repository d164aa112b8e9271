"""The admin API's routes for pin jobs over many CIDs (reconcile, rebalance, the dynamic policy, batches) through
Quart's test client, on a real LMDB store and a fake cluster pinner: report shapes, dry runs that change nothing,
404 before a first pass, and hostile input answered 400/404/409 with `{"error"}` and no change to the metadata."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from quart import Quart

from appliance.api.admin.app import AdminState
from appliance.errors import BackendUnavailable
from appliance.model import PeerInfo, PinReport, ReplicationPolicy
from appliance.service.objects import ObjectService
from appliance.service.pin_batch import BatchRunner
from appliance.service.pin_dynamic import DynamicSettings, HotColdPolicy
from appliance.service.pin_orchestrator import PIN_METADATA, OrchestratorSettings, PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.service.pin_rebalance import Rebalancer, RebalanceSettings
from appliance.service.pin_reconcile import Reconciler
from appliance.service.unpinner import Unpinner
from appliance.state import LmdbMetadataStore
from tests.api.test_admin_pins import cid_of
from tests.support.admin_auth import authed_admin_app
from tests.unit.service.test_pin_orchestrator import FakePinner, MemoryContent, as_content, report
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta

__all__ = ["ClusterFake", "OpsAdmin", "build_ops_admin", "cid_of"]

PEERS = ("peer-a", "peer-b", "peer-c")
DEFAULTS = ReplicationPolicy(2, 2)
GiB = 1024**3
ORPHAN_GRACE = 300.0
DYNAMIC = DynamicSettings(half_life=60.0, hot_threshold=10.0, cold_threshold=2.0, hot_extra=1, min_dwell=30.0)
CIDS = sorted(cid_of(i) for i in range(6))


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ClusterFake(FakePinner):
    """A FakePinner that behaves like an ideal cluster: allocations follow the policy (explicit peers first, else
    the first `replication_max` peers), every allocated peer reports `pinned`, the others `remote`, and reports
    carry the pin's metadata (which reconcile and rebalance use to tell the gateway's pins from others')."""

    kind = "cluster"

    def __init__(self) -> None:
        super().__init__()
        self.allocations: dict[str, tuple[str, ...]] = {}
        self.peer_list = [PeerInfo(p, p, freespace=100 * GiB) for p in PEERS]

    async def pin(self, cid: str, *, name: str, policy: ReplicationPolicy, metadata: Mapping[str, str]) -> None:
        await super().pin(cid, name=name, policy=policy, metadata=metadata)
        count = policy.replication_max if policy.replication_max > 0 else len(PEERS)
        self.allocations[cid] = tuple(policy.allocations or PEERS)[:count]

    async def unpin(self, cid: str) -> None:
        await super().unpin(cid)
        self.allocations.pop(cid, None)
        self.metadata.pop(cid, None)

    def seed(self, cid: str, metadata: Mapping[str, str], allocations: tuple[str, ...] = PEERS[:2]) -> None:
        """A pin that someone else (or a lost request) made, straight into the pinset."""
        self.pinned[cid] = ReplicationPolicy(len(allocations), len(allocations))
        self.metadata[cid] = dict(metadata)
        self.allocations[cid] = allocations

    async def status(self, cid: str) -> PinReport:
        if self.statuses.get(cid):
            return await super().status(cid)
        self.calls.append(("status", cid))
        if cid not in self.pinned:
            return report(cid, *(["unpinned"] * len(PEERS)))
        allocated = self.allocations.get(cid, ())
        return PinReport(
            cid=cid,
            peers=tuple((p, "pinned" if p in allocated else "remote", "") for p in PEERS),
            allocations=allocated,
            name=self.names.get(cid, ""),
            metadata=tuple(sorted(self.metadata.get(cid, {}).items())),
        )


@dataclass
class OpsAdmin:
    app: Quart
    store: LmdbMetadataStore
    pinner: ClusterFake
    orchestrator: PinOrchestrator
    reconciler: Reconciler
    rebalancer: Rebalancer
    dynamic: HotColdPolicy
    batches: BatchRunner
    clock: Clock
    changes: list[int] = field(default_factory=list)

    async def get(self, path: str) -> tuple[int, Any]:
        response = await self.app.test_client().get(path)
        return response.status_code, await response.get_json()

    async def send(self, method: str, path: str, body: bytes | Any = b"") -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(raw))}
        response = await self.app.test_client().open(path, method=method, data=raw, headers=headers)  # type: ignore[call-arg]
        return response.status_code, await response.get_json()

    def put(self, key: str, cid: str, bucket: str = BUCKET) -> None:
        self.store.put_object(make_meta(key, cid, bucket=bucket), unpin_grace=GRACE, now=self.clock.now)

    async def wait_batch(self, batch_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll GET /batches/{id} until the batch leaves `running`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            status, body = await self.get(f"/batches/{batch_id}")
            assert status == 200, body
            if body["state"] != "running":
                return dict(body)
            assert loop.time() < deadline, f"batch {batch_id} still running: {body}"
            await asyncio.sleep(0.01)


def build_ops_admin(path: Path, *, rebalance: RebalanceSettings | None = None, port: int = 9001) -> OpsAdmin:
    """A store with the bucket, the fake cluster pinner and every pin job wired into the admin app (the caller
    closes `store`)."""
    store = LmdbMetadataStore(path, map_size=1 << 28, pin_outbox=True)
    store.create_bucket(make_bucket())
    clock = Clock()
    content = as_content(MemoryContent())
    pinner = ClusterFake()
    policies = PolicyBook(store, DEFAULTS, clock=clock)
    orchestrator = PinOrchestrator(
        store,
        pinner,
        policies,
        OrchestratorSettings(poll=0.01),
        clock=clock,
        rng=random.Random(3),
        registry=CollectorRegistry(),
    )
    changes: list[int] = []

    def changed(count: int) -> None:
        changes.append(count)
        orchestrator.replication_changes_total += count

    reconciler = Reconciler(store, pinner, orphan_grace=ORPHAN_GRACE, clock=clock, on_queued=orchestrator.wake)
    rebalancer = Rebalancer(
        pinner,
        rebalance or RebalanceSettings(min_free=10 * GiB, max_moves=20, move_timeout=5.0, poll=0.01),
        clock=clock,
        on_change=changed,
    )
    dynamic = HotColdPolicy(store, DYNAMIC, clock=clock, on_change=changed)
    batches = BatchRunner(store, pinner, policies, clock=clock, on_queued=changed)
    state = AdminState(
        objects=ObjectService(store, content, unpin_grace=GRACE),
        content=content,
        store=store,
        unpinner=Unpinner(store, content, interval=1.0),
        pinner=pinner,
        policies=policies,
        orchestrator=orchestrator,
        reconciler=reconciler,
        rebalancer=rebalancer,
        dynamic=dynamic,
        batches=batches,
    )
    app = authed_admin_app(state, Path(path).parent, port=port)
    return OpsAdmin(app, store, pinner, orchestrator, reconciler, rebalancer, dynamic, batches, clock, changes)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[OpsAdmin]:
    built = build_ops_admin(tmp_path / "meta")
    yield built
    await built.batches.aclose()
    built.store.close()


def snapshot(admin: OpsAdmin) -> tuple[Any, ...]:
    """What a rejected or dry request must not change: pin statuses and jobs, the queues, policies, the pinset."""
    store = admin.store
    return (
        store.pin_statuses(),
        [store.pin_job(cid) for cid in CIDS],
        store.pin_outbox_depth(),
        store.unpin_queue_depth(),
        store.get_bucket_config(BUCKET, "replication"),
        dict(admin.pinner.pinned),
        dict(admin.pinner.allocations),
        {cid: dict(m) for cid, m in admin.pinner.metadata.items()},
        [b.document() for b in admin.batches.batches()],
    )


def mutations(admin: OpsAdmin) -> list[tuple[str, str]]:
    return [call for call in admin.pinner.calls if call[0] != "status"]


# ---- reconcile --------------------------------------------------------------------------------------------------


async def _reconcile_scene(admin: OpsAdmin) -> dict[str, str]:
    """Objects on CIDS[0..3] pinned; then CIDS[0] lost by the cluster, CIDS[1] in error on a peer, CIDS[4] put
    but not pinned yet (its job is queued); an orphan of ours and a foreign pin in the pinset."""
    for i in range(4):
        admin.put(f"k{i}", CIDS[i])
    assert await admin.orchestrator.run_once() == 4
    admin.clock.now += 1  # the pins were recorded before the reconcile pass starts
    admin.put("k4", CIDS[4])
    del admin.pinner.pinned[CIDS[0]]
    admin.pinner.statuses[CIDS[1]] = [
        report(CIDS[1], "pinned", ("pin_error", "disk full"), allocations=("peer-a", "peer-b"))
    ]
    orphan, foreign = cid_of(100), cid_of(101)
    admin.pinner.seed(orphan, PIN_METADATA)
    admin.pinner.seed(foreign, {})
    admin.pinner.calls.clear()
    return {"orphan": orphan, "foreign": foreign}


async def test_nothing_before_a_first_pass(admin: OpsAdmin) -> None:
    status, body = await admin.get("/reconcile")
    assert (status, body) == (404, {"error": "no reconcile pass has run yet; POST /reconcile runs one"})
    status, body = await admin.get("/rebalance")
    assert (status, body) == (404, {"error": "no rebalancing pass has run yet; POST /rebalance runs one"})
    assert await admin.get("/batches") == (200, {"batches": []})


@pytest.mark.parametrize("flag", ["1", "true", "TRUE", ""])
async def test_reconcile_dry_run_reports_and_changes_nothing(admin: OpsAdmin, flag: str) -> None:
    scene = await _reconcile_scene(admin)
    before = snapshot(admin)
    status, body = await admin.send("POST", f"/reconcile?dry_run={flag}")
    assert status == 200
    assert body["dry_run"] is True and body["pinner"] == "cluster"
    counts = {k: body[k] for k in ("referenced", "pinset", "missing", "errored", "orphans", "foreign")}
    assert counts == {"referenced": 5, "pinset": 5, "missing": 2, "errored": 1, "orphans": 1, "foreign": 1}
    assert (body["queued"], body["recovered"], body["orphans_queued"], body["failures"]) == (0, 0, 0, [])
    assert body["samples"] == {"missing": [CIDS[0], CIDS[4]], "errored": [CIDS[1]], "orphans": [scene["orphan"]]}
    assert body["finished"] >= body["started"] > 0
    assert snapshot(admin) == before and mutations(admin) == []
    assert (await admin.get("/reconcile"))[0] == 404  # a dry run is not "the last pass"


async def test_reconcile_repairs_and_keeps_its_report(admin: OpsAdmin) -> None:
    scene = await _reconcile_scene(admin)
    status, body = await admin.send("POST", "/reconcile?dry_run=0")
    assert status == 200 and body["dry_run"] is False
    assert (body["missing"], body["errored"], body["orphans"], body["foreign"]) == (2, 1, 1, 1)
    # CIDS[0] (lost) and CIDS[1] (in error) get pin jobs again; CIDS[4] already has one.
    assert (body["queued"], body["recovered"], body["orphans_queued"], body["failures"]) == (2, 1, 1, [])
    assert mutations(admin) == [("recover", CIDS[1])]
    assert [admin.store.pin_job(c) is not None for c in CIDS[:5]] == [True, True, False, False, True]
    assert admin.store.unpin_queue_depth() == 1  # the orphan, due after the grace
    assert admin.store.cid_refcount(scene["foreign"]) == 0 and scene["foreign"] in admin.pinner.pinned
    status, last = await admin.get("/reconcile")
    assert status == 200 and last == {**body, "running": False}
    await admin.orchestrator.run_once()
    assert {CIDS[0], CIDS[4]} <= set(admin.pinner.pinned)


async def test_reconcile_with_the_cluster_down_reports_the_failure(admin: OpsAdmin) -> None:
    admin.put("k", CIDS[0])
    await admin.orchestrator.run_once()
    admin.pinner.statuses[CIDS[0]] = [BackendUnavailable("cluster unreachable")]
    before = snapshot(admin)
    status, body = await admin.send("POST", "/reconcile")
    assert status == 200 and body["failures"] == ["cluster unreachable"] and body["queued"] == 0
    assert snapshot(admin) == before
    assert (await admin.get("/reconcile"))[1]["failures"] == ["cluster unreachable"]


@pytest.mark.parametrize("path", ["/reconcile", "/rebalance"])
@pytest.mark.parametrize("value", ["2", "yes", "dry", "-1", "1 "])
async def test_bad_dry_run_value(admin: OpsAdmin, path: str, value: str) -> None:
    admin.put("k", CIDS[0])
    before = snapshot(admin)
    status, body = await admin.send("POST", f"{path}?dry_run={value}")
    assert (status, body) == (400, {"error": "dry_run must be 1 or 0"})
    assert snapshot(admin) == before and admin.pinner.calls == []
    assert (await admin.get(path))[0] == 404


# ---- rebalance --------------------------------------------------------------------------------------------------


async def test_rebalance_plans_then_moves_off_a_full_peer(tmp_path: Path) -> None:
    admin = build_ops_admin(
        tmp_path / "meta", rebalance=RebalanceSettings(min_free=10 * GiB, max_moves=3, move_timeout=5.0, poll=0.01)
    )
    try:
        for i in range(4):
            admin.put(f"k{i}", CIDS[i])
        await admin.orchestrator.run_once()
        admin.pinner.seed(cid_of(200), {})  # a foreign pin on the full peer: never moved
        assert all(admin.pinner.allocations[c] == ("peer-a", "peer-b") for c in CIDS[:4])
        admin.pinner.peer_list[0] = PeerInfo("peer-a", "a", freespace=1 * GiB)
        admin.pinner.calls.clear()
        before = snapshot(admin)

        status, plan = await admin.send("POST", "/rebalance?dry_run=1")
        assert status == 200 and plan["dry_run"] is True
        assert plan["sources"] == {"peer-a": f"free space {GiB} < {10 * GiB} bytes"}
        assert plan["peers"] == {
            "peer-a": {"freespace": GiB, "allocations": 4},
            "peer-b": {"freespace": 100 * GiB, "allocations": 4},
            "peer-c": {"freespace": 100 * GiB, "allocations": 0},
        }
        moving = [move["cid"] for move in plan["planned"]]
        assert len(set(moving)) == 3 and set(moving) < set(CIDS[:4])  # max_moves; the foreign pin stays
        assert plan["planned"] == [{"cid": c, "from": "peer-a", "to": "peer-c"} for c in moving]
        (staying,) = set(CIDS[:4]) - set(moving)
        assert (plan["moved"], plan["failures"]) == (0, [])
        assert snapshot(admin) == before and mutations(admin) == [] and admin.changes == []
        assert (await admin.get("/rebalance"))[0] == 404

        status, done = await admin.send("POST", "/rebalance")
        assert status == 200 and done["dry_run"] is False
        assert (done["moved"], done["failures"]) == (3, [])
        assert done["planned"] == plan["planned"]
        for cid in moving:
            assert admin.pinner.allocations[cid] == ("peer-b", "peer-c")
            assert admin.pinner.pinned[cid] == ReplicationPolicy(2, 2, allocations=("peer-b", "peer-c"))
            assert admin.pinner.metadata[cid] == PIN_METADATA
        assert admin.pinner.allocations[staying] == ("peer-a", "peer-b")
        assert admin.pinner.allocations[cid_of(200)] == ("peer-a", "peer-b")
        assert admin.changes == [3] and admin.orchestrator.replication_changes_total == 3
        assert await admin.get("/rebalance") == (200, done)
    finally:
        await admin.batches.aclose()
        admin.store.close()


async def test_rebalance_with_nothing_to_move(admin: OpsAdmin) -> None:
    admin.put("k", CIDS[0])
    await admin.orchestrator.run_once()
    status, body = await admin.send("POST", "/rebalance")
    assert status == 200
    assert (body["sources"], body["planned"], body["moved"], body["failures"]) == ({}, [], 0, [])
    assert set(body["peers"]) == set(PEERS)


# ---- the dynamic policy -----------------------------------------------------------------------------------------


async def test_dynamic_run_raises_hot_and_lowers_cold(admin: OpsAdmin) -> None:
    admin.put("hot", CIDS[0])
    admin.put("calm", CIDS[1])
    await admin.orchestrator.run_once()
    admin.store.record_access({CIDS[0]: 50, CIDS[1]: 3}, now=admin.clock.now, half_life=DYNAMIC.half_life)

    status, body = await admin.send("POST", "/dynamic/run")
    assert (status, body) == (200, {"tracked": 2, "raised": [CIDS[0]], "lowered": []})
    await admin.orchestrator.run_once()
    assert admin.pinner.pinned[CIDS[0]] == ReplicationPolicy(3, 3)
    assert admin.pinner.pinned[CIDS[1]] == DEFAULTS
    assert (await admin.get(f"/pins/{CIDS[0]}"))[1]["status"]["extra"] == 1
    assert (await admin.send("POST", "/dynamic/run"))[1] == {"tracked": 2, "raised": [], "lowered": []}

    admin.clock.now += 20 * DYNAMIC.half_life  # cooled far below cold_threshold, and past min_dwell
    status, body = await admin.send("POST", "/dynamic/run")
    assert status == 200 and body["raised"] == [] and body["lowered"] == [CIDS[0]]
    await admin.orchestrator.run_once()
    assert admin.pinner.pinned[CIDS[0]] == DEFAULTS
    assert (await admin.get(f"/pins/{CIDS[0]}"))[1]["status"]["extra"] == 0
    assert admin.changes == [1, 1]


async def test_dynamic_hysteresis_keeps_a_warm_cid(admin: OpsAdmin) -> None:
    admin.put("hot", CIDS[0])
    await admin.orchestrator.run_once()
    admin.store.record_access({CIDS[0]: 12}, now=admin.clock.now, half_life=DYNAMIC.half_life)
    assert (await admin.send("POST", "/dynamic/run"))[1]["raised"] == [CIDS[0]]
    await admin.orchestrator.run_once()
    admin.clock.now += 2 * DYNAMIC.half_life  # 12 → 3: below hot, still above cold
    assert (await admin.send("POST", "/dynamic/run"))[1] == {"tracked": 1, "raised": [], "lowered": []}
    assert admin.pinner.pinned[CIDS[0]] == ReplicationPolicy(3, 3)


# ---- batches ----------------------------------------------------------------------------------------------------


async def test_batch_pin_with_progress(admin: OpsAdmin) -> None:
    cids = [cid_of(300 + i) for i in range(20)]
    status, started = await admin.send("POST", "/batches", {"op": "pin", "cids": [*cids, cids[0]]})
    assert status == 202
    assert started["op"] == "pin" and started["params"] == {"count": 20} and started["total"] == 20
    assert started["state"] == "running" and len(started["id"]) == 16
    done = await admin.wait_batch(started["id"])
    assert (done["state"], done["done"], done["failed"], done["skipped"], done["errors"]) == ("done", 20, 0, 0, [])
    assert done["finished"] >= done["started"]
    for cid in cids:
        assert admin.pinner.pinned[cid] == DEFAULTS
        assert admin.pinner.metadata[cid] == {"s3ipfs-batch": started["id"]}
        assert admin.pinner.names[cid] == f"batch-{started['id']}"
    # batch pins carry their own metadata: reconcile counts them as foreign, never as orphans to unpin
    status, body = await admin.send("POST", "/reconcile")
    assert (body["orphans"], body["foreign"], body["orphans_queued"]) == (0, 20, 0)


async def test_batch_pin_reports_pinner_failures(admin: OpsAdmin) -> None:
    admin.pinner.pin_failures = [BackendUnavailable("cluster busy")]
    status, started = await admin.send("POST", "/batches", {"op": "pin", "cids": [CIDS[0]]})
    assert status == 202
    done = await admin.wait_batch(started["id"])
    assert (done["state"], done["done"], done["failed"]) == ("done", 0, 1)
    assert done["errors"] == [f"{CIDS[0]}: cluster busy"]


async def test_batch_unpin_skips_referenced_cids(admin: OpsAdmin) -> None:
    admin.put("kept", CIDS[0])
    await admin.orchestrator.run_once()
    admin.pinner.seed(CIDS[1], {})
    status, started = await admin.send("POST", "/batches", {"op": "unpin", "cids": [CIDS[0], CIDS[1], CIDS[2]]})
    assert status == 202 and started["total"] == 3
    done = await admin.wait_batch(started["id"])
    assert (done["state"], done["done"], done["skipped"], done["failed"]) == ("done", 2, 1, 0)
    assert done["errors"] == [f"{CIDS[0]}: objects still reference it (delete them to release it)"]
    assert set(admin.pinner.pinned) == {CIDS[0]}
    assert ("unpin", CIDS[0]) not in admin.pinner.calls


async def test_batch_repin_a_prefix_with_a_new_policy(admin: OpsAdmin) -> None:
    for i, key in enumerate(["a/1", "a/2", "a/3", "b/1"]):
        admin.put(key, CIDS[i])
    admin.put("a/4", CIDS[0])  # two keys, one CID: one job
    await admin.orchestrator.run_once()
    policy = {"replication_min": 3, "replication_max": 3}
    status, started = await admin.send(
        "POST", "/batches", {"op": "repin", "bucket": BUCKET, "prefix": "a/", "policy": policy}
    )
    assert status == 202
    assert started["params"] == {"bucket": BUCKET, "prefix": "a/", "policy": policy}
    done = await admin.wait_batch(started["id"])
    assert (done["state"], done["total"], done["done"], done["skipped"], done["failed"]) == ("done", 4, 4, 0, 0)
    assert json.loads(admin.store.get_bucket_config(BUCKET, "replication") or "{}")["replication_min"] == 3
    assert [admin.store.pin_job(c) is not None for c in CIDS[:4]] == [True, True, True, False]
    assert admin.changes == [3]
    await admin.orchestrator.run_once()
    assert [admin.pinner.pinned[c] for c in CIDS[:4]] == [ReplicationPolicy(3, 3)] * 3 + [DEFAULTS]


async def test_batch_repin_of_an_empty_prefix(admin: OpsAdmin) -> None:
    status, started = await admin.send("POST", "/batches", {"op": "repin", "bucket": BUCKET, "prefix": "none/"})
    assert status == 202
    done = await admin.wait_batch(started["id"])
    assert (done["state"], done["total"], done["done"]) == ("done", 0, 0)


async def test_batches_listed_newest_first(admin: OpsAdmin) -> None:
    ids = []
    for i in range(3):
        admin.clock.now += 1
        status, started = await admin.send("POST", "/batches", {"op": "pin", "cids": [CIDS[i]]})
        ids.append(started["id"])
        await admin.wait_batch(started["id"])
    status, body = await admin.get("/batches")
    assert status == 200 and [b["id"] for b in body["batches"]] == ids[::-1]
    assert all(b["state"] == "done" for b in body["batches"])


async def test_cancel_a_running_batch(admin: OpsAdmin) -> None:
    admin.pinner.pin_delay = 0.2
    cids = [cid_of(400 + i) for i in range(200)]
    status, started = await admin.send("POST", "/batches", {"op": "pin", "cids": cids})
    batch_id = started["id"]
    await asyncio.sleep(0.05)
    status, body = await admin.send("DELETE", f"/batches/{batch_id}")
    assert (status, body) == (200, {"id": batch_id, "cancelled": True})
    cancelled = await admin.wait_batch(batch_id)
    assert cancelled["state"] == "cancelled" and cancelled["done"] < 200 and cancelled["finished"] > 0
    await asyncio.sleep(0.3)
    assert len(admin.pinner.pinned) == cancelled["done"] == (await admin.get(f"/batches/{batch_id}"))[1]["done"]
    status, body = await admin.send("DELETE", f"/batches/{batch_id}")
    assert (status, body) == (409, {"error": f"batch {batch_id} is cancelled, not running"})


async def test_cancel_unknown_and_finished_batches(admin: OpsAdmin) -> None:
    status, body = await admin.send("DELETE", "/batches/0123456789abcdef")
    assert (status, body) == (404, {"error": "no such batch: '0123456789abcdef'"})
    status, body = await admin.get("/batches/" + "x" * 300)
    assert status == 404 and body == {"error": f"no such batch: {'x' * 40!r}"}
    status, started = await admin.send("POST", "/batches", {"op": "pin", "cids": [CIDS[0]]})
    await admin.wait_batch(started["id"])
    status, body = await admin.send("DELETE", f"/batches/{started['id']}")
    assert (status, body) == (409, {"error": f"batch {started['id']} is done, not running"})


async def test_the_largest_batch_is_accepted(admin: OpsAdmin) -> None:
    cids = [cid_of(i) for i in range(100_000)]
    body = json.dumps({"op": "unpin", "cids": cids}).encode()
    assert len(body) < 8 * 1024 * 1024
    status, started = await admin.send("POST", "/batches", body)
    assert status == 202 and started["total"] == 100_000
    await admin.send("DELETE", f"/batches/{started['id']}")


# ---- hostile input ----------------------------------------------------------------------------------------------

_TOO_MANY = json.dumps({"op": "pin", "cids": [cid_of(i) for i in range(100_001)]}).encode()


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"{not json", 400, "the body is not JSON"),
        (b"", 400, "the body is not JSON"),
        (b"\xff\xfe{}", 400, "the body is not JSON"),
        (b"[]", 400, "the body must be a JSON object"),
        (b'"pin"', 400, "the body must be a JSON object"),
        (b"null", 400, "the body must be a JSON object"),
        (b"{}", 400, "op must be one of repin, pin, unpin"),
        (b'{"op": "delete", "cids": []}', 400, "op must be one of repin, pin, unpin"),
        (b'{"op": ["pin"]}', 400, "op must be one of"),
        (b'{"op": "pin", "cids": ["%s"], "force": true}' % CIDS[0].encode(), 400, "unknown fields for pin: force"),
        (b'{"op": "unpin", "cids": [], "bucket": "bkt"}', 400, "unknown fields for unpin: bucket"),
        (b'{"op": "repin", "bucket": "bkt", "cids": []}', 400, "unknown fields for repin: cids"),
        (b'{"op": "pin"}', 400, "cids must be a non-empty list of CIDs"),
        (b'{"op": "pin", "cids": "%s"}' % CIDS[0].encode(), 400, "cids must be a non-empty list of CIDs"),
        (b'{"op": "pin", "cids": {"a": 1}}', 400, "cids must be a non-empty list of CIDs"),
        (b'{"op": "pin", "cids": []}', 400, "cids must be a non-empty list of CIDs"),
        (b'{"op": "unpin", "cids": [null]}', 400, "every entry of cids must be a string"),
        (b'{"op": "pin", "cids": ["%s", 7]}' % CIDS[0].encode(), 400, "every entry of cids must be a string"),
        (b'{"op": "pin", "cids": ["not-a-cid"]}', 400, "not a CID: 'not-a-cid'"),
        (b'{"op": "pin", "cids": [""]}', 400, "not a CID: ''"),
        (b'{"op": "pin", "cids": ["Qm%s"]}' % (b"x" * 5000), 400, "not a CID: 'Qmxxxx"),
        (_TOO_MANY, 400, "cids lists more than 100000 CIDs; split the batch"),
        (b'{"op": "repin"}', 400, "bucket must be a non-empty string"),
        (b'{"op": "repin", "bucket": ""}', 400, "bucket must be a non-empty string"),
        (b'{"op": "repin", "bucket": 5}', 400, "bucket must be a non-empty string"),
        (b'{"op": "repin", "bucket": "bkt", "prefix": null}', 400, "prefix must be a string"),
        (b'{"op": "repin", "bucket": "bkt", "prefix": ["a"]}', 400, "prefix must be a string"),
        (b'{"op": "repin", "bucket": "bkt", "prefix": "%s"}' % (b"p" * 1025), 400, "prefix is longer than 1024"),
        (b'{"op": "repin", "bucket": "bkt", "prefix": "%s"}' % ("\u00e9" * 513).encode(), 400, "prefix is longer"),
        (b'{"op": "repin", "bucket": "nope"}', 404, "no such bucket: nope"),
        (b'{"op": "repin", "bucket": "nope", "policy": {"replication_min": 3}}', 404, "no such bucket"),
        (b'{"op": "repin", "bucket": "bkt", "policy": 5}', 400, "a replication policy is a JSON object"),
        (b'{"op": "repin", "bucket": "bkt", "policy": []}', 400, "a replication policy is a JSON object"),
        (b'{"op": "repin", "bucket": "bkt", "policy": {"ack": "never"}}', 400, "ack must be 'local' or 'cluster'"),
        (b'{"op": "repin", "bucket": "bkt", "policy": {"replication_min": 3, "replication_max": 2}}', 400, "larger"),
        (b'{"op": "repin", "bucket": "bkt", "policy": {"replication_min": -1}}', 400, "must be given for both"),
        (b'{"op": "repin", "bucket": "bkt", "policy": {"colour": "red"}}', 400, "unknown replication policy fields"),
        (b'{"op": "repin", "bucket": "bkt", "policy": {"replication_min": "2"}}', 400, "replication_min"),
        (b" " * (8 * 1024 * 1024 + 1), 400, "the body is larger than 8388608 bytes"),
    ],
    ids=lambda value: value[:40].decode(errors="replace") if isinstance(value, bytes) else str(value),
)
async def test_batch_requests_rejected(admin: OpsAdmin, body: bytes, code: int, message: str) -> None:
    admin.put("a/1", CIDS[0])
    before = snapshot(admin)
    status, answer = await admin.send("POST", "/batches", body)
    assert status == code, answer
    assert set(answer) == {"error"} and message in answer["error"]
    assert len(answer["error"]) <= 400  # hostile values are not echoed in full
    assert snapshot(admin) == before and admin.pinner.calls == [] and admin.changes == []


async def test_a_body_over_quarts_own_limit_is_refused_as_json(admin: OpsAdmin) -> None:
    before = snapshot(admin)
    status, answer = await admin.send("POST", "/batches", b" " * (17 * 1024 * 1024))
    assert (status, answer) == (400, {"error": "the body is larger than 8388608 bytes"})
    assert snapshot(admin) == before


async def test_a_chunked_body_over_the_limit(admin: OpsAdmin) -> None:
    """No Content-Length: the limit is enforced while the body streams in."""

    async def chunks() -> Any:
        for _ in range(9):
            yield b" " * (1024 * 1024)

    before = snapshot(admin)
    client = admin.app.test_client()
    async with client.request("/batches", method="POST", headers={"Content-Type": "application/json"}) as conn:
        async for chunk in chunks():
            await conn.send(chunk)
        await conn.send_complete()
    assert conn.status_code == 400
    assert json.loads(bytes(conn.response_data)) == {"error": "the body is larger than 8388608 bytes"}
    assert snapshot(admin) == before


# ---- parts the composition root did not build ------------------------------------------------------------------


async def test_routes_when_the_jobs_are_absent(tmp_path: Path) -> None:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    try:
        store.create_bucket(make_bucket())
        content = as_content(MemoryContent())
        pinner = FakePinner()
        policies = PolicyBook(store, DEFAULTS)
        orchestrator = PinOrchestrator(store, pinner, policies, OrchestratorSettings(), registry=CollectorRegistry())
        app = authed_admin_app(
            AdminState(
                objects=ObjectService(store, content, unpin_grace=GRACE),
                content=content,
                store=store,
                unpinner=Unpinner(store, content, interval=1.0),
                pinner=pinner,
                policies=policies,
                orchestrator=orchestrator,
            ),
            tmp_path,
        )
        client = app.test_client()
        expected = {
            ("POST", "/reconcile"): (404, {"error": "reconcile is not available: no pinner"}),
            ("GET", "/reconcile"): (404, {"error": "no reconcile pass has run yet; POST /reconcile runs one"}),
            ("POST", "/rebalance"): (
                404,
                {"error": "rebalancing is not available: it needs a cluster (cluster.endpoints)"},
            ),
            ("GET", "/rebalance"): (404, {"error": "no rebalancing pass has run yet; POST /rebalance runs one"}),
            ("POST", "/dynamic/run"): (404, {"error": "the dynamic policy is not available: no pinner"}),
            ("POST", "/batches"): (404, {"error": "batches is not available: no pinner"}),
            ("GET", "/batches"): (200, {"batches": []}),
            ("GET", "/batches/abc"): (404, {"error": "no such batch: 'abc'"}),
            ("DELETE", "/batches/abc"): (404, {"error": "no such batch: 'abc'"}),
        }
        for (method, path), answer in expected.items():
            response = await client.open(path, method=method, json={"op": "pin", "cids": [CIDS[0]]})
            assert (response.status_code, await response.get_json()) == answer, (method, path)
        assert pinner.calls == []
    finally:
        store.close()
