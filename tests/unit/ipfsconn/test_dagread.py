"""dagread.VerifiedReader over an in-memory block store: right bytes for every range, and an error (never wrong or
short bytes) for every kind of damage a node can serve."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator

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
        self.cats: list[tuple[str, int, int]] = []
        self.cat_cut = 0  # bytes a cat stream drops at its end
        self.cat_extra = b""  # bytes a cat stream adds at its end
        self.piece = 7  # odd piece sizes, so pieces straddle leaf boundaries

    def put(self, block: bytes, codec: int) -> str:
        cid = Cid.of_block(block, codec).text
        self.stored[cid] = block
        return cid

    async def get(self, cid: str) -> bytes:
        self.fetched.append(cid)
        await asyncio.sleep(0)
        if cid not in self.stored:
            raise BackendUnavailable(f"block {cid} not found in time")
        block = self.served.get(cid, self.stored[cid])
        if not Cid.parse(cid).verifies(block):
            raise ContentIntegrityError("hash", block=cid, root=cid, reason="hash mismatch")
        return block

    def file_bytes(self, cid: str) -> bytes:
        """What a node's `cat` would return: the served blocks' bytes in file order, unverified."""
        if cid not in self.stored:
            raise BackendUnavailable(f"block {cid} not found in time")  # a node's cat waits, then times out
        block = self.served.get(cid, self.stored[cid])
        if Cid.parse(cid).is_raw:
            return block
        node = unixfs.decode_file_node(block)
        return node.data + b"".join(self.file_bytes(link.text) for link in node.links)

    async def cat(self, cid: str, offset: int, length: int) -> AsyncIterator[bytes]:
        self.cats.append((cid, offset, length))
        data = self.file_bytes(cid)[offset : offset + length]
        data = data[: len(data) - self.cat_cut] + self.cat_extra
        for start in range(0, len(data), self.piece):
            await asyncio.sleep(0)
            yield data[start : start + self.piece]

    def reader(self, batch: int = 64) -> VerifiedReader:
        return VerifiedReader(self.get, self.cat, batch=batch)


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
    reader = store.reader(batch=3)
    assert await read_all(reader, root, 0, len(DATA), size=len(DATA)) == DATA
    assert not set(store.fetched) & set(leaves)  # leaves come from cat streams, runs of 3 leaves each
    assert [c[1:] for c in store.cats[:2]] == [(0, 192), (192, 192)]
    assert len(store.cats) == 67  # 201 leaves, split where the walk changes inner node (174 | 27)
    store.fetched.clear()
    store.cats.clear()
    assert await read_all(reader, root, 64 * 180 + 5, 70) == DATA[64 * 180 + 5 : 64 * 180 + 75]
    assert store.cats == [(root, 64 * 180, 128)]  # whole leaves, only the two the range touches
    store.cats.clear()
    assert await read_all(reader, root, 64 * 180 + 5, 7) == DATA[64 * 180 + 5 : 64 * 180 + 12]
    assert store.cats == [] and store.fetched[-1] == leaves[180]  # one leaf: one block/get


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(DATA) - 1), st.integers(1, len(DATA)))
def test_every_range(offset: int, length: int) -> None:
    store = Blocks()
    root, _ = build_file(store, DATA, 64)
    length = min(length, len(DATA) - offset)
    got = asyncio.run(read_all(store.reader(batch=2), root, offset, length, size=len(DATA)))
    assert got == DATA[offset : offset + length]


async def test_single_raw_block_root(store: Blocks) -> None:
    root, _ = build_file(store, b"hello world\n", 1024)
    reader = store.reader()
    assert await read_all(reader, root, 6, 6) == b"world\n"
    assert await read_all(reader, root, 0, 12, size=12) == b"hello world\n"
    with pytest.raises(ContentIntegrityError, match="size mismatch"):
        await read_all(reader, root, 0, 13)  # beyond the end of the file the node holds


async def test_recorded_size_must_match_the_root(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    with pytest.raises(ContentIntegrityError, match="size mismatch"):
        await read_all(store.reader(), root, 0, 10, size=len(DATA) + 1)
    raw_root, _ = build_file(store, b"abc", 64)
    with pytest.raises(ContentIntegrityError, match="size mismatch"):
        await read_all(store.reader(), raw_root, 0, 3, size=4)


async def test_a_corrupted_leaf_stops_before_its_bytes(store: Blocks) -> None:
    root, leaves = build_file(store, DATA, 64)
    bad = leaves[100]
    store.served[bad] = b"\0" * 64
    for batch in (1, 4, 64):
        got: list[bytes] = []
        with pytest.raises(ContentIntegrityError) as info:
            async for piece in store.reader(batch=batch).read(root, 0, len(DATA)):
                got.append(piece)
        assert info.value.block == bad and info.value.root == root and info.value.reason == "hash mismatch"
        assert b"".join(got) == DATA[: 100 * 64]  # everything before the bad block, nothing of it or after


@pytest.mark.parametrize(("cut", "extra", "reason"), [(1, b"", "short stream"), (0, b"x", "long stream")])
async def test_a_short_or_long_cat_stream(store: Blocks, cut: int, extra: bytes, reason: str) -> None:
    root, _ = build_file(store, DATA, 64)
    store.cat_cut, store.cat_extra = cut, extra
    got: list[bytes] = []
    with pytest.raises(ContentIntegrityError, match=reason):
        async for piece in store.reader(batch=8).read(root, 0, 64 * 8):
            got.append(piece)
    assert len(b"".join(got)) <= 64 * 7  # the last leaf is held back until the stream is known to end right
    assert b"".join(got) == DATA[: len(b"".join(got))]


async def test_a_stream_that_shifts_bytes_between_leaves(store: Blocks) -> None:
    """Right total length, wrong bytes: a leaf's bytes swapped with its neighbour's fail the hash."""
    root, leaves = build_file(store, DATA, 64)
    store.served[leaves[1]], store.served[leaves[2]] = store.stored[leaves[2]], store.stored[leaves[1]]
    with pytest.raises(ContentIntegrityError, match="hash mismatch") as info:
        await read_all(store.reader(), root, 0, 64 * 4)
    assert info.value.block == leaves[1]


async def test_a_corrupted_inner_node(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    store.served[root] = store.stored[root][:-1] + b"\x00"
    with pytest.raises(ContentIntegrityError, match="hash mismatch") as info:
        await read_all(store.reader(), root, 0, 10)
    assert info.value.block == root


async def test_a_node_that_hashes_right_but_lies_about_sizes(store: Blocks) -> None:
    """A well-formed node (its CID is honest) whose blocksizes do not match its leaves: the leaf check catches it."""
    short = store.put(b"abc", RAW)
    node = unixfs._file_node([unixfs.Child(short, 5, 3)])  # says the leaf holds 5 bytes
    root = store.put(node, 0x70)
    with pytest.raises(ContentIntegrityError, match="size mismatch") as info:
        await read_all(store.reader(), root, 0, 5)
    assert info.value.block == short


async def test_a_directory_or_garbage_node(store: Blocks) -> None:
    directory = store.put(b"\x0a\x02\x08\x01", 0x70)
    with pytest.raises(ContentIntegrityError, match="malformed: UnixFS node of type 1"):
        await read_all(store.reader(), directory, 0, 1)
    garbage = store.put(b"\xff\xff\xff", 0x70)
    with pytest.raises(ContentIntegrityError, match="malformed"):
        await read_all(store.reader(), garbage, 0, 1)
    other_codec = Cid(b"\x01\x71\x12\x20" + hashlib.sha256(b"x").digest()).text  # dag-cbor
    with pytest.raises(ContentIntegrityError, match="unexpected codec"):
        await read_all(store.reader(), other_codec, 0, 1)
    with pytest.raises(ContentIntegrityError, match="not a CID"):
        await read_all(store.reader(), "not-a-cid", 0, 1)


async def test_a_cycle_or_absurd_depth_is_refused(store: Blocks) -> None:
    leaf = store.put(b"x", RAW)
    child = unixfs.Child(leaf, 1, 1)
    for _ in range(40):
        block, child = unixfs.wrap(child)
        store.put(block, 0x70)
    with pytest.raises(ContentIntegrityError, match="deeper"):
        await read_all(store.reader(), child.cid, 0, 1)


async def test_pieces_of_any_size(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    for piece in (1, 63, 64, 65, 1000, 100_000):
        store.piece = piece
        batch = random.Random(piece).randint(2, 90)
        assert await read_all(store.reader(batch=batch), root, 3, 5000) == DATA[3:5003]


async def test_closing_early_closes_the_cat_stream(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    closed: list[bool] = []
    inner = store.cat

    async def cat(cid: str, offset: int, length: int) -> AsyncIterator[bytes]:
        try:
            async for piece in inner(cid, offset, length):
                yield piece
        finally:
            closed.append(True)

    stream = VerifiedReader(store.get, cat, batch=4).read(root, 0, len(DATA))
    assert len(await anext(stream)) > 0
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]


async def test_a_missing_block_is_the_node_error(store: Blocks) -> None:
    root, leaves = build_file(store, DATA, 64)
    del store.stored[leaves[3]]
    with pytest.raises(BackendUnavailable):
        await read_all(store.reader(), root, 0, len(DATA))


async def test_bad_arguments(store: Blocks) -> None:
    root, _ = build_file(store, DATA, 64)
    reader = store.reader()
    assert await read_all(reader, root, 5, 0) == b""
    with pytest.raises(ValueError):
        await read_all(reader, root, -1, 3)
    with pytest.raises(ValueError):
        await read_all(reader, root, len(DATA) - 1, 2, size=len(DATA))
    with pytest.raises(ValueError):
        store.reader(batch=0)
    identity = Cid(b"\x01\x55\x00\x02ab")  # a leaf with an identity multihash cannot be verified
    node = unixfs._file_node([unixfs.Child(identity.text, 2, 2), unixfs.Child(identity.text, 2, 2)])
    with pytest.raises(ContentIntegrityError, match="unsupported hash"):
        await read_all(store.reader(), store.put(node, 0x70), 0, 4)
