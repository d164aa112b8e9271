"""The gateway daemon (`s3ipfs serve`, real boto3 client) pinning through the cluster test peer over three real IPFS
nodes: replication reaches the nodes, `ack: cluster` buckets, the cluster down, kill -9 with 1,000 queued pins,
API faults, and the pin metrics."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appliance.ipfsconn.devnode import LocalNode
from tests.integration.pinning.gateway_cluster import (
    admin,
    cluster_config,
    kill_gateway,
    metric_samples,
    peer_allocations,
    peer_get,
    pin_detail,
    pin_state_header,
    pinned_on,
    restart_gateway,
    s3_client,
    wait_until,
)
from tests.support.cluster_peer import ClusterPeer
from tests.support.gateway import Gateway, running_gateway, start_gateway, stop_gateway
from tests.support.unixfs_cid import cid_of_bytes

CHUNK = 1024 * 1024  # the gateway's default ipfs.chunk_size
PIN_METADATA = {"s3ipfs": "1"}
SETTLE = 180.0  # seconds any pin state change may take on a busy 2-core machine


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, nodes: list[LocalNode], peer: ClusterPeer) -> Iterator[Gateway]:
    gateway = start_gateway(
        tmp_path_factory.mktemp("gateway-pins"), nodes[0], workers=2, extra_config=cluster_config(peer)
    )
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


@pytest.fixture(scope="module")
def s3(gw: Gateway) -> Any:
    return s3_client(gw)


def header(reply: dict[str, Any], name: str) -> str:
    return str(reply["ResponseMetadata"]["HTTPHeaders"][name])


def summary(gw: Gateway) -> dict[str, Any]:
    reply = admin(gw, "GET", "/pins/summary")
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def metrics(gw: Gateway) -> dict[str, float]:
    reply = admin(gw, "GET", "/metrics")
    assert reply.status_code == 200
    return metric_samples(reply.text)


def state_of(gw: Gateway, cid: str, wanted: str) -> Callable[[], dict[str, Any] | None]:
    """A probe: the admin pin detail of `cid` once its stored state is `wanted`."""

    def probe() -> dict[str, Any] | None:
        detail = pin_detail(gw, cid)
        if detail is not None and detail["status"] is not None and detail["status"]["state"] == wanted:
            return detail
        return None

    return probe


def finished(gw: Gateway, cid: str) -> Callable[[], dict[str, Any] | None]:
    """A probe: the pin detail once `cid` is pinned and its outbox job is gone."""

    def probe() -> dict[str, Any] | None:
        detail = state_of(gw, cid, "pinned")()
        return detail if detail is not None and detail["job"] is None else None

    return probe


def set_policy(gw: Gateway, bucket: str, **policy: Any) -> dict[str, Any]:
    reply = admin(gw, "PUT", f"/buckets/{bucket}/replication", json=policy)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def assert_no_traceback(gw: Gateway) -> None:
    log = gw.log_tail(50_000_000)
    assert "Traceback" not in log, log[-6000:]


# ---- 1. a PUT is replicated by the cluster; a DELETE releases it -------------------------------------------------


def test_put_is_pinned_on_the_cluster_nodes_and_delete_unpins(
    gw: Gateway, s3: Any, peer: ClusterPeer, nodes: list[LocalNode]
) -> None:
    s3.create_bucket(Bucket="durable")
    data = os.urandom(64 * 1024)
    reply = s3.put_object(Bucket="durable", Key="dir/obj.bin", Body=data)
    cid = header(reply, "x-amz-meta-cid")
    assert cid == cid_of_bytes(data, CHUNK)
    assert pin_state_header(reply) in ("queued", "pinning", "pinned")

    wait_until(
        lambda: pin_state_header(s3.head_object(Bucket="durable", Key="dir/obj.bin")) == "pinned",
        "HEAD x-ipfs-pin-status pinned",
        timeout=SETTLE,
    )
    detail = pin_detail(gw, cid, live=True)
    assert detail is not None and detail["job"] is None
    status = detail["status"]
    assert status["state"] == "pinned" and status["error"] == ""
    assert status["name"] == "durable/dir/obj.bin" and status["completions"] == 1
    assert (status["replication_min"], status["replication_max"]) == (2, 2)
    assert len([p for p in status["peers"] if p["status"] == "pinned"]) >= 2
    assert {p["peer"] for p in status["peers"]} >= set(detail["live"]["allocations"])
    assert detail["live"]["pinned"] >= 2 and len(detail["live"]["allocations"]) == 2

    info = peer_get(peer, f"/pins/{cid}").json()
    assert info["name"] == "durable/dir/obj.bin" and info["metadata"] == PIN_METADATA
    assert sorted(info["allocations"]) == sorted(detail["live"]["allocations"])
    node_of = {node.peer_id(): node for node in nodes}
    for allocated in info["allocations"]:
        entry = info["peer_map"][allocated]
        assert entry["status"] == "pinned"
        assert pinned_on(node_of[entry["ipfs_peer_id"]], cid)
    assert sum(pinned_on(node, cid) for node in nodes) >= 2
    assert s3.get_object(Bucket="durable", Key="dir/obj.bin")["Body"].read() == data

    s3.delete_object(Bucket="durable", Key="dir/obj.bin")
    wait_until(lambda: peer_get(peer, f"/allocations/{cid}").status_code == 404, "cluster pin removed", timeout=SETTLE)
    wait_until(lambda: pin_detail(gw, cid) is None, "gateway pin status dropped after the unpin", timeout=SETTLE)
    wait_until(
        lambda: all(p["status"] == "unpinned" for p in peer_get(peer, f"/pins/{cid}").json()["peer_map"].values()),
        "every cluster peer reports unpinned",
        timeout=SETTLE,
    )
    wait_until(lambda: not any(pinned_on(node, cid) for node in nodes), "no node keeps a pin", timeout=SETTLE)
    assert_no_traceback(gw)


# ---- 2. buckets acknowledged by the cluster ------------------------------------------------------------------


def test_ack_cluster_put_returns_pinned(gw: Gateway, s3: Any, peer: ClusterPeer) -> None:
    s3.create_bucket(Bucket="acked")
    doc = set_policy(gw, "acked", ack="cluster", replication_min=2, replication_max=2)
    assert doc["own"] is True and doc["policy"]["ack"] == "cluster"
    assert admin(gw, "GET", "/buckets/acked/replication").json()["policy"]["replication_min"] == 2

    data = os.urandom(20_000)
    reply = s3.put_object(Bucket="acked", Key="k", Body=data)
    cid = header(reply, "x-amz-meta-cid")
    assert pin_state_header(reply) == "pinned"
    assert pin_state_header(s3.head_object(Bucket="acked", Key="k")) == "pinned"
    info = peer_get(peer, f"/pins/{cid}").json()
    assert len([p for p in info["peer_map"].values() if p["status"] == "pinned"]) >= 2
    assert info["name"] == "acked/k"
    # The outbox job the commit queued still runs (idempotently) and finishes exactly once.
    detail = wait_until(finished(gw, cid), "outbox job of the acknowledged PUT finished", timeout=SETTLE)
    assert detail["status"]["completions"] == 1
    assert pin_state_header(s3.get_object(Bucket="acked", Key="k")) == "pinned"
    assert s3.get_object(Bucket="acked", Key="k")["Body"].read() == data


def test_ack_cluster_timeout_is_503_and_the_retry_succeeds(
    tmp_path: Path, nodes: list[LocalNode], peer: ClusterPeer
) -> None:
    config = cluster_config(peer, pinning={"ack_timeout_seconds": 2.0}, objects={"unpin_grace_seconds": 600.0})
    with running_gateway(tmp_path, nodes[0], workers=1, extra_config=config, name="gw-ack") as gw:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="slow")
        set_policy(gw, "slow", ack="cluster", replication_min=2, replication_max=2)
        data = os.urandom(30_000)
        cid = cid_of_bytes(data, CHUNK)
        peer.set_faults(pin_delay={cid: 20.0})

        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="slow", Key="k", Body=data)
        error = info.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert error["Error"]["Code"] == "ServiceUnavailable"
        assert error["Error"]["Message"] == "Service is unavailable. Please retry."  # the detail goes to the log
        assert "traceback" not in str(error).lower()
        assert int(error["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) > 0
        # Nothing half-written: no object, no pin job.
        with pytest.raises(ClientError) as missing:
            s3.head_object(Bucket="slow", Key="k")
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert admin(gw, "GET", "/pins/summary").json()["outbox_depth"] == 0
        # The cluster still tracks the pin the PUT asked for, still in progress.
        tracked = peer_get(peer, f"/allocations/{cid}")
        assert tracked.status_code == 200 and tracked.json()["name"] == "slow/k"
        progress = peer_get(peer, f"/pins/{cid}").json()["peer_map"]
        assert {progress[p]["status"] for p in tracked.json()["allocations"]} <= {"pin_queued", "pinning"}

        peer.clear_faults()
        reply = s3.put_object(Bucket="slow", Key="k", Body=data)  # the client's retry
        assert header(reply, "x-amz-meta-cid") == cid and pin_state_header(reply) == "pinned"
        assert pin_state_header(s3.head_object(Bucket="slow", Key="k")) == "pinned"
        detail = wait_until(finished(gw, cid), "the retried PUT's job finished", timeout=SETTLE)
        assert detail["status"]["completions"] == 1
        assert s3.get_object(Bucket="slow", Key="k")["Body"].read() == data
        assert_no_traceback(gw)


def test_ack_cluster_503_without_retry_leaves_no_pin_behind(
    tmp_path: Path, nodes: list[LocalNode], peer: ClusterPeer
) -> None:
    config = cluster_config(peer, pinning={"ack_timeout_seconds": 2.0}, objects={"unpin_grace_seconds": 0.5})
    with running_gateway(tmp_path, nodes[0], workers=1, extra_config=config, name="gw-ack-orphan") as gw:
        s3 = s3_client(gw)
        s3.create_bucket(Bucket="refused")
        set_policy(gw, "refused", ack="cluster", replication_min=2, replication_max=2)
        data = os.urandom(30_000)
        cid = cid_of_bytes(data, CHUNK)
        peer.set_faults(pin_delay={cid: 60.0})
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket="refused", Key="k", Body=data)
        assert info.value.response["Error"]["Code"] == "ServiceUnavailable"
        # The refused PUT's pins (the local add, the cluster pin it asked for) are released after the grace.
        wait_until(
            lambda: peer_get(peer, f"/allocations/{cid}").status_code == 404, "cluster pin released", timeout=SETTLE
        )
        wait_until(lambda: not any(pinned_on(node, cid) for node in nodes), "no node keeps a pin", timeout=SETTLE)
        assert pin_detail(gw, cid) is None and summary(gw)["outbox_depth"] == 0
        assert admin(gw, "GET", f"/objects/by-cid/{cid}").json() == []
        assert_no_traceback(gw)


# ---- 3. the cluster API down ---------------------------------------------------------------------------------


def test_cluster_down_puts_succeed_and_the_outbox_drains(gw: Gateway, s3: Any, peer: ClusterPeer) -> None:
    s3.create_bucket(Bucket="outage")
    peer.stop()
    bodies = {f"obj-{i:02d}": os.urandom(2000 + i) for i in range(20)}
    cids: dict[str, str] = {}
    for key, data in bodies.items():
        reply = s3.put_object(Bucket="outage", Key=key, Body=data)
        assert pin_state_header(reply) in ("queued", "error")
        cids[key] = header(reply, "x-amz-meta-cid")
    for key, data in bodies.items():
        assert s3.get_object(Bucket="outage", Key=key)["Body"].read() == data

    for key, cid in cids.items():
        detail = wait_until(state_of(gw, cid, "error"), f"{key} in error while the cluster is down", timeout=SETTLE)
        assert detail["job"] is not None
        assert detail["status"]["error"].startswith("pin request failed: IPFS Cluster")
        assert "no endpoint answered" in detail["status"]["error"]
        assert detail["status"]["attempts"] >= 1
    assert pin_state_header(s3.head_object(Bucket="outage", Key="obj-00")) == "error"
    during = summary(gw)
    assert during["pinner"] == "cluster"
    assert during["states"]["error"] + during["states"]["queued"] >= 20 and during["outbox_depth"] >= 20

    peer.start()
    wait_until(lambda: summary(gw)["outbox_depth"] == 0, "outbox drained after the cluster returned", timeout=SETTLE)
    pinset = peer_allocations(peer)
    for key, cid in cids.items():
        drained = pin_detail(gw, cid)
        assert drained is not None and drained["job"] is None
        assert drained["status"]["state"] == "pinned" and drained["status"]["completions"] == 1, key
        assert pinset[cid]["name"] == f"outage/{key}" and len(pinset[cid]["allocations"]) == 2
        assert pin_state_header(s3.head_object(Bucket="outage", Key=key)) == "pinned"
    assert metrics(gw)["s3ipfs_pin_outbox_depth"] == 0
    assert_no_traceback(gw)


# ---- 5. faults of the cluster API ----------------------------------------------------------------------------

SLOW_API = 14.0  # seconds: above the gateway's cluster.timeout (10 s, see cluster_config)

FAULTS: dict[str, tuple[Callable[[ClusterPeer, str], Any], str]] = {
    "malformed-json": (lambda peer, cid: peer.set_faults(malformed_next=100_000), "malformed JSON reply"),
    "server-error": (
        lambda peer, cid: peer.set_faults(fail_next={"count": 100_000, "code": 500, "message": "injected outage"}),
        "injected outage",
    ),
    "rejected-cid": (
        lambda peer, cid: peer.set_faults(reject={cid: {"code": 400, "message": "error decoding Cid: injected"}}),
        "error decoding Cid: injected",
    ),
    "slow-api": (lambda peer, cid: peer.set_faults(api_delay=SLOW_API), "timed out"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_cluster_fault_is_an_error_status_and_the_job_survives(
    gw: Gateway, s3: Any, peer: ClusterPeer, fault: str
) -> None:
    inject, expected = FAULTS[fault]
    bucket = f"fault-{fault}"
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(3000)
    cid = cid_of_bytes(data, CHUNK)
    errors_before = summary(gw)["errors_total"]
    inject(peer, cid)

    reply = s3.put_object(Bucket=bucket, Key="hit", Body=data)  # local ack: the fault does not reach the client
    assert header(reply, "x-amz-meta-cid") == cid
    assert s3.get_object(Bucket=bucket, Key="hit")["Body"].read() == data
    detail = wait_until(state_of(gw, cid, "error"), f"error status under {fault}", timeout=SETTLE)
    status = detail["status"]
    assert status["error"].startswith("pin request failed: IPFS Cluster") and expected in status["error"]
    assert "Traceback" not in status["error"] and detail["job"] is not None
    assert pin_state_header(s3.head_object(Bucket=bucket, Key="hit")) == "error"
    during = summary(gw)  # the orchestrator's admin view still answers
    assert during["errors_total"] > errors_before and during["states"]["error"] >= 1

    if fault == "rejected-cid":
        # Only that CID is refused: other objects pin normally, the rejected job is retried and stays tracked.
        other = s3.put_object(Bucket=bucket, Key="other", Body=os.urandom(3000))
        wait_until(finished(gw, header(other, "x-amz-meta-cid")), "another object pinned", timeout=SETTLE)
        retried = wait_until(
            lambda: d if (d := pin_detail(gw, cid)) and d["status"]["attempts"] >= 3 else None,
            "the rejected pin retried",
            timeout=SETTLE,
        )
        assert retried["status"]["state"] == "error" and retried["job"] is not None
        assert expected in retried["status"]["error"]

    peer.clear_faults()
    detail = wait_until(finished(gw, cid), f"pinned after the {fault} fault cleared", timeout=SETTLE)
    assert detail["status"]["completions"] == 1 and detail["status"]["error"] == ""
    assert pin_state_header(s3.head_object(Bucket=bucket, Key="hit")) == "pinned"
    later = s3.put_object(Bucket=bucket, Key="later", Body=os.urandom(3000))
    wait_until(finished(gw, header(later, "x-amz-meta-cid")), "a later PUT pinned", timeout=SETTLE)
    assert peer_get(peer, f"/allocations/{cid}").json()["name"] == f"{bucket}/hit"
    assert_no_traceback(gw)


# ---- 6. metrics ----------------------------------------------------------------------------------------------


def test_pin_metrics(gw: Gateway, s3: Any) -> None:
    s3.create_bucket(Bucket="measured")
    reply = s3.put_object(Bucket="measured", Key="m", Body=os.urandom(5000))
    wait_until(finished(gw, header(reply, "x-amz-meta-cid")), "pinned", timeout=SETTLE)
    samples = metrics(gw)
    assert samples['ipfs_pin_duration_seconds_count{pinner="cluster"}'] > 0
    assert samples['ipfs_pin_duration_seconds_sum{pinner="cluster"}'] >= 0
    assert samples["s3ipfs_pin_jobs_completed_total"] > 0
    assert samples["s3ipfs_pin_jobs_completed_total"] == summary(gw)["completed_total"]
    assert samples["s3ipfs_pin_outbox_depth"] == 0
    assert "s3ipfs_pin_errors_total" in samples


# ---- 4. kill -9 with 1,000 pins queued (last: it leaves a large pinset on the module's test peer) ----------------

COUNT = 1000
RECONCILE_EVERY = 5.0


def _all_pins(gw: Gateway) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = ""
    while True:
        reply = admin(gw, "GET", "/pins", params={"limit": "1000", **({"after": after} if after else {})})
        assert reply.status_code == 200, reply.text
        page = reply.json()
        found.update({record["cid"]: record for record in page["pins"]})
        if page["next"] is None:
            return found
        after = page["next"]


@pytest.mark.timeout(1800)
def test_kill_9_with_1000_queued_pins_loses_none_and_finishes_each_once(
    tmp_path: Path, nodes: list[LocalNode], peer: ClusterPeer
) -> None:
    # Reconcile runs often (its first pass comes one interval after start): it lists the pinset while the outbox
    # drains, and must not queue a second job for a CID whose job finished after the listing.
    config = cluster_config(peer, pinning={"reconcile_interval_seconds": RECONCILE_EVERY})
    gw = start_gateway(tmp_path, nodes[0], workers=2, extra_config=config, name="gw-crash")
    try:
        s3 = s3_client(gw, pool=16)
        s3.create_bucket(Bucket="crash")
        peer.stop()
        bodies = {f"k{i:04d}": f"object {i} {secrets.token_hex(8)}".encode() for i in range(COUNT)}

        def put(key: str) -> tuple[str, str]:
            return key, header(s3.put_object(Bucket="crash", Key=key, Body=bodies[key]), "x-amz-meta-cid")

        with ThreadPoolExecutor(max_workers=16) as pool:
            cids = dict(pool.map(put, bodies))
        assert {cid: key for key, cid in cids.items()} == {cid_of_bytes(bodies[k], CHUNK): k for k in bodies}
        queued = summary(gw)
        assert queued["outbox_depth"] == COUNT and queued["states"]["pinned"] == 0

        # The cluster comes back slow, so the drain is under way (not finished) when the whole gateway is killed.
        peer.start()
        peer.set_faults(api_delay=0.5)
        wait_until(lambda: summary(gw)["completed_total"] >= 1, "the drain started", timeout=SETTLE, every=0.05)
        depth_at_kill = summary(gw)["outbox_depth"]
        kill_gateway(gw)
        assert depth_at_kill > 0
        peer.clear_faults()

        gw = restart_gateway(gw)
        wait_until(lambda: summary(gw)["outbox_depth"] == 0, "the outbox drained after the restart", timeout=1200)
        records = _all_pins(gw)
        pinset = peer_allocations(peer)
        for key, cid in cids.items():
            record = records.get(cid)
            assert record is not None, f"{key}: pin status lost"
            assert (record["state"], record["completions"], record["name"]) == ("pinned", 1, f"crash/{key}"), record
            assert cid in pinset and pinset[cid]["name"] == f"crash/{key}", f"{key}: not in the cluster pinset"
            assert len(pinset[cid]["allocations"]) == 2
        node_of = {node.peer_id(): node for node in nodes}
        for cid in sorted(cids.values())[:: COUNT // 25]:  # a sample, checked on the nodes themselves
            info = peer_get(peer, f"/pins/{cid}").json()
            holders = [node_of[info["peer_map"][p]["ipfs_peer_id"]] for p in info["allocations"]]
            assert all(pinned_on(node, cid) for node in holders), cid
        listed = sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket="crash"))
        assert listed == COUNT
        assert_no_traceback(gw)
    finally:
        stop_gateway(gw)
