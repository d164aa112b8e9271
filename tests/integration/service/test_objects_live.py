"""ObjectService on a real IPFS node and a real LMDB store: the durability order and the unpin races."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import BackendError, BadDigest, NoSuchBucket, NoSuchKey
from appliance.ipfsconn.devnode import LocalNode
from appliance.ipfsconn.kubo import KuboClient
from appliance.model import BucketMeta
from appliance.service.objects import ObjectService, PutRequest
from appliance.service.unpinner import Unpinner
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.support.nodes import start_local_node, stop_nodes
from tests.support.unixfs_cid import cid_of_bytes


class Body:
    """An ObjectBody over fixed bytes that can fail at the end, like a bad Content-MD5."""

    def __init__(self, data: bytes, fail: Exception | None = None) -> None:
        self.data, self.fail = data, fail
        self.size = len(data)
        self.md5_hex = hashlib.md5(data).hexdigest()
        self.checksums: dict[str, str] = {}

    async def _gen(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), 65536):
            yield self.data[i : i + 65536]
        if self.fail is not None:
            raise self.fail

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen()


class FailingCommit(LmdbMetadataStore):
    """The metadata commit fails (disk full, a bug): the PUT must leave no row and no pin nobody owns."""

    fail = False

    def put_object(self, meta: Any, *, unpin_grace: float, now: float, condition: Any = None) -> Any:
        if self.fail:
            raise BackendError("injected commit failure")
        return super().put_object(meta, unpin_grace=unpin_grace, now=now, condition=condition)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    started = start_local_node(tmp_path_factory.mktemp("svc-node"))
    try:
        yield started
    finally:
        stop_nodes([started])


@pytest.fixture
async def env(tmp_path: Path, node: LocalNode) -> AsyncIterator[tuple[ObjectService, FailingCommit, KuboClient]]:
    store = FailingCommit(tmp_path / "meta", map_size=1 << 28)
    store.create_bucket(BucketMeta("bkt", 0.0, "us-east-1", "owner"))
    kubo = KuboClient(node.api_url, timeout=30)
    try:
        yield ObjectService(store, kubo, unpin_grace=0), store, kubo
    finally:
        await kubo.aclose()
        store.close()


async def test_put_get_delete_and_unpin(env: tuple[ObjectService, FailingCommit, KuboClient]) -> None:
    service, store, kubo = env
    data = b"durable " * 5000
    meta = await service.put_object(PutRequest("bkt", "k", "text/plain"), Body(data))
    assert meta.cid == cid_of_bytes(data, chunk_size=1024 * 1024)
    assert await kubo.is_pinned(meta.cid)
    assert b"".join([p async for p in service.open_content(meta, 8, 16)]) == data[8:24]
    assert await service.objects_by_cid(meta.cid) == [("bkt", "k")]
    assert await service.delete_object("bkt", "k") is not None
    assert await Unpinner(store, kubo, interval=0.1).run_once() == 1
    assert not await kubo.is_pinned(meta.cid)
    with pytest.raises(NoSuchKey):
        await service.head_object("bkt", "k")


async def test_failed_body_commits_nothing(env: tuple[ObjectService, FailingCommit, KuboClient]) -> None:
    service, store, kubo = env
    data = b"never stored " * 1000
    with pytest.raises(BadDigest):
        await service.put_object(PutRequest("bkt", "bad", "x/y"), Body(data, BadDigest()))
    assert store.get_object("bkt", "bad") is None
    assert not await kubo.is_pinned(cid_of_bytes(data, chunk_size=1024 * 1024))


async def test_failed_commit_releases_the_pin(env: tuple[ObjectService, FailingCommit, KuboClient]) -> None:
    service, store, kubo = env
    data = b"commit fails " * 1000
    store.fail = True
    with pytest.raises(BackendError):
        await service.put_object(PutRequest("bkt", "lost", "x/y"), Body(data))
    store.fail = False
    cid = cid_of_bytes(data, chunk_size=1024 * 1024)
    assert store.get_object("bkt", "lost") is None
    assert store.unpin_queue_depth() == 1  # the pin add made is queued for release
    await Unpinner(store, kubo, interval=0.1).run_once()
    assert not await kubo.is_pinned(cid)


class UnpinRightAfterAdd:
    """The unpinner strikes between the PUT's add (which pinned) and its metadata commit."""

    def __init__(self, inner: KuboClient) -> None:
        self.inner = inner

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> Any:
        added = await self.inner.add(chunks, pin=pin)
        await self.inner.unpin(added.cid)
        return added

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_put_that_races_an_unpin_repins(env: tuple[ObjectService, FailingCommit, KuboClient]) -> None:
    service, store, kubo = env
    data = b"raced " * 1000
    first = await service.put_object(PutRequest("bkt", "a", "x/y"), Body(data))
    await service.delete_object("bkt", "a")
    assert store.claim_due_unpins(1e12, 10) == [first.cid]  # the unpinner has claimed the CID
    racing = ObjectService(store, UnpinRightAfterAdd(kubo), unpin_grace=0)  # type: ignore[arg-type]
    again = await racing.put_object(PutRequest("bkt", "b", "x/y"), Body(data))
    assert again.cid == first.cid
    assert not store.finish_unpin(first.cid)  # the unpinner learns the CID is referenced again
    assert await kubo.is_pinned(first.cid)  # the PUT restored the pin before acknowledging


async def test_missing_bucket(env: tuple[ObjectService, FailingCommit, KuboClient]) -> None:
    service, _, _ = env
    with pytest.raises(NoSuchBucket):
        await service.put_object(PutRequest("nope", "k", "x/y"), Body(b"x"))
    with pytest.raises(NoSuchBucket):
        await service.head_object("nope", "k")
    with pytest.raises(NoSuchBucket):
        await service.delete_object("nope", "k")
    with pytest.raises(NoSuchBucket):
        await service.delete_objects("nope", ["k"])
