"""What only the real daemon shows: workers sharing LMDB, the unpinner running once in the main process, graceful
drain of an in-flight upload on SIGTERM, and bounded memory for large bodies."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from appliance.ipfsconn.devnode import LocalNode
from appliance.ipfsconn.kubo import KuboClient
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.support import raw
from tests.support.gateway import Gateway, start_gateway, stop_gateway

MiB = 1024 * 1024


def _pinned(api_url: str, cid: str) -> bool:
    async def check() -> bool:
        client = KuboClient(api_url, timeout=10)
        try:
            return await client.is_pinned(cid)
        finally:
            await client.aclose()

    return asyncio.run(check())


def test_workers_share_metadata(s3: Any) -> None:
    s3.create_bucket(Bucket="shared")

    def put(i: int) -> str:
        return str(s3.put_object(Bucket="shared", Key=f"k{i:03d}", Body=f"body {i}".encode())["ETag"])

    with ThreadPoolExecutor(8) as pool:
        etags = list(pool.map(put, range(40)))
    assert len(set(etags)) == 40
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="shared")["Contents"]]
    assert keys == [f"k{i:03d}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda i: s3.get_object(Bucket="shared", Key=f"k{i:03d}")["Body"].read(), range(40)))
    assert bodies == [f"body {i}".encode() for i in range(40)]


def test_unpin_after_grace(s3: Any, node: LocalNode, gateway: Gateway) -> None:
    s3.create_bucket(Bucket="unpin")
    data = os.urandom(10_000)
    cid = s3.put_object(Bucket="unpin", Key="gone", Body=data)["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
    keep = s3.put_object(Bucket="unpin", Key="kept", Body=b"kept")["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
    assert _pinned(node.api_url, cid)
    by_cid = gateway.admin("GET", f"/objects/by-cid/{cid}").json()
    assert by_cid == [{"bucket": "unpin", "key": "gone"}]
    s3.delete_object(Bucket="unpin", Key="gone")
    deadline = time.monotonic() + 30
    while _pinned(node.api_url, cid):
        assert time.monotonic() < deadline, "the unreferenced CID was not unpinned"
        time.sleep(0.3)
    assert _pinned(node.api_url, keep)
    assert gateway.admin("GET", f"/objects/by-cid/{cid}").json() == []


def _slow_body(total: int, pause: float, block: bytes | None = None) -> Iterator[bytes]:
    block = block or os.urandom(MiB)
    for _ in range(total // MiB):
        time.sleep(pause)
        yield block


def test_sigterm_drains_an_in_flight_upload(tmp_path: Path, node: LocalNode) -> None:
    gw = start_gateway(tmp_path, node, workers=1, extra_config={"s3": {"graceful_timeout": 20}})
    try:
        client = boto3.client(
            "s3",
            endpoint_url=gw.endpoint,
            aws_access_key_id=gw.access_key,
            aws_secret_access_key=gw.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket="drain")
        total = 16 * MiB
        headers = raw.signed_headers(
            "PUT",
            f"{gw.endpoint}/drain/inflight",
            access_key=gw.access_key,
            secret_key=gw.secret_key,
            headers={"Content-Length": str(total)},
            payload_hash="UNSIGNED-PAYLOAD",
        )
        result: dict[str, Any] = {}

        def upload() -> None:
            result["response"] = httpx.put(
                f"{gw.endpoint}/drain/inflight", headers=headers, content=_slow_body(total, 0.1), timeout=60
            )

        thread = threading.Thread(target=upload)
        thread.start()
        time.sleep(0.6)  # the upload is under way
        gw.process.send_signal(signal.SIGTERM)
        thread.join(60)
        assert result["response"].status_code == 200, result["response"].text
        assert gw.process.wait(30) == 0
    finally:
        stop_gateway(gw)
    store = LmdbMetadataStore(gw.state_dir / "meta", readonly=True)
    try:
        meta = store.get_object("drain", "inflight")
        assert meta is not None
        assert meta.size == total
    finally:
        store.close()


def _worker_rss(gw: Gateway) -> int:
    """The largest resident set of the gateway's processes, in bytes."""
    biggest = 0
    for pid in [gw.process.pid, *_children(gw.process.pid)]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    biggest = max(biggest, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return biggest


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_large_bodies_use_bounded_memory(s3: Any, gateway: Gateway) -> None:
    s3.create_bucket(Bucket="large")
    total = 256 * MiB
    baseline = _worker_rss(gateway)
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _worker_rss(gateway))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        block = os.urandom(MiB)
        digest = hashlib.md5()
        for _ in range(total // MiB):
            digest.update(block)
        headers = raw.signed_headers(
            "PUT",
            f"{gateway.endpoint}/large/big",
            access_key=gateway.access_key,
            secret_key=gateway.secret_key,
            headers={"Content-Length": str(total)},
            payload_hash="UNSIGNED-PAYLOAD",
        )
        put = httpx.put(
            f"{gateway.endpoint}/large/big", headers=headers, content=_slow_body(total, 0, block), timeout=300
        )
        assert put.status_code == 200, put.text
        assert put.headers["etag"] == f'"{digest.hexdigest()}"'
        got = hashlib.md5()
        size = 0
        body = s3.get_object(Bucket="large", Key="big")["Body"]
        for piece in body.iter_chunks(MiB):
            got.update(piece)
            size += len(piece)
        body.close()
        assert size == total
        assert got.hexdigest() == digest.hexdigest()
    finally:
        stop.set()
        sampler.join()
    # A body buffered whole would add 256 MiB; streaming stays within a few tens of MiB of where it started.
    assert peak[0] - baseline < 96 * MiB, f"RSS grew by {(peak[0] - baseline) / MiB:.0f} MiB"
