"""unixfs.compose_blocks decoded by a decoder written here (not the module's), and compared with the balanced layout
of the independent calculator in tests/support/unixfs_cid.py."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.ipfsconn import unixfs
from appliance.model import RAW, Cid
from tests.support import unixfs_cid
from tests.support.unixfs_cid import cid_of_bytes

MiB = 1024 * 1024

# ---- a tiny protobuf / dag-pb / UnixFS decoder, independent of appliance.ipfsconn.unixfs ---------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _message(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        if key & 7 == 0:
            value, pos = _varint(data, pos)
            out.append((key >> 3, value))
        else:
            assert key & 7 == 2
            length, pos = _varint(data, pos)
            out.append((key >> 3, data[pos : pos + length]))
            pos += length
    assert pos == len(data)
    return out


@dataclass
class Decoded:
    links: list[tuple[bytes, bytes, int]]  # (hash, name, tsize)
    kind: int
    filesize: int
    blocksizes: list[int]


def decode(block: bytes) -> Decoded:
    fields = _message(block)
    numbers = [n for n, _ in fields]
    # canonical dag-pb: every Links (2) before the single Data (1), which is last
    assert numbers == [2] * (len(numbers) - 1) + [1]
    links = []
    for _, payload in fields[:-1]:
        assert isinstance(payload, bytes)
        link = dict(_message(payload))
        assert [n for n, _ in _message(payload)] == [1, 2, 3]  # Hash, Name, Tsize in field order
        links.append((link[1], link[2], link[3]))
    data = fields[-1][1]
    assert isinstance(data, bytes)
    unixfs_fields = _message(data)
    kind = next(v for n, v in unixfs_fields if n == 1)
    filesize = next(v for n, v in unixfs_fields if n == 3)
    blocksizes = [v for n, v in unixfs_fields if n == 4]
    assert isinstance(kind, int) and isinstance(filesize, int)
    return Decoded(links, kind, filesize, [v for v in blocksizes if isinstance(v, int)])  # type: ignore[arg-type]


def _b32(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def _raw_leaf(chunk: bytes) -> unixfs.Child:
    return unixfs.Child(_b32(b"\x01\x55\x12\x20" + hashlib.sha256(chunk).digest()), len(chunk), len(chunk))


def _fake_child(seed: int, size: int, tsize: int, dag_pb: bool) -> unixfs.Child:
    codec = b"\x70" if dag_pb else b"\x55"
    digest = hashlib.sha256(seed.to_bytes(8, "big")).digest()
    return unixfs.Child(_b32(b"\x01" + codec + b"\x12\x20" + digest), size, tsize)


# ---- against the independent calculator --------------------------------------------------------------------


@pytest.mark.parametrize(("size", "chunk"), [(3 * MiB + MiB // 2, MiB), (2 * MiB, MiB), (5 * MiB + 1, MiB)])
def test_leaves_of_a_1mib_chunked_file_compose_to_its_cid(size: int, chunk: int) -> None:
    data = os.urandom(size)
    leaves = [_raw_leaf(data[i : i + chunk]) for i in range(0, size, chunk)]
    blocks, root = unixfs.compose_blocks(leaves)
    assert root == cid_of_bytes(data, chunk_size=chunk)
    assert len(blocks) == 1


@pytest.mark.parametrize("chunks", [175, 174 * 2, 174 * 3 + 10, 174 * 174 + 1])
def test_level1_nodes_compose_to_the_whole_file_cid(chunks: int) -> None:
    """Children that are the file's own level-1 nodes (174 leaves each, the last one shorter) give the CID of the
    whole file, also when there are more than 174 of them (then compose adds the level above)."""
    chunk = 16
    data = os.urandom(chunks * chunk - 3)
    span = unixfs_cid.MAX_LINKS * chunk
    children = []
    for start in range(0, len(data), span):
        piece = data[start : start + span]
        leaves = [_raw_leaf(piece[i : i + chunk]) for i in range(0, len(piece), chunk)]
        links = [unixfs_cid._Link(Cid.parse(leaf.cid).raw, leaf.tsize, leaf.size) for leaf in leaves]
        parent = unixfs_cid._parent(links)  # the calculator's own node (its CID and Tsize)
        if len(leaves) > 1:
            assert unixfs_cid.cid_text(parent.cid) == cid_of_bytes(piece, chunk_size=chunk)
        children.append(unixfs.Child(unixfs_cid.cid_text(parent.cid), parent.filesize, parent.tsize))
    blocks, root = unixfs.compose_blocks(children)
    assert root == cid_of_bytes(data, chunk_size=chunk)
    assert Cid.of_block(blocks[-1]).text == root


def test_cid_of_block_matches_the_calculator() -> None:
    block = os.urandom(300)
    assert Cid.of_block(block, RAW).text == cid_of_bytes(block)  # one chunk: the raw leaf itself
    assert Cid.of_block(block).text.startswith("bafybei")
    assert Cid.parse(Cid.of_block(block).text).raw[:4] == b"\x01\x70\x12\x20"


# ---- encode → decode round trip ------------------------------------------------------------------------------

children_lists = st.lists(
    st.builds(
        _fake_child,
        st.integers(0, 2**63),
        st.integers(0, 2**40),
        st.integers(0, 2**45),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(children_lists)
def test_single_node_round_trip(children: list[unixfs.Child]) -> None:
    blocks, root = unixfs.compose_blocks(children)
    assert len(blocks) == 1
    assert Cid.of_block(blocks[0]).text == root
    node = decode(blocks[0])
    assert node.kind == 2
    assert node.filesize == sum(c.size for c in children)
    assert node.blocksizes == [c.size for c in children]
    assert [(_b32(h), name, t) for h, name, t in node.links] == [(c.cid, b"", c.tsize) for c in children]
    assert unixfs.file_node_size(blocks[0]) == node.filesize
    assert unixfs.dag_pb_links(blocks[0]) == [(h, t) for h, _, t in node.links]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 174 * 174 + 200), st.integers(0, 2**20))
def test_tree_round_trip(count: int, seed: int) -> None:
    children = [_fake_child(seed + i, (seed + i) % 1000, (seed + i) % 1000 + 7, i % 2 == 0) for i in range(count)]
    blocks, root = unixfs.compose_blocks(children)
    by_cid = {Cid.of_block(b).text: b for b in blocks}
    assert len(by_cid) == len(blocks)
    # leaves-first: every block is put after the blocks it links to
    position = {Cid.of_block(b).text: i for i, b in enumerate(blocks)}
    assert position[root] == len(blocks) - 1
    depths: set[int] = set()
    flat: list[tuple[str, int]] = []

    def walk(cid: str, depth: int) -> tuple[int, int]:
        """(file size, tsize) of the subtree, flattening the composed children in order."""
        if cid not in by_cid:
            depths.add(depth)
            child = children[len(flat)]
            flat.append((cid, child.size))
            return child.size, child.tsize
        block = by_cid[cid]
        node = decode(block)
        assert 1 <= len(node.links) <= unixfs.MAX_LINKS
        size = tsize = 0
        for (h, _, t), blocksize in zip(node.links, node.blocksizes, strict=True):
            if _b32(h) in position:
                assert position[_b32(h)] < position[cid]
            sub_size, sub_tsize = walk(_b32(h), depth + 1)
            assert blocksize == sub_size
            assert t == sub_tsize
            size += sub_size
            tsize += sub_tsize
        assert node.filesize == size
        return size, len(block) + tsize

    total, _ = walk(root, 0)
    assert flat == [(c.cid, c.size) for c in children]
    assert total == sum(c.size for c in children)
    assert len(depths) == 1  # balanced: every composed child sits at the same depth
    expected_blocks, level = 0, count
    while level > 1 or expected_blocks == 0:
        level = -(-level // unixfs.MAX_LINKS)
        expected_blocks += level
    assert len(blocks) == expected_blocks


# ---- helpers -----------------------------------------------------------------------------------------------


def test_file_node_size() -> None:
    blocks, _ = unixfs.compose_blocks([_raw_leaf(b"abc"), _raw_leaf(b"defgh")])
    assert unixfs.file_node_size(blocks[0]) == 8
    with pytest.raises(ValueError):
        unixfs.file_node_size(b"")  # no Data
    directory = b"\x0a\x02\x08\x01"  # Data {Type: Directory}
    with pytest.raises(ValueError):
        unixfs.file_node_size(directory)
    no_filesize = b"\x0a\x06\x08\x02\x20\x03\x20\x04"  # File with blocksizes 3 and 4 only
    assert unixfs.file_node_size(no_filesize) == 7


def test_cid_parse_rejects_a_bare_multihash() -> None:
    with pytest.raises(ValueError):
        Cid.parse("b" + base64.b32encode(b"\x12\x20" + bytes(32)).decode().lower().rstrip("="))
