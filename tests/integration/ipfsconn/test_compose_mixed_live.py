"""block_put / dag_size / compose on real nodes: parts of different depths (raw leaf, one level, two levels and an
already-composed file), ranges across every boundary, reads by bitswap, and a CID checked by the independent
calculator of tests/support."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from appliance.errors import BackendError
from appliance.ipfsconn import unixfs
from appliance.ipfsconn.kubo import KuboClient
from appliance.model import RAW, Cid
from tests.support.nodes import running_nodes
from tests.support.unixfs_cid import cid_of_bytes

KiB = 1024


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read(client: KuboClient, cid: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([piece async for piece in client.cat(cid, offset, length)])


async def test_block_put_and_dag_size(tmp_path: Path) -> None:
    with running_nodes(tmp_path, 1) as (node,):
        async with KuboClient(node.api_url, chunk_size=4 * KiB) as kubo:
            raw = os.urandom(100)
            assert await kubo.block_put(raw, codec="raw") == Cid.of_block(raw, RAW).text
            assert await kubo.block_get(Cid.of_block(raw, RAW).text) == raw
            assert await kubo.dag_size(Cid.of_block(raw, RAW).text) == 100
            data = os.urandom(200 * 4 * KiB + 5)  # 201 leaves: two levels of dag-pb
            added = await kubo.add(_one(data))
            assert added.cid == cid_of_bytes(data, 4 * KiB)
            root_block = await kubo.block_get(added.cid)
            assert await kubo.dag_size(added.cid) == unixfs.dag_pb_tsize(root_block)
            # a block_put of the root block it already has gives the same CID
            assert await kubo.block_put(root_block) == added.cid


async def test_compose_parts_of_mixed_depth(tmp_path: Path) -> None:
    with running_nodes(tmp_path, 2) as (first, second):
        async with (
            KuboClient(first.api_url, chunk_size=4 * KiB) as kubo,
            KuboClient(second.api_url) as other,
        ):
            parts = [
                os.urandom(3 * 4 * KiB + 1),  # one level
                os.urandom(1),  # a raw leaf
                os.urandom(180 * 4 * KiB),  # two levels (more than 174 leaves)
                os.urandom(4 * KiB),  # exactly one chunk: a raw leaf
            ]
            cids = [(await kubo.add(_one(p))).cid for p in parts]
            assert [c[:4] for c in cids] == ["bafy", "bafk", "bafy", "bafk"]
            root = await kubo.compose([(c, len(p)) for c, p in zip(cids, parts, strict=True)])
            whole = b"".join(parts)
            assert await kubo.file_size(root) == len(whole)
            assert await _read(kubo, root) == whole
            edges = [0]
            for p in parts:
                edges.append(edges[-1] + len(p))
            for edge in edges[1:-1]:
                for offset in (edge - 2, edge - 1, edge):
                    assert await _read(kubo, root, offset, 7) == whole[offset : offset + 7], offset
            assert await _read(kubo, root, 5, len(whole) - 10) == whole[5:-5]
            # an already-composed file is a part like any other
            again = await kubo.compose([(root, len(whole)), (cids[1], 1)], pin=False)
            assert await _read(kubo, again) == whole + parts[1]
            assert not await kubo.is_pinned(again)
            assert await kubo.dag_size(root) == unixfs.dag_pb_tsize(await kubo.block_get(root))
            # the other node reads by bitswap, also a range
            assert await _read(other, root) == whole
            assert await _read(other, again, edges[2] - 3, 10) == (whole + parts[1])[edges[2] - 3 : edges[2] + 7]


async def test_compose_of_a_files_leaves_is_that_file(tmp_path: Path) -> None:
    """The chunks of one file added separately (each a raw leaf) compose to the very CID of the whole file."""
    with running_nodes(tmp_path, 1) as (node,):
        async with KuboClient(node.api_url, chunk_size=64 * KiB) as kubo:
            chunks = [os.urandom(64 * KiB) for _ in range(5)] + [os.urandom(777)]
            cids = [(await kubo.add(_one(c))).cid for c in chunks]
            root = await kubo.compose([(c, len(p)) for c, p in zip(cids, chunks, strict=True)])
            assert root == cid_of_bytes(b"".join(chunks), 64 * KiB)
            assert root == (await kubo.add(_one(b"".join(chunks)), pin=False)).cid


async def test_compose_rejects_a_wrong_size_and_survives_gc(tmp_path: Path) -> None:
    with running_nodes(tmp_path, 1) as (node,):
        async with KuboClient(node.api_url, chunk_size=4 * KiB) as kubo:
            data = os.urandom(10 * KiB)
            cid = (await kubo.add(_one(data), pin=False)).cid
            with pytest.raises(BackendError, match="holds"):
                await kubo.compose([(cid, len(data) + 1)])
            root = await kubo.compose([(cid, len(data)), (cid, len(data))])
            async with httpx.AsyncClient() as raw:
                reply = await raw.post(f"{node.api_url}/api/v0/repo/gc", timeout=60)
                assert reply.status_code == 200
            assert await _read(kubo, root) == data + data  # the same part twice, kept by the root's pin
