"""Live pin operations over many CIDs: a real gateway (`s3ipfs serve`) pinning through the cluster test peer over
three real IPFS nodes, driven with boto3, the admin API and the `s3ipfs pins` command in a subprocess. A node
stopped and reconcile (dry run, then the repair), orphan pins, the dynamic policy (periodic and on demand),
rebalancing off a full peer, batches with progress and cancel, and the replication-change metric."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from botocore.config import Config

from appliance.ipfsconn.devnode import LocalNode
from tests.integration.pinning.conftest import AUTH, CAPACITY
from tests.support.cluster_peer import ClusterPeer
from tests.support.gateway import Gateway, gateway_command, gateway_env, start_gateway, stop_gateway

T = TypeVar("T")
GiB = 1024**3
_ROOT = Path(__file__).resolve().parents[3]
BATCH_LINE = re.compile(r"[0-9a-f]{16}  (\w+) +(\w+) +(\d+)/([\d?]+) done, (\d+) failed, (\d+) skipped")


# ---- helpers ------------------------------------------------------------------------------------------------------


def gateway_config(peer: ClusterPeer, **pinning: Any) -> dict[str, Any]:
    """extra_config: the test peer as the cluster, quick outbox timings, replication 2 of the 3 peers."""
    return {
        "cluster": {
            "endpoints": [peer.url],
            "username": AUTH[0],
            "password": AUTH[1],
            "timeout": 20.0,
            "connect_timeout": 2.0,
        },
        "pinning": {
            "replication_min": 2,
            "replication_max": 2,
            "outbox_interval_seconds": 0.2,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 2.0,
            "status_poll_seconds": 0.3,
            "pin_timeout_seconds": 60.0,
            **pinning,
        },
        "objects": {"unpin_grace_seconds": 0.5, "unpin_interval_seconds": 0.2},
    }


@pytest.fixture
def gateways(tmp_path: Path, nodes: list[LocalNode]) -> Iterator[Callable[..., Gateway]]:
    """Start gateways on nodes[0] (stopped after the test)."""
    started: list[Gateway] = []

    def start(peer: ClusterPeer, name: str = "gateway", **pinning: Any) -> Gateway:
        gw = start_gateway(tmp_path, nodes[0], workers=1, extra_config=gateway_config(peer, **pinning), name=name)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        stop_gateway(gw)


@pytest.fixture(autouse=True)
def _empty_pinset(peer: ClusterPeer) -> None:
    """Each test starts with an empty cluster pinset (the peer is shared by the module; the previous test's
    nodes are running again by now)."""
    for cid in peer_pins(peer):
        httpx.delete(f"{peer.url}/pins/{cid}", auth=AUTH, timeout=30.0, trust_env=False)


def s3_client(gw: Gateway) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=gw.access_key,
        aws_secret_access_key=gw.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, read_timeout=60),
    )


def admin(gw: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return gw.admin(method, path, timeout=120.0, **kwargs)


def cli(gw: Gateway, *argv: str) -> subprocess.CompletedProcess[str]:
    """`s3ipfs pins ARGV --config …` in a subprocess."""
    command = [*gateway_command(gw.config_path, "pins")[:-2], *argv, "--config", str(gw.config_path)]
    return subprocess.run(
        command, check=False, cwd=_ROOT, env=gateway_env(), capture_output=True, text=True, timeout=300
    )


def wait_until(probe: Callable[[], T | None], what: str, gw: Gateway | None = None, timeout: float = 120.0) -> T:
    """Poll `probe` until it returns something true; AssertionError with the last value (and the gateway's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\ngateway log:\n{gw.log_tail(3000)}" if gw is not None else ""
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s (last: {value!r}){tail}")
        time.sleep(0.3)


def peer_pins(peer: ClusterPeer) -> dict[str, dict[str, Any]]:
    """The peer's pinset (GET /allocations, an NDJSON stream) by CID."""
    reply = httpx.get(f"{peer.url}/allocations", auth=AUTH, timeout=60.0, trust_env=False)
    reply.raise_for_status()
    pins = [json.loads(line) for line in reply.text.splitlines() if line.strip()]
    return {pin["cid"]: pin for pin in pins}


def peer_status(peer: ClusterPeer, cid: str) -> dict[str, tuple[str, str]]:
    """peer id → (status, error) from the peer's GET /pins/{cid}."""
    reply = httpx.get(f"{peer.url}/pins/{cid}", auth=AUTH, timeout=60.0, trust_env=False)
    reply.raise_for_status()
    return {pid: (info["status"], info["error"]) for pid, info in reply.json()["peer_map"].items()}


def peer_ids(peer: ClusterPeer) -> list[str]:
    """Cluster peer ids in node order (peer0 on nodes[0], …)."""
    reply = httpx.get(f"{peer.url}/peers", auth=AUTH, timeout=30.0, trust_env=False)
    reply.raise_for_status()
    found = [json.loads(line) for line in reply.text.splitlines() if line.strip()]
    return [p["id"] for p in sorted(found, key=lambda p: p["peername"])]


def pin_on_peer(peer: ClusterPeer, cid: str, *, metadata: Mapping[str, str] | None = None) -> None:
    params = {"replication-min": "2", "replication-max": "2", **{f"meta-{k}": v for k, v in (metadata or {}).items()}}
    reply = httpx.post(f"{peer.url}/pins/{cid}", params=params, auth=AUTH, timeout=30.0, trust_env=False)
    reply.raise_for_status()


def pinned_on(node: LocalNode, cid: str) -> bool:
    """Whether the node's Kubo holds a recursive pin of `cid`."""
    reply = httpx.post(
        f"{node.api_url}/api/v0/pin/ls", params={"arg": cid, "type": "recursive"}, timeout=30.0, trust_env=False
    )
    return reply.status_code == 200


def add_blob(node: LocalNode, size: int = 1500) -> str:
    """Random bytes added to `node` without a pin (content for pins the gateway did not make)."""
    params = {"pin": "false", "cid-version": "1", "raw-leaves": "true", "cid-base": "base32"}
    reply = httpx.post(
        f"{node.api_url}/api/v0/add", params=params, files={"file": os.urandom(size)}, timeout=30.0, trust_env=False
    )
    reply.raise_for_status()
    return str(reply.json()["Hash"])


def put_objects(client: Any, bucket: str, count: int, prefix: str = "obj") -> dict[str, tuple[str, bytes]]:
    """key → (cid, bytes) of `count` new objects of distinct random content."""
    client.create_bucket(Bucket=bucket)
    out = {}
    for i in range(count):
        data = os.urandom(3000 + i)
        reply = client.put_object(Bucket=bucket, Key=f"{prefix}{i:02d}", Body=data)
        out[f"{prefix}{i:02d}"] = (reply["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"], data)
    return out


def record(gw: Gateway, cid: str) -> dict[str, Any] | None:
    """The gateway's stored pin status of `cid` (GET /pins/{cid} → status)."""
    reply = admin(gw, "GET", f"/pins/{cid}")
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    status: dict[str, Any] | None = reply.json()["status"]
    return status


def wait_pinned(gw: Gateway, cids: list[str], replicas: int = 2) -> None:
    """Every CID's stored status is `pinned` with `replicas` peers pinned."""

    def pending() -> list[str]:
        out = []
        for cid in cids:
            status = record(gw, cid)
            if status is None or status["state"] != "pinned":
                out.append(cid)
            elif sum(1 for p in status["peers"] if p["status"] == "pinned") < replicas:
                out.append(cid)
        return out

    wait_until(lambda: not pending(), f"pinned on {replicas} peers", gw, timeout=180.0)


def metric(gw: Gateway, name: str) -> float:
    for line in admin(gw, "GET", "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def read_all(client: Any, bucket: str, objects: Mapping[str, tuple[str, bytes]]) -> None:
    for key, (_, data) in objects.items():
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key


# ---- a. a node stops: reconcile (dry run, then the repair) --------------------------------------------------------


def test_reconcile_recovers_the_pins_of_a_stopped_node(
    peer: ClusterPeer, nodes: list[LocalNode], gateways: Callable[..., Gateway]
) -> None:
    gw = gateways(peer, reconcile_interval_seconds=3600.0)
    client = s3_client(gw)
    objects = put_objects(client, "ops-a", 20)
    cids = [cid for cid, _ in objects.values()]
    wait_pinned(gw, cids)
    ids = peer_ids(peer)
    pins = peer_pins(peer)
    assert all(len(pins[cid]["allocations"]) == 2 for cid in cids)
    # the node (not the gateway's own) holding the most of these pins stops
    victim = max((1, 2), key=lambda i: sum(ids[i] in pins[cid]["allocations"] for cid in cids))
    affected = sorted(cid for cid in cids if ids[victim] in pins[cid]["allocations"])
    assert affected
    nodes[victim].stop()

    for cid in affected:
        status, error = peer_status(peer, cid)[ids[victim]]
        assert status == "cluster_error" and "unreachable" in error
    shown = cli(gw, "status", affected[0], "--live", "--json")
    assert shown.returncode == 0, shown.stderr
    live = {p["peer"]: p for p in json.loads(shown.stdout)["live"]["peers"]}
    assert live[ids[victim]]["status"] == "cluster_error"

    assert admin(gw, "GET", "/reconcile").status_code == 404, "a periodic reconcile ran before this test's passes"
    dry = cli(gw, "reconcile", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == "reconcile (dry run: nothing changed) with the cluster pinner"
    assert f"  referenced CIDs: 20, in the pinset: {len(pins)}" in lines
    assert "  missing from the pinset: 0  (queued again: 0)" in lines
    assert f"  in error on a peer: {len(affected)}  (recovered: 0)" in lines
    assert {line.split(": ")[1] for line in lines if line.startswith("    errored: ")} == set(affected[:10])
    assert {cid: p["allocations"] for cid, p in peer_pins(peer).items()} == {
        cid: p["allocations"] for cid, p in pins.items()
    }
    assert admin(gw, "GET", "/pins/summary").json()["outbox_depth"] == 0
    assert admin(gw, "GET", "/reconcile").status_code == 404
    read_all(client, "ops-a", objects)  # readable with the node down

    repaired = cli(gw, "reconcile", "--json")
    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["dry_run"] is False and report["failures"] == []
    assert (report["errored"], report["recovered"]) == (len(affected), len(affected))
    assert sorted(report["samples"]["errored"]) == affected

    live_nodes = [i for i in range(3) if i != victim]

    def settled() -> bool:
        now = peer_pins(peer)
        for cid in cids:
            allocations = now[cid]["allocations"]
            if len(allocations) != 2 or ids[victim] in allocations:
                return False
            if not all(pinned_on(nodes[i], cid) for i in live_nodes):
                return False
        return True

    wait_until(settled, "every CID pinned on the 2 live nodes", gw, timeout=180.0)
    for cid in affected:
        statuses = peer_status(peer, cid)
        assert sorted(s for s, _ in statuses.values()) == ["pinned", "pinned", "remote"]
        assert statuses[ids[victim]][0] == "remote"
    wait_pinned(gw, cids)
    read_all(client, "ops-a", objects)
    last = admin(gw, "GET", "/reconcile")
    assert last.status_code == 200 and last.json()["recovered"] == len(affected)


# ---- b. orphans: ours unpinned after the grace, foreign pins never -------------------------------------------------


def test_reconcile_unpins_our_orphans_after_the_grace_and_never_foreign_pins(
    peer: ClusterPeer, nodes: list[LocalNode], gateways: Callable[..., Gateway]
) -> None:
    grace = 6.0
    gw = gateways(peer, orphan_grace_seconds=grace, reconcile_interval_seconds=3600.0)
    client = s3_client(gw)
    objects = put_objects(client, "ops-b", 2)
    kept = [cid for cid, _ in objects.values()]
    wait_pinned(gw, kept)
    orphan, foreign = add_blob(nodes[0]), add_blob(nodes[0])
    pin_on_peer(peer, orphan, metadata={"s3ipfs": "1"})  # our pin whose object is gone and whose unpin was lost
    pin_on_peer(peer, foreign)
    wait_until(
        lambda: all(sum(s == "pinned" for s, _ in peer_status(peer, c).values()) == 2 for c in (orphan, foreign)),
        "the orphan and the foreign pin pinned",
    )

    reply = admin(gw, "POST", "/reconcile")
    assert reply.status_code == 200
    report = reply.json()
    assert (report["referenced"], report["pinset"], report["missing"], report["errored"]) == (2, 4, 0, 0)
    assert (report["orphans"], report["orphans_queued"], report["foreign"]) == (1, 1, 1)
    assert report["samples"]["orphans"] == [orphan]
    assert orphan in peer_pins(peer)  # still pinned within the grace
    assert metric(gw, "s3ipfs_unpin_queue_depth") == 1

    wait_until(lambda: orphan not in peer_pins(peer), "the orphan unpinned after the grace", gw)
    wait_until(lambda: not any(pinned_on(node, orphan) for node in nodes), "the orphan off every node", gw)
    again = admin(gw, "POST", "/reconcile").json()
    assert (again["orphans"], again["foreign"], again["pinset"]) == (0, 1, 3)
    time.sleep(grace + 2)  # the foreign pin outlives another grace period
    pins = peer_pins(peer)
    assert foreign in pins and not pins[foreign]["metadata"]
    assert sum(s == "pinned" for s, _ in peer_status(peer, foreign).values()) == 2
    assert set(kept) <= set(pins)
    read_all(client, "ops-b", objects)


# ---- c. the dynamic policy ----------------------------------------------------------------------------------------


def _reads(client: Any, bucket: str, key: str, count: int) -> None:
    for _ in range(count):
        client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_dynamic_policy_raises_hot_objects_and_lowers_them_when_cold(
    peer: ClusterPeer, nodes: list[LocalNode], gateways: Callable[..., Gateway]
) -> None:
    gw = gateways(
        peer,
        dynamic_enabled=True,
        hot_threshold=8.0,
        cold_threshold=2.0,
        half_life_seconds=4.0,
        access_flush_seconds=0.5,
        dynamic_interval_seconds=1.0,
        min_dwell_seconds=1.0,
    )
    client = s3_client(gw)
    objects = put_objects(client, "ops-c", 2)
    (hot, _), (calm, _) = objects["obj00"], objects["obj01"]
    wait_pinned(gw, [hot, calm])
    _reads(client, "ops-c", "obj01", 2)
    _reads(client, "ops-c", "obj00", 40)

    def raised() -> bool:
        pin = peer_pins(peer)[hot]
        status = record(gw, hot) or {}
        return (
            (pin["replication_factor_min"], pin["replication_factor_max"]) == (3, 3)
            and len(pin["allocations"]) == 3
            and status.get("extra") == 1
            and status.get("state") == "pinned"
        )

    wait_until(raised, "the hot object's replication raised to 3", gw)
    assert all(pinned_on(node, hot) for node in nodes)
    calm_pin = peer_pins(peer)[calm]
    assert (calm_pin["replication_factor_min"], len(calm_pin["allocations"])) == (2, 2)
    assert (record(gw, calm) or {})["extra"] == 0

    def lowered() -> bool:  # no more reads: it cools below cold_threshold and the extra replica goes
        pin = peer_pins(peer)[hot]
        status = record(gw, hot) or {}
        return (
            (pin["replication_factor_min"], pin["replication_factor_max"]) == (2, 2)
            and len(pin["allocations"]) == 2
            and status.get("extra") == 0
            and status.get("state") == "pinned"
        )

    wait_until(lowered, "the cooled object's replication back to 2", gw)
    wait_until(lambda: sum(s == "pinned" for s, _ in peer_status(peer, hot).values()) == 2, "2 replicas left", gw)
    assert metric(gw, "s3ipfs_replication_changes_total") >= 2
    read_all(client, "ops-c", objects)


def test_dynamic_run_on_demand(peer: ClusterPeer, gateways: Callable[..., Gateway]) -> None:
    gw = gateways(
        peer,
        dynamic_enabled=True,
        hot_threshold=8.0,
        cold_threshold=2.0,
        half_life_seconds=3.0,
        access_flush_seconds=0.5,
        dynamic_interval_seconds=3600.0,  # one periodic pass 5 s after start, then only on demand
        min_dwell_seconds=1.0,
    )
    started = time.monotonic()
    client = s3_client(gw)
    objects = put_objects(client, "ops-c2", 1)
    (hot, _) = objects["obj00"]
    wait_pinned(gw, [hot])
    time.sleep(max(0.0, 8.0 - (time.monotonic() - started)))  # past the periodic pass at 5 s
    _reads(client, "ops-c2", "obj00", 40)

    def run() -> dict[str, Any]:
        reply = admin(gw, "POST", "/dynamic/run")
        assert reply.status_code == 200, reply.text
        result: dict[str, Any] = reply.json()
        return result

    first = wait_until(lambda: (r := run())["raised"] and r, "POST /dynamic/run raises the hot CID", gw)
    assert (first["raised"], first["lowered"], first["tracked"]) == ([hot], [], 1)
    wait_until(lambda: len(peer_pins(peer)[hot]["allocations"]) == 3, "3 allocations", gw)
    wait_until(lambda: (record(gw, hot) or {}).get("extra") == 1, "the extra replica recorded", gw)
    cooled = wait_until(lambda: (r := run())["lowered"] and r, "POST /dynamic/run lowers the cooled CID", gw)
    assert (cooled["raised"], cooled["lowered"]) == ([], [hot])
    wait_until(lambda: len(peer_pins(peer)[hot]["allocations"]) == 2, "back to 2 allocations", gw)
    assert metric(gw, "s3ipfs_replication_changes_total") == 2


# ---- d. rebalance off a full peer ---------------------------------------------------------------------------------


def _rebalance_scene(
    peer: ClusterPeer, gateways: Callable[..., Gateway], max_moves: int
) -> tuple[Gateway, Any, dict[str, tuple[str, bytes]], list[str], int, list[str]]:
    """6 objects pinned, then the non-gateway peer holding most of them made full (1 GiB free < 2 GiB)."""
    gw = gateways(peer, rebalance_min_free_bytes=2 * GiB, rebalance_max_moves=max_moves, pin_timeout_seconds=10.0)
    client = s3_client(gw)
    objects = put_objects(client, "ops-d", 6)
    cids = [cid for cid, _ in objects.values()]
    wait_pinned(gw, cids)
    ids = peer_ids(peer)
    pins = peer_pins(peer)
    full = max((1, 2), key=lambda i: sum(ids[i] in pins[cid]["allocations"] for cid in cids))
    on_full = sorted(cid for cid in cids if ids[full] in pins[cid]["allocations"])
    assert on_full
    peer.set_faults(used={f"peer{full}": CAPACITY - GiB})  # 1 GiB free < rebalance_min_free_bytes
    return gw, client, objects, ids, full, on_full


def test_rebalance_dry_run_plans_moves_off_a_full_peer_and_changes_nothing(
    peer: ClusterPeer, gateways: Callable[..., Gateway]
) -> None:
    gw, _, _, ids, full, on_full = _rebalance_scene(peer, gateways, max_moves=20)
    before = peer_pins(peer)
    reply = admin(gw, "POST", "/rebalance", params={"dry_run": "1"})
    assert reply.status_code == 200
    plan = reply.json()
    assert plan["dry_run"] is True and plan["moved"] == 0 and plan["failures"] == []
    assert list(plan["sources"]) == [ids[full]] and plan["sources"][ids[full]].startswith("free space ")
    assert plan["peers"][ids[full]]["freespace"] < 2 * GiB
    assert sorted(move["cid"] for move in plan["planned"]) == on_full
    for move in plan["planned"]:
        assert move["from"] == ids[full] and move["to"] not in before[move["cid"]]["allocations"]
    assert peer_pins(peer) == before
    assert admin(gw, "GET", "/rebalance").status_code == 404
    shown = cli(gw, "rebalance", "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "rebalance (dry run: nothing moved)"
    assert sorted(line.split()[1].rstrip(":") for line in shown.stdout.splitlines() if "  move " in line) == on_full
    assert peer_pins(peer) == before


def test_rebalance_moves_allocations_off_a_full_peer(
    peer: ClusterPeer, nodes: list[LocalNode], gateways: Callable[..., Gateway]
) -> None:
    gw, client, objects, ids, full, on_full = _rebalance_scene(peer, gateways, max_moves=2)
    reply = admin(gw, "POST", "/rebalance")
    assert reply.status_code == 200
    done = reply.json()
    moving = [move["cid"] for move in done["planned"]]
    assert len(moving) == min(2, len(on_full)) and set(moving) <= set(on_full)
    assert done["failures"] == [] and done["moved"] == len(moving)
    live = [i for i in range(3) if i != full]

    def moved() -> bool:
        pins = peer_pins(peer)
        return all(
            ids[full] not in pins[cid]["allocations"]
            and len(pins[cid]["allocations"]) == 2
            and all(pinned_on(nodes[i], cid) for i in live)
            for cid in moving
        )

    wait_until(moved, "the planned allocations moved off the full peer", gw)
    assert admin(gw, "GET", "/rebalance").json()["moved"] == len(moving)
    read_all(client, "ops-d", objects)


# ---- e. batches ---------------------------------------------------------------------------------------------------


def test_batches_repin_unpin_pin_and_cancel(
    peer: ClusterPeer, nodes: list[LocalNode], gateways: Callable[..., Gateway]
) -> None:
    gw = gateways(peer)
    client = s3_client(gw)
    objects = put_objects(client, "ops-e", 5)
    cids = [cid for cid, _ in objects.values()]
    wait_pinned(gw, cids)
    changes_before = metric(gw, "s3ipfs_replication_changes_total")

    # repin the bucket with 3 replicas, waiting with progress
    repin = cli(gw, "batch", "repin", "ops-e", "--min", "3", "--max", "3", "--wait")
    assert repin.returncode == 0, repin.stderr
    progress = [BATCH_LINE.fullmatch(line) for line in repin.stderr.splitlines()]
    assert progress and all(m is not None and m.group(2) == "running" for m in progress), repin.stderr
    final = BATCH_LINE.fullmatch(repin.stdout.splitlines()[-1])
    assert final is not None and final.groups() == ("repin", "done", "5", "5", "0", "0"), repin.stdout

    def on_three() -> bool:
        pins = peer_pins(peer)
        return all(
            (pins[c]["replication_factor_min"], len(pins[c]["allocations"])) == (3, 3)
            and all(pinned_on(node, c) for node in nodes)
            for c in cids
        )

    wait_until(on_three, "every object pinned on the 3 nodes", gw)
    wait_pinned(gw, cids, replicas=3)
    policy = admin(gw, "GET", "/buckets/ops-e/replication").json()
    assert policy["own"] is True and policy["policy"]["replication_min"] == 3
    assert metric(gw, "s3ipfs_replication_changes_total") >= changes_before + 5

    # unpin a list (one CID still referenced by an object is skipped), then pin it again, following progress
    blobs = [add_blob(nodes[1]) for _ in range(4)]
    for cid in blobs:
        pin_on_peer(peer, cid)
    wait_until(lambda: set(blobs) <= set(peer_pins(peer)), "the blobs in the pinset")

    def follow(batch_id: str) -> dict[str, Any]:
        seen: list[int] = []

        def ended() -> dict[str, Any] | None:
            doc: dict[str, Any] = admin(gw, "GET", f"/batches/{batch_id}").json()
            seen.append(doc["done"])
            return doc if doc["state"] != "running" else None

        doc = wait_until(ended, f"batch {batch_id} ended", gw)
        assert seen == sorted(seen)  # progress only goes forward
        return doc

    reply = admin(gw, "POST", "/batches", json={"op": "unpin", "cids": [*blobs, cids[0]]})
    assert reply.status_code == 202 and reply.json()["total"] == 5
    unpinned = follow(reply.json()["id"])
    assert (unpinned["state"], unpinned["done"], unpinned["skipped"], unpinned["failed"]) == ("done", 4, 1, 0)
    pins = peer_pins(peer)
    assert not set(blobs) & set(pins) and cids[0] in pins

    reply = admin(gw, "POST", "/batches", json={"op": "pin", "cids": blobs})
    assert reply.status_code == 202
    batch_id = reply.json()["id"]
    pinned = follow(batch_id)
    assert (pinned["state"], pinned["done"], pinned["total"], pinned["failed"]) == ("done", 4, 4, 0)
    pins = peer_pins(peer)
    for cid in blobs:
        assert pins[cid]["metadata"] == {"s3ipfs-batch": batch_id}
        assert (pins[cid]["replication_factor_min"], pins[cid]["replication_factor_max"]) == (2, 2)
    wait_until(
        lambda: all(sum(pinned_on(node, c) for node in nodes) >= 2 for c in blobs), "the blobs pinned on 2 nodes", gw
    )
    listed = cli(gw, "batch", "list")
    assert listed.returncode == 0
    assert [line.split()[1] for line in listed.stdout.splitlines()] == ["pin", "unpin", "repin"]

    # cancel a running batch: every cluster API call is slowed down so it is still running
    slow = [add_blob(nodes[2], 200 + i) for i in range(40)]
    peer.set_faults(api_delay=1.0)
    reply = admin(gw, "POST", "/batches", json={"op": "pin", "cids": slow})
    assert reply.status_code == 202
    batch_id = reply.json()["id"]
    cancelled = admin(gw, "DELETE", f"/batches/{batch_id}")
    assert (cancelled.status_code, cancelled.json()) == (200, {"id": batch_id, "cancelled": True})
    peer.set_faults(api_delay=0.0)
    doc = wait_until(
        lambda: (d := admin(gw, "GET", f"/batches/{batch_id}").json())["state"] != "running" and d, "cancelled", gw
    )
    assert doc["state"] == "cancelled" and doc["done"] < 40
    again = cli(gw, "batch", "cancel", batch_id)
    assert again.returncode == 1 and again.stderr == f"s3ipfs: batch {batch_id} is cancelled, not running\n"
    assert len(set(slow) & set(peer_pins(peer))) < 40
    read_all(client, "ops-e", objects)
