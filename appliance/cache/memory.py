"""L1: a per-process LRU of small objects' bytes with a byte budget, and a ContentStore that reads through it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Sequence

from appliance import metrics
from appliance.components import ContentStore
from appliance.model import AddedContent

__all__ = ["CachingContentStore", "MemoryCache"]

_LAYER = "l1"  # the metrics label of this layer (an L2 disk cache would be "l2")


class MemoryCache:
    """Least-recently-used byte strings; items above `max_item_bytes` are never kept. Not thread-safe: one per
    event loop (one per worker process)."""

    def __init__(self, capacity_bytes: int, max_item_bytes: int) -> None:
        if capacity_bytes < 0 or max_item_bytes < 0:
            raise ValueError("cache sizes must not be negative")
        self.capacity_bytes = capacity_bytes
        self.max_item_bytes = min(max_item_bytes, capacity_bytes)
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self.size = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> bytes | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            metrics.CACHE_MISSES.labels(_LAYER).inc()
            return None
        self._items.move_to_end(key)
        self.hits += 1
        metrics.CACHE_HITS.labels(_LAYER).inc()
        return value

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.max_item_bytes:
            return
        before = self.size
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._items[key] = value
        self.size += len(value)
        while self.size > self.capacity_bytes:
            _, evicted = self._items.popitem(last=False)
            self.size -= len(evicted)
            metrics.CACHE_EVICTIONS.labels(_LAYER).inc()
        metrics.CACHE_BYTES.labels(_LAYER).inc(self.size - before)


async def _single(value: bytes) -> AsyncIterator[bytes]:
    yield value


class CachingContentStore:
    """A ContentStore that keeps small objects in a MemoryCache: filled on add (the bytes pass through anyway) and on a
    complete read, served from memory afterwards. Ranges are cached under (cid, offset, length)."""

    def __init__(self, inner: ContentStore, cache: MemoryCache) -> None:
        self._inner = inner
        self._cache = cache

    @property
    def cache(self) -> MemoryCache:
        return self._cache

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> AddedContent:
        limit = self._cache.max_item_bytes
        kept: list[bytes] | None = []
        total = 0

        async def tee() -> AsyncIterator[bytes]:
            nonlocal kept, total
            async for piece in chunks:
                total += len(piece)
                if kept is not None:
                    if total > limit:
                        kept = None
                    else:
                        kept.append(piece)
                yield piece

        added = await self._inner.add(tee(), pin=pin)
        if kept is not None:
            self._cache.put((added.cid, 0, total), b"".join(kept))
        return added

    def cat(
        self, cid: str, offset: int = 0, length: int | None = None, *, size: int | None = None
    ) -> AsyncIterator[bytes]:
        """Served from memory when this very range was read (or added) whole before; else read through and kept
        only if the inner store's (verified) stream ended with every byte."""
        if length is None or length > self._cache.max_item_bytes:
            return self._inner.cat(cid, offset, length, size=size)
        key = (cid, offset, length)
        hit = self._cache.get(key)
        if hit is not None:
            return _single(hit)
        return self._fill(key, self._inner.cat(cid, offset, length, size=size))

    async def _fill(self, key: tuple[str, int, int], source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        try:
            async for piece in source:
                parts.append(piece)
                yield piece
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
        data = b"".join(parts)
        if len(data) == key[2]:
            self._cache.put(key, data)

    async def compose(self, parts: Sequence[tuple[str, int]], *, pin: bool = True) -> str:
        return await self._inner.compose(parts, pin=pin)

    async def pin(self, cid: str) -> None:
        await self._inner.pin(cid)

    async def unpin(self, cid: str) -> None:
        await self._inner.unpin(cid)

    async def is_pinned(self, cid: str) -> bool:
        return await self._inner.is_pinned(cid)

    async def ping(self) -> str:
        return await self._inner.ping()

    async def aclose(self) -> None:
        await self._inner.aclose()
