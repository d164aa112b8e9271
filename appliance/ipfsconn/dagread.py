"""Verified reads: a file's bytes streamed from its UnixFS DAG block by block, every block checked against its CID.

The node's bytes are never trusted. `read` walks the DAG from the root in order: each block comes from `block/get`
and must hash to the CID that links it (KuboClient.block_get checks that); each dag-pb node must be a UnixFS file
node whose links, blocksizes and filesize agree (unixfs.decode_file_node); each child must hold exactly the bytes
its parent says; the root must hold exactly the size the caller expects. A failure raises ContentIntegrityError
before any byte of the failing block is yielded, so a reader gets either the right bytes or an error, never wrong
or short bytes. Only the blocks overlapping the requested range are fetched.

Leaves are fetched ahead of the consumer, `prefetch` at a time, and yielded in order: memory stays bounded by
`prefetch` blocks per read, whatever the file size, and the node's per-request latency overlaps the transfer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from appliance.errors import ContentIntegrityError
from appliance.ipfsconn import unixfs
from appliance.model import DAG_PB, Cid

__all__ = ["BlockFetch", "VerifiedReader"]

BlockFetch = Callable[[str], Awaitable[bytes]]  # the verified bytes of one block (KuboClient.block_get)

_MAX_DEPTH = 32  # a balanced UnixFS tree of 174-link nodes is 6 deep at 10^12 leaves


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A raw leaf to fetch, the file bytes it must hold and the slice of them to yield."""

    cid: Cid
    size: int
    start: int
    end: int


class VerifiedReader:
    """Streams verified byte ranges of UnixFS files (see the module docstring)."""

    def __init__(self, fetch: BlockFetch, *, prefetch: int = 4) -> None:
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        self._fetch = fetch
        self._prefetch = prefetch

    async def read(self, root: str, offset: int, length: int, *, size: int | None = None) -> AsyncIterator[bytes]:
        """The file's bytes [offset, offset + length), verified. `size` (the size recorded for the object) must
        equal the root's file size when given; the range must lie within the file."""
        if offset < 0 or length < 0:
            raise ValueError("offset and length must be >= 0")
        if size is not None and offset + length > size:
            raise ValueError(f"the range ends at {offset + length}, beyond the {size} bytes of the file")
        if length == 0:
            return
        try:
            root_cid = Cid.parse(root)
        except ValueError as exc:
            raise ContentIntegrityError(f"not a CID: {root[:80]!r}", block=root, root=root, reason="bad cid") from exc
        pending: collections.deque[asyncio.Task[bytes] | bytes] = collections.deque()
        sent = 0
        try:
            async for item in self._plan(root_cid, offset, offset + length, size):
                if isinstance(item, _Leaf):
                    pending.append(asyncio.ensure_future(self._leaf(item, root_cid)))
                else:
                    pending.append(item)
                while len(pending) >= self._prefetch:
                    piece = await _take(pending)
                    sent += len(piece)
                    yield piece
            while pending:
                piece = await _take(pending)
                sent += len(piece)
                yield piece
        finally:
            for entry in pending:
                if isinstance(entry, asyncio.Task):
                    entry.cancel()
            for entry in pending:
                if isinstance(entry, asyncio.Task):
                    with contextlib.suppress(BaseException):
                        await entry
        if sent != length:  # the plan covers the range exactly; a mismatch is a bug, never passed on silently
            raise ContentIntegrityError(
                f"read {sent} of {length} bytes of {root_cid}", block=root_cid.text, root=root_cid.text, reason="short"
            )

    async def _leaf(self, leaf: _Leaf, root: Cid) -> bytes:
        block = await self._block(leaf.cid, root)
        if len(block) != leaf.size:
            raise _damage(leaf.cid, root, f"size mismatch: {len(block)} bytes, the parent says {leaf.size}")
        return block[leaf.start : leaf.end]

    async def _block(self, cid: Cid, root: Cid) -> bytes:
        try:
            return await self._fetch(cid.text)
        except ContentIntegrityError as exc:
            raise _damage(cid, root, exc.reason) from exc

    async def _plan(self, root: Cid, start: int, end: int, size: int | None) -> AsyncIterator[_Leaf | bytes]:
        """In file order: the leaves overlapping [start, end) to fetch, and inline bytes already at hand. Inner
        nodes are fetched (and verified) here, as the walk reaches them."""
        # (cid, file offset of its first byte, the bytes it must hold or None for the root, depth)
        stack: list[tuple[Cid, int, int | None, int]] = [(root, 0, size, 0)]
        while stack:
            cid, base, expected, depth = stack.pop()
            if depth > _MAX_DEPTH:
                raise _damage(cid, root, "the DAG is deeper than any file we write")
            if cid.is_raw:
                if expected is None:  # the root itself is one raw block
                    block = await self._block(cid, root)
                    _check_range(cid, root, len(block), start, end)
                    yield block[start:end]
                else:
                    yield _Leaf(cid, expected, max(start - base, 0), min(end - base, expected))
                continue
            if cid.codec != DAG_PB:
                raise _damage(cid, root, f"unexpected codec 0x{cid.codec:x}")
            block = await self._block(cid, root)
            try:
                node = unixfs.decode_file_node(block)
            except ValueError as exc:
                raise _damage(cid, root, f"malformed: {exc}") from exc
            if expected is not None and node.size != expected:
                raise _damage(cid, root, f"size mismatch: {node.size} bytes, the parent says {expected}")
            if depth == 0:
                _check_range(cid, root, node.size, start, end)
            if node.data:
                lo, hi = max(start - base, 0), min(end - base, len(node.data))
                if lo < hi:
                    yield node.data[lo:hi]
            children: list[tuple[Cid, int, int | None, int]] = []
            position = base + len(node.data)
            for link, child_size in zip(node.links, node.blocksizes, strict=True):
                if position < end and position + child_size > start and child_size > 0:
                    children.append((link, position, child_size, depth + 1))
                position += child_size
            stack.extend(reversed(children))


def _check_range(cid: Cid, root: Cid, file_size: int, start: int, end: int) -> None:
    if end > file_size:
        raise _damage(cid, root, f"size mismatch: the file holds {file_size} bytes, {end} were expected")


def _damage(cid: Cid, root: Cid, reason: str) -> ContentIntegrityError:
    return ContentIntegrityError(
        f"IPFS content {root} failed verification at block {cid}: {reason}",
        block=cid.text,
        root=root.text,
        reason=reason,
    )


async def _take(pending: collections.deque[asyncio.Task[bytes] | bytes]) -> bytes:
    entry = pending.popleft()
    if isinstance(entry, bytes):
        return entry
    return await entry
