"""dagread.VerifiedReader over an in-memory block store: right bytes for every range, and an error (never wrong or
short bytes) for every kind of damage a node can serve."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.errors import BackendUnavailable, ContentIntegrityError
from appliance.ipfsconn import unixfs
from appliance.ipfsconn.dagread import VerifiedReader
from appliance.model import RAW, Cid


class Blocks:
    """A block store that verifies like KuboClient.block_get; `served` may differ from what is stored."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.served: dict[str, bytes] = {}
        self.fetched: list[str] = []
        self.delay: dict[str, float] = {}
        self.active = 0
        self.peak = 0

    def put(self, block: bytes, codec: int) -> str:
        cid = Cid.of_block(block, codec).text
        self.stored[cid] = block
        return cid

    async def get(self, cid: str) -> bytes:
        self.fetched.append(cid)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay.get(cid, 0))
            if cid not in self.stored:
                raise BackendUnavailable(f"block {cid} not found in time")
            block = self.served.get(cid, self.stored[cid])
            if not Cid.parse(cid).verifies(block):
                raise ContentIntegrityError("hash", block=cid, root=cid, reason="hash mismatch")
            return block
        finally:
            self.active -= 1


def build_file(blocks: Blocks, data: bytes, chunk: int) -> tuple[str, list[str]]:
    """A balanced UnixFS file of raw leaves (as `ipfs add --raw-leaves`), its root and its leaves in order."""
    leaves = []
    for start in range(0, max(len(data), 1), chunk):
        piece = data[start : start + chunk]
        leaves.append(unixfs.Child(blocks.put(piece, RAW), len(piece), len(piece)))
    if len(leaves) == 1:
        return leaves[0].cid, [leaves[0].cid]
    made, root = unixfs.compose_blocks(leaves)
    for block in made:
        blocks.put(block, 0x70)
    return root, [leaf.cid for leaf in leaves]


async def read_all(reader: VerifiedReader, root: str, offset: int, length: int, size: int | None = None) -> bytes:
    return b"".join([piece async for piece in reader.read(root, offset, length, size=size)])


DATA = os.urandom(200 * 64 + 17)  # 201 leaves of 64 bytes: two levels of inner nodes (174 links each)


@pytest.fixture
def store() -> Blocks:
    return Blocks()


async def test_whole_file_and_ranges_of_a_two_level_dag(store: Blocks) -> None:
    root, leaves = build_file(store, DATA, 64)
    reader = VerifiedReader(store.get, prefetch=3)
    assert await read_all(reader, root, 0, len(DATA), size=len(DATA)) == DATA
    store.fetched.clear()
    assert await read_all(reader, root, 64 * 180 + 5, 70) == DATA[64 * 180 + 5 : 64 * 180 + 75]
    fetched_leaves = [cid for cid in store.fetched if cid in leaves]
    assert fetched_leaves == leaves[180:182]  # only the blocks the range touches
    assert store.peak <= 3 + 1  # the leaves in flight, and the inner node the walk reads meanwhile


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(DATA) - 1), st.integers(1, len(DATA)))
def test_every_range(offset: int, length: int) -> None:
    store = Blocks()
    root, _ = build_file(store, DATA, 64)
    length = min(length, len(DATA) - offset)
    got = asyncio.run(read_all(VerifiedReader(store.get, prefetch=2), root, offset, length, size=len(DATA)))
    assert got == DATA[offset : offset + length]


async def test_single_raw_block_root(store: Blocks) -> None:
    root, _ = build_file(store, b"hello world\n", 1024)
    reader = VerifiedReader(store.get)
    assert await read_all(reader, root, 6, 6) == b"world\n"
    assert await read_all(reader, root, 0, 12, size=12) == b"hello world\n"
    with pytest.raises(ContentIntegrityError, match="size mismatch"):
        await read_all(reader, root, 0, 13)  # beyond the end of the file the node holds


async def test_recorded_size_must_match_the_root(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    with pytest.raises(ContentIntegrityError, match="size mismatch"):
        await read_all(VerifiedReader(store.get), root, 0, 10, size=len(DATA) + 1)
    raw_root, _ = build_file(store, b"abc", 64)
    with pytest.raises(ContentIntegrityError, match="size mismatch"):
        await read_all(VerifiedReader(store.get), raw_root, 0, 3, size=4)


async def test_a_corrupted_leaf_stops_before_its_bytes(store: Blocks) -> None:
    root, leaves = build_file(store, DATA, 64)
    bad = leaves[100]
    store.served[bad] = b"\0" * 64
    got: list[bytes] = []
    with pytest.raises(ContentIntegrityError) as info:
        async for piece in VerifiedReader(store.get, prefetch=4).read(root, 0, len(DATA)):
            got.append(piece)
    assert info.value.block == bad and info.value.root == root and info.value.reason == "hash mismatch"
    assert b"".join(got) == DATA[: 100 * 64]  # everything before the bad block, nothing of it or after


async def test_a_corrupted_inner_node(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    store.served[root] = store.stored[root][:-1] + b"\x00"
    with pytest.raises(ContentIntegrityError, match="hash mismatch") as info:
        await read_all(VerifiedReader(store.get), root, 0, 10)
    assert info.value.block == root


async def test_a_node_that_hashes_right_but_lies_about_sizes(store: Blocks) -> None:
    """A well-formed node (its CID is honest) whose blocksizes do not match its leaves: the leaf check catches it."""
    short = store.put(b"abc", RAW)
    node = unixfs._file_node([unixfs.Child(short, 5, 3)])  # says the leaf holds 5 bytes
    root = store.put(node, 0x70)
    with pytest.raises(ContentIntegrityError, match="size mismatch") as info:
        await read_all(VerifiedReader(store.get), root, 0, 5)
    assert info.value.block == short


async def test_a_directory_or_garbage_node(store: Blocks) -> None:
    directory = store.put(b"\x0a\x02\x08\x01", 0x70)
    with pytest.raises(ContentIntegrityError, match="malformed: UnixFS node of type 1"):
        await read_all(VerifiedReader(store.get), directory, 0, 1)
    garbage = store.put(b"\xff\xff\xff", 0x70)
    with pytest.raises(ContentIntegrityError, match="malformed"):
        await read_all(VerifiedReader(store.get), garbage, 0, 1)
    other_codec = Cid(b"\x01\x71\x12\x20" + hashlib.sha256(b"x").digest()).text  # dag-cbor
    with pytest.raises(ContentIntegrityError, match="unexpected codec"):
        await read_all(VerifiedReader(store.get), other_codec, 0, 1)
    with pytest.raises(ContentIntegrityError, match="not a CID"):
        await read_all(VerifiedReader(store.get), "not-a-cid", 0, 1)


async def test_a_cycle_or_absurd_depth_is_refused(store: Blocks) -> None:
    leaf = store.put(b"x", RAW)
    child = unixfs.Child(leaf, 1, 1)
    for _ in range(40):
        block, child = unixfs.wrap(child)
        store.put(block, 0x70)
    with pytest.raises(ContentIntegrityError, match="deeper"):
        await read_all(VerifiedReader(store.get), child.cid, 0, 1)


async def test_order_is_kept_when_blocks_arrive_out_of_order(store: Blocks) -> None:
    root, leaves = build_file(store, DATA[: 64 * 20], 64)
    rng = random.Random(7)
    for cid in leaves:
        store.delay[cid] = rng.random() / 200
    assert await read_all(VerifiedReader(store.get, prefetch=6), root, 0, 64 * 20) == DATA[: 64 * 20]
    assert 1 < store.peak <= 6


async def test_closing_early_cancels_prefetched_fetches(store: Blocks) -> None:
    root, leaves = build_file(store, DATA, 64)
    for cid in leaves:
        store.delay[cid] = 0.01
    stream = VerifiedReader(store.get, prefetch=4).read(root, 0, len(DATA))
    assert len(await anext(stream)) == 64
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.05)
    assert store.active == 0


async def test_a_missing_block_is_the_node_error(store: Blocks) -> None:
    root, leaves = build_file(store, DATA, 64)
    del store.stored[leaves[3]]
    with pytest.raises(BackendUnavailable):
        await read_all(VerifiedReader(store.get), root, 0, len(DATA))


async def test_bad_arguments(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    reader = VerifiedReader(store.get)
    assert await read_all(reader, root, 5, 0) == b""
    with pytest.raises(ValueError):
        await read_all(reader, root, -1, 3)
    with pytest.raises(ValueError):
        await read_all(reader, root, len(DATA) - 1, 2, size=len(DATA))
    with pytest.raises(ValueError):
        VerifiedReader(store.get, prefetch=0)
