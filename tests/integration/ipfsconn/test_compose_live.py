"""KuboClient.compose on real nodes: parts linked under one root without re-adding data, readable everywhere."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from appliance.ipfsconn.kubo import KuboClient
from tests.support.nodes import running_nodes

MiB = 1024 * 1024


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read(client: KuboClient, cid: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([piece async for piece in client.cat(cid, offset, length)])


async def test_compose_gc_and_bitswap(tmp_path: Path) -> None:
    with running_nodes(tmp_path, 2) as (first, second):
        async with KuboClient(first.api_url) as kubo, KuboClient(second.api_url) as other:
            parts = [os.urandom(5 * MiB + 3), os.urandom(1), os.urandom(2 * MiB)]
            cids = [(await kubo.add(_one(p))).cid for p in parts]
            root = await kubo.compose([(c, len(p)) for c, p in zip(cids, parts, strict=True)])
            whole = b"".join(parts)
            assert await _read(kubo, root) == whole
            assert await _read(kubo, root, 5 * MiB - 5, 20) == whole[5 * MiB - 5 : 5 * MiB + 15]
            assert await kubo.is_pinned(root)
            for cid in cids:
                await kubo.unpin(cid)
            async with httpx.AsyncClient() as raw:
                assert (await raw.post(f"{first.api_url}/api/v0/repo/gc", timeout=60)).status_code == 200
            assert await _read(kubo, root) == whole  # the root's pin keeps every part's blocks
            assert await _read(other, root) == whole  # another node fetches it by bitswap


async def test_compose_many_small_parts(tmp_path: Path) -> None:
    with running_nodes(tmp_path, 1) as (node,):
        async with KuboClient(node.api_url) as kubo:
            parts = [os.urandom(1024) for _ in range(200)]  # more than one node's worth of links
            cids = [(await kubo.add(_one(p))).cid for p in parts]
            root = await kubo.compose([(c, 1024) for c in cids])
            assert await _read(kubo, root) == b"".join(parts)
