"""Scrub live: a real gateway (`s3ipfs serve`) on the first of two real, connected js-ipfs nodes, objects PUT with
boto3, then (d) a pin removed from the node is reported and pinned again; (a) a block deleted from the node's
blockstore is reported missing (while the second node, which holds the same content, is down) and fetched back from
it once it is up; (b) a block whose bytes were overwritten in the node's flatfs blockstore is reported as a hash
mismatch and replaced with the peer's copy; (c) a gateway killed mid-run takes the run up again after the last
finished object. The `s3ipfs scrub` command is run against the live gateway for its exit codes."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.cli.main import main
from appliance.ipfsconn.devnode import LocalNode
from appliance.model import RAW, Cid
from tests.integration.pinning.gateway_cluster import kill_gateway, pinned_on, restart_gateway, s3_client, wait_until
from tests.support.gateway import Gateway, start_gateway, stop_gateway
from tests.support.nodes import start_local_nodes, stop_nodes

CHUNK = 1024
BUCKET = "scrubbed"
SCRUB_CONFIG = {
    "ipfs": {"chunk_size": CHUNK},
    "scrub": {"check_timeout_seconds": 2.0, "fetch_timeout_seconds": 30.0, "resume_delay_seconds": 1.0},
    "cache": {"memory_bytes": 0},  # every GET reads the node
}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalNode]]:
    started = start_local_nodes(tmp_path_factory.mktemp("scrub-nodes"), 2)
    try:
        yield started
    finally:
        stop_nodes(started)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, nodes: list[LocalNode]) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("scrub-gw"), nodes[0], workers=1, extra_config=SCRUB_CONFIG)
    try:
        s3_client(gateway).create_bucket(Bucket=BUCKET)
        yield gateway
    finally:
        stop_gateway(gateway)


@pytest.fixture(autouse=True)
def _second_node_up(nodes: list[LocalNode]) -> Iterator[None]:
    yield
    if nodes[1].pid() is None:
        nodes[1].start()
        nodes[0].connect(nodes[1])


# ---- helpers ------------------------------------------------------------------------------------------------------


def rpc(node: LocalNode, cmd: str, **params: str) -> httpx.Response:
    return httpx.post(f"{node.api_url}/api/v0/{cmd}", params=params, timeout=60.0, trust_env=False)


def put(gw: Gateway, key: str, data: bytes) -> str:
    reply = s3_client(gw).put_object(Bucket=BUCKET, Key=key, Body=data)
    return Cid.normalise(reply["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"])


def get(gw: Gateway, key: str) -> bytes:
    body: bytes = s3_client(gw).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def leaf(data: bytes, index: int) -> str:
    return Cid.of_block(data[index * CHUNK : (index + 1) * CHUNK], RAW).text


def block_file(node: LocalNode, cid: str) -> Path:
    """Where js-ipfs's flatfs keeps a block: base32 of its multihash, sharded by next-to-last/2."""
    parsed = Cid.parse(cid)
    multihash = parsed.raw[2:]  # version 1 and a one-byte codec varint (raw 0x55, dag-pb 0x70)
    key = base64.b32encode(multihash).decode("ascii").rstrip("=")
    return node.repo / "blocks" / key[-3:-1] / f"{key}.data"


def scrub(gw: Gateway, **options: Any) -> dict[str, Any]:
    """Run one scrub through the admin API and wait for its summary."""
    reply = gw.admin("POST", "/scrub", json=options)
    assert reply.status_code == 202, reply.text
    run_id = reply.json()["current"]["id"]

    def finished() -> dict[str, Any] | None:
        status = gw.admin("GET", "/scrub").json()
        last = status.get("last")
        return last if not status["running"] and last and last["id"] == run_id else None

    return wait_until(finished, f"scrub {run_id} to finish", timeout=180.0)


def damage(gw: Gateway) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = gw.admin("GET", "/damage").json()["reports"]
    return reports


def cli(gw: Gateway, *argv: str) -> int:
    return main(["scrub", *argv, "--config", str(gw.config_path)])


# ---- the tests ----------------------------------------------------------------------------------------------------


def test_pin_removed_is_reported_and_pinned_again(gw: Gateway, nodes: list[LocalNode]) -> None:
    data = os.urandom(3 * CHUNK)
    cid = put(gw, "d/pinned", data)
    assert rpc(nodes[0], "pin/rm", arg=cid).status_code == 200
    summary = scrub(gw, bucket=BUCKET, prefix="d/")
    assert (summary["pins_checked"], summary["pins_wrong"], summary["pins_repaired"]) == (1, 1, 0)
    assert not pinned_on(nodes[0], cid)
    assert cli(gw, "status") == 5
    summary = scrub(gw, bucket=BUCKET, prefix="d/", repair=True)
    assert (summary["pins_wrong"], summary["pins_repaired"]) == (1, 1)
    assert pinned_on(nodes[0], cid)
    assert cli(gw, "status") == 0


def test_missing_block_is_fetched_back_from_the_peer(gw: Gateway, nodes: list[LocalNode]) -> None:
    data = os.urandom(5 * CHUNK)
    cid = put(gw, "a/missing", data)
    assert rpc(nodes[1], "pin/add", arg=cid, timeout="30s").status_code == 200  # the peer holds the same content
    lost = leaf(data, 1)
    nodes[1].stop()  # js-ipfs has no offline mode: while a peer has it, a read fetches the block back
    block_file(nodes[0], lost).unlink()

    summary = scrub(gw, bucket=BUCKET, prefix="a/")
    assert (summary["missing"], summary["damaged"], summary["unrepaired"]) == (1, 0, 1)
    assert [(r["block"], r["root"], r["reason"], r["source"]) for r in damage(gw)] == [(lost, cid, "missing", "scrub")]
    assert cli(gw, "damage") == 5

    nodes[1].start()
    nodes[0].connect(nodes[1])
    summary = scrub(gw, bucket=BUCKET, prefix="a/", repair=True)
    assert summary["unrepaired"] == 0 and summary["state"] == "done"
    assert damage(gw) == []
    assert block_file(nodes[0], lost).exists()
    assert get(gw, "a/missing") == data
    assert cli(gw, "damage") == 0


def test_corrupt_block_is_replaced_with_the_peers_copy(gw: Gateway, nodes: list[LocalNode]) -> None:
    data = os.urandom(4 * CHUNK)
    cid = put(gw, "b/corrupt", data)
    assert rpc(nodes[1], "pin/add", arg=cid, timeout="30s").status_code == 200
    bad = leaf(data, 2)
    path = block_file(nodes[0], bad)
    good = path.read_bytes()
    path.write_bytes(b"\x00" * len(good))

    summary = scrub(gw, bucket=BUCKET, prefix="b/")
    assert (summary["damaged"], summary["missing"], summary["unrepaired"]) == (1, 0, 1)
    assert [(r["block"], r["reason"]) for r in damage(gw)] == [(bad, "hash mismatch")]
    assert cli(gw, "--bucket", BUCKET, "--prefix", "b/", "--wait") == 5

    summary = scrub(gw, bucket=BUCKET, prefix="b/", repair=True)
    assert (summary["damaged"], summary["repaired"], summary["unrepaired"]) == (1, 1, 0)
    assert path.read_bytes() == good
    assert pinned_on(nodes[0], cid)  # the pin released for the exchange is back
    assert damage(gw) == []
    assert get(gw, "b/corrupt") == data
    assert cli(gw, "--bucket", BUCKET, "--prefix", "b/", "--wait") == 0


def test_killed_mid_run_resumes_after_the_last_object(tmp_path: Path, nodes: list[LocalNode]) -> None:
    gateway = start_gateway(tmp_path, nodes[0], workers=1, extra_config=SCRUB_CONFIG, name="resume-gw")
    try:
        s3 = s3_client(gateway)
        s3.create_bucket(Bucket=BUCKET)
        count = 40
        for i in range(count):
            s3.put_object(Bucket=BUCKET, Key=f"c/{i:03d}", Body=os.urandom(200))
        reply = gateway.admin("POST", "/scrub", json={"rate": 4})
        assert reply.status_code == 202
        run_id = reply.json()["current"]["id"]

        def progressed() -> int | None:
            current = gateway.admin("GET", "/scrub").json()["current"]
            return current["done"] if current and current["done"] >= 8 else None

        wait_until(progressed, "eight objects scrubbed", timeout=60.0)
        kill_gateway(gateway)
        gateway = restart_gateway(gateway)

        def finished() -> dict[str, Any] | None:
            status = gateway.admin("GET", "/scrub").json()
            last = status.get("last")
            return last if last and last["id"] == run_id else None

        summary = wait_until(finished, "the resumed run to finish", timeout=120.0)
        assert (summary["state"], summary["resumes"]) == ("done", 1)
        # The counters carried over and the walk went on after the stored position: nothing twice, nothing left.
        assert summary["objects_checked"] + summary["objects_skipped"] == count
    finally:
        stop_gateway(gateway)
