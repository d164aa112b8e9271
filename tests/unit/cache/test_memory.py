"""The L1 memory cache and the read-through ContentStore (against an in-memory fake of one module's collaborator)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.cache.memory import CachingContentStore, MemoryCache
from appliance.model import AddedContent


class FakeContent:
    """Stores bytes under their sha256; counts cat calls."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.cats = 0
        self.closed = False

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> AddedContent:
        data = b"".join([piece async for piece in chunks])
        cid = hashlib.sha256(data).hexdigest()
        self.blobs[cid] = data
        return AddedContent(cid=cid, size=len(data))

    async def cat(
        self, cid: str, offset: int = 0, length: int | None = None, *, size: int | None = None
    ) -> AsyncIterator[bytes]:
        self.cats += 1
        data = self.blobs[cid]
        end = len(data) if length is None else offset + length
        for i in range(offset, end, 3):
            yield data[i : min(i + 3, end)]

    async def pin(self, cid: str) -> None: ...
    async def unpin(self, cid: str) -> None: ...
    async def is_pinned(self, cid: str) -> bool:
        return cid in self.blobs

    async def ping(self) -> str:
        return "fake"

    async def aclose(self) -> None:
        self.closed = True


async def _chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _read(source: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in source])


def test_lru_budget_and_eviction() -> None:
    cache = MemoryCache(10, 6)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # a is now most recent
    cache.put("c", b"cccc")  # evicts b
    assert cache.get("b") is None
    assert cache.get("a") == b"aaaa"
    assert cache.size == 8
    cache.put("big", b"x" * 7)  # above max item size: not kept
    assert cache.get("big") is None
    cache.put("a", b"A")  # replacing updates the size
    assert cache.size == 5
    assert (cache.hits, cache.misses) == (2, 2)
    assert len(cache) == 2


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        MemoryCache(-1, 1)


@given(st.lists(st.tuples(st.integers(0, 20), st.binary(max_size=12)), max_size=60))
def test_budget_is_never_exceeded(ops: list[tuple[int, bytes]]) -> None:
    cache = MemoryCache(32, 12)
    for key, value in ops:
        cache.put(key, value)
        assert cache.size <= 32
        assert cache.size == sum(len(cache.get(k) or b"") for k in list(cache._items))


async def test_add_fills_and_cat_hits() -> None:
    inner = FakeContent()
    store = CachingContentStore(inner, MemoryCache(1000, 100))
    added = await store.add(_chunks(b"hello ", b"world"))
    assert await _read(store.cat(added.cid, 0, 11)) == b"hello world"
    assert inner.cats == 0  # served from the add's copy
    assert await _read(store.cat(added.cid, 6, 5)) == b"world"
    assert inner.cats == 1
    assert await _read(store.cat(added.cid, 6, 5)) == b"world"
    assert inner.cats == 1  # the range is cached now


async def test_large_objects_bypass_the_cache() -> None:
    inner = FakeContent()
    store = CachingContentStore(inner, MemoryCache(1000, 10))
    added = await store.add(_chunks(b"x" * 8, b"y" * 8))
    assert store.cache.size == 0
    for _ in range(2):
        assert await _read(store.cat(added.cid, 0, 16)) == b"x" * 8 + b"y" * 8
    assert inner.cats == 2
    assert await _read(store.cat(added.cid)) == b"x" * 8 + b"y" * 8  # unknown length: not cached


async def test_partial_read_is_not_cached() -> None:
    inner = FakeContent()
    store = CachingContentStore(inner, MemoryCache(1000, 100))
    inner.blobs["cid"] = b"0123456789"
    stream = store.cat("cid", 0, 10)
    assert await anext(stream) == b"012"
    await stream.aclose()  # type: ignore[attr-defined]
    assert store.cache.size == 0
    assert await _read(store.cat("cid", 0, 10)) == b"0123456789"
    assert store.cache.size == 10


async def test_delegation() -> None:
    inner = FakeContent()
    store = CachingContentStore(inner, MemoryCache(10, 10))
    added = await store.add(_chunks(b"p"))
    await store.pin(added.cid)
    await store.unpin(added.cid)
    assert await store.is_pinned(added.cid)
    assert await store.ping() == "fake"
    await store.aclose()
    assert inner.closed
