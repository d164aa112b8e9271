"""KuboClient against a real local IPFS node (js-ipfs here, Kubo where installed), started by tests/support.

Decision recorded here: a cat of a CID no peer has fails after the client's `timeout` with
BackendUnavailable (the node's "request timed out"), because the content may still become reachable:
the gateway answers 503 with Retry-After, as it does when the node itself is down.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from appliance.errors import BackendUnavailable, ContentIntegrityError
from appliance.ipfsconn.devnode import LocalNode, jsipfs_path, kubo_path
from appliance.ipfsconn.kubo import KuboClient
from tests.support.nodes import start_local_node
from tests.support.unixfs_cid import UnixfsCidBuilder, cid_of_bytes

pytestmark = pytest.mark.skipif(
    kubo_path() is None and not jsipfs_path().exists(), reason="no IPFS node installed: run scripts/setup.sh"
)

CHUNK = 256 * 1024
MISSING = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka"  # valid, but nobody has it


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


async def feed(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


def recursive_pins(node: LocalNode) -> set[str]:
    reply = httpx.post(f"{node.api_url}/api/v0/pin/ls", params={"type": "recursive"}, timeout=10)
    reply.raise_for_status()
    keys: dict[str, Any] = reply.json()["Keys"]
    return set(keys)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    started = start_local_node(tmp_path_factory.mktemp("kubo-live"))
    try:
        yield started
    finally:
        started.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def kubo(node: LocalNode) -> AsyncIterator[KuboClient]:
    async with KuboClient(node.api_url, chunk_size=CHUNK, timeout=10.0) as client:
        yield client


@pytest.mark.parametrize("size", [0, 1, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
async def test_add_cat_and_cid_match_the_reference(kubo: KuboClient, size: int) -> None:
    data = data_of(size)
    added = await kubo.add(feed(data, 10_000))
    assert added.size == size
    assert added.cid == cid_of_bytes(data, CHUNK)
    assert added.cid.startswith("bafkrei" if size <= CHUNK else "bafybei")
    assert await read_all(kubo.cat(added.cid)) == data
    assert await kubo.is_pinned(added.cid)


async def test_two_level_tree_with_a_small_chunker(node: LocalNode) -> None:
    data = data_of(200 * 1024 + 5)  # 201 chunks of 1 KiB: more than 174 links, so two levels
    async with KuboClient(node.api_url, chunk_size=1024) as small:
        added = await small.add(feed(data))
        assert added.cid == cid_of_bytes(data, 1024)
        assert await read_all(small.cat(added.cid, 174 * 1024 - 3, 10)) == data[174 * 1024 - 3 : 174 * 1024 + 7]


async def test_hello_world_reference_cid(kubo: KuboClient) -> None:
    added = await kubo.add(feed(b"hello world\n"), pin=False)
    assert added.cid == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


RANGES = [
    (0, CHUNK),
    (CHUNK - 1, 2),
    (CHUNK, CHUNK),
    (CHUNK - 1, CHUNK + 2),
    (3 * CHUNK, 7),
    (3 * CHUNK + 6, 1),
    (5, None),
    (2 * CHUNK + 1, None),
    (3 * CHUNK + 6, None),
    (3 * CHUNK + 7, None),  # at the end: nothing
]


@pytest.mark.parametrize(("offset", "length"), RANGES)
async def test_cat_ranges_at_chunk_boundaries(kubo: KuboClient, offset: int, length: int | None) -> None:
    data = data_of(3 * CHUNK + 7, seed=1)
    added = await kubo.add(feed(data))
    end = None if length is None else offset + length
    assert await read_all(kubo.cat(added.cid, offset, length)) == data[offset:end]


@pytest.mark.parametrize("verify", [True, False])
async def test_cat_past_the_end_is_an_error_not_a_short_read(kubo: KuboClient, verify: bool) -> None:
    data = data_of(3 * CHUNK + 7, seed=1)
    added = await kubo.add(feed(data))
    kubo._verify = verify
    try:
        with pytest.raises(ContentIntegrityError):
            await read_all(kubo.cat(added.cid, 3 * CHUNK + 6, 100))
    finally:
        kubo._verify = True


async def test_pin_unpin_is_pinned(kubo: KuboClient) -> None:
    added = await kubo.add(feed(data_of(5000, seed=2)), pin=False)
    assert not await kubo.is_pinned(added.cid)
    await kubo.unpin(added.cid)  # not pinned: success
    await kubo.pin(added.cid)
    await kubo.pin(added.cid)  # idempotent
    assert await kubo.is_pinned(added.cid)
    await kubo.unpin(added.cid)
    assert not await kubo.is_pinned(added.cid)
    await kubo.unpin(added.cid)


async def test_aborted_add_pins_nothing(kubo: KuboClient, node: LocalNode) -> None:
    data = data_of(3 * CHUNK + 7, seed=3)
    boom = RuntimeError("the S3 client went away")

    async def failing() -> AsyncIterator[bytes]:
        async for piece in feed(data[: 2 * CHUNK + 100]):
            yield piece
        await asyncio.sleep(0.2)  # let the node process what it has
        raise boom

    before = recursive_pins(node)
    with pytest.raises(RuntimeError) as info:
        await kubo.add(failing())
    assert info.value is boom
    await asyncio.sleep(1.0)  # the node has had time to finish anything it would finish
    assert recursive_pins(node) == before
    for prefix in (data[: 2 * CHUNK + 100], data[: 2 * CHUNK], data):
        assert not await kubo.is_pinned(cid_of_bytes(prefix, CHUNK))
    assert await kubo.ping()  # the client is still usable


@pytest.mark.parametrize("length", [None, 100])
async def test_cat_of_missing_content_fails_fast(node: LocalNode, length: int | None) -> None:
    async with KuboClient(node.api_url, timeout=2.0) as client:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"timed out|did not answer"):
            await read_all(client.cat(MISSING, 0, length))
        assert time.monotonic() - started < 6.0
        with pytest.raises(BackendUnavailable):
            await client.pin(MISSING)


async def test_idle_keepalive_connection_is_not_reused_stale(kubo: KuboClient) -> None:
    assert await kubo.ping()
    await asyncio.sleep(5.5)  # js-ipfs closes idle connections after 5 s
    assert await kubo.ping()


async def test_node_down_is_unavailable_and_the_client_recovers(tmp_path: Path) -> None:
    own = start_local_node(tmp_path)
    try:
        async with KuboClient(own.api_url, timeout=5.0) as client:
            added = await client.add(feed(b"survives a restart"))
            own.kill()  # a crash: js-ipfs leaves repo.lock behind, which start() must clear
            with pytest.raises(BackendUnavailable):
                await client.ping()
            with pytest.raises(BackendUnavailable):
                await client.add(feed(b"nobody listens"))
            with pytest.raises(BackendUnavailable):
                await read_all(client.cat(added.cid))
            await asyncio.to_thread(own.start)
            assert await client.ping()
            assert await read_all(client.cat(added.cid)) == b"survives a restart"
            assert await client.is_pinned(added.cid)
    finally:
        own.stop()


async def test_streaming_64_mib_keeps_memory_bounded(kubo: KuboClient) -> None:
    total, piece = 64 * 1024 * 1024, 1024 * 1024
    reference = UnixfsCidBuilder(CHUNK)
    sent = hashlib.sha256()

    async def source() -> AsyncIterator[bytes]:
        rng = random.Random(64)
        for _ in range(total // piece):
            block = rng.randbytes(piece)
            reference.update(block)
            sent.update(block)
            yield block

    tracemalloc.start()
    try:
        added = await kubo.add(source())
        add_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        got = hashlib.sha256()
        count = 0
        async for chunk in kubo.cat(added.cid):
            got.update(chunk)
            count += len(chunk)
        cat_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert added.size == count == total
    assert added.cid == reference.finish()
    assert got.digest() == sent.digest()
    assert add_peak < 32 * 1024 * 1024, add_peak
    assert cat_peak < 32 * 1024 * 1024, cat_peak
