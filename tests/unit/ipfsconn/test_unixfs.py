"""dag-pb file roots over existing children, checked against the independent UnixFS CID calculator of tests/support."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.ipfsconn import unixfs
from appliance.model import RAW, Cid
from tests.support.unixfs_cid import cid_of_bytes


def _raw_leaf(chunk: bytes) -> unixfs.Child:
    digest = hashlib.sha256(chunk).digest()
    return unixfs.Child(Cid(b"\x01\x55\x12\x20" + digest).text, len(chunk), len(chunk))


@pytest.mark.parametrize(("size", "chunk"), [(3 * 1024 + 5, 1024), (174 * 64, 64), (200 * 64 + 3, 64), (40_000, 64)])
def test_compose_of_leaves_equals_the_balanced_layout(size: int, chunk: int) -> None:
    data = os.urandom(size)
    leaves = [_raw_leaf(data[i : i + chunk]) for i in range(0, size, chunk)]
    blocks, root = unixfs.compose_blocks(leaves)
    # The same leaves under the same ≤174-link levels: exactly the CID an importer computes for the bytes.
    assert root == cid_of_bytes(data, chunk_size=chunk)
    assert Cid.of_block(blocks[-1]).text == root


def test_links_and_tsize_round_trip() -> None:
    leaves = [_raw_leaf(os.urandom(n)) for n in (10, 20, 30)]
    blocks, _ = unixfs.compose_blocks(leaves)
    links = unixfs.dag_pb_links(blocks[0])
    assert [Cid(c).text for c, _ in links] == [leaf.cid for leaf in leaves]
    assert [t for _, t in links] == [10, 20, 30]
    assert unixfs.dag_pb_tsize(blocks[0]) == len(blocks[0]) + 60
    assert all((c)[1:2] == bytes([RAW]) for c, _ in links)


def test_wrap_keeps_size_and_adds_a_level() -> None:
    leaf = _raw_leaf(b"abc")
    block, wrapped = unixfs.wrap(leaf)
    assert wrapped.size == 3
    assert wrapped.tsize == len(block) + 3
    assert [Cid(c).text for c, _ in unixfs.dag_pb_links(block)] == [leaf.cid]
    assert not (Cid.parse(wrapped.cid).raw)[1:2] == bytes([RAW])


def test_errors() -> None:
    with pytest.raises(ValueError):
        unixfs.compose_blocks([])
    with pytest.raises(ValueError):
        Cid.parse("QmNotBase32").raw
    with pytest.raises(ValueError):
        unixfs.dag_pb_links(b"\x12\xff")  # a length running past the end


@settings(max_examples=50)
@given(st.binary(max_size=300))
def test_link_parser_never_crashes(data: bytes) -> None:
    try:
        unixfs.dag_pb_links(data)
    except ValueError:
        pass


def test_decode_file_node_of_a_composed_root() -> None:
    leaves = [_raw_leaf(bytes([i]) * (i + 1)) for i in range(5)]
    blocks, _ = unixfs.compose_blocks(leaves)
    node = unixfs.decode_file_node(blocks[-1])
    assert [c.text for c in node.links] == [leaf.cid for leaf in leaves]
    assert node.blocksizes == tuple(leaf.size for leaf in leaves)
    assert node.size == sum(leaf.size for leaf in leaves) and node.data == b""
    with pytest.raises(ValueError, match="larger than expected"):
        unixfs.decode_file_node(blocks[-1], max_size=3)


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (b"", "exactly one UnixFS Data"),
        (b"\x0a\x02\x08\x01", "type 1 is not a file"),  # a directory
        (b"\x0a\x04\x08\x02\x18\x05", "filesize 5"),  # filesize without the bytes
        (b"\x0a\x04\x08\x02\x20\x03", "0 links but 1 blocksizes"),
        (b"\x12\x02\x0a\x00\x0a\x02\x08\x02", "CIDv1"),  # a link whose hash is empty
        (b"\x1a\x00", "unknown dag-pb field"),
        (b"\x0a\x02\x08\x02\x12\x00", "link after the Data"),
        (b"\x0a\x05\x08", "truncated"),
        (b"\x08\x01", "wrong wire type"),
    ],
)
def test_decode_file_node_rejects(block: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        unixfs.decode_file_node(block)


def test_decode_file_node_inline_data_and_packed_blocksizes() -> None:
    leaf = _raw_leaf(b"abc")
    link = b"\x0a" + bytes([len(Cid.parse(leaf.cid).raw)]) + Cid.parse(leaf.cid).raw
    data = b"\x08\x02\x12\x02hi\x18\x05\x22\x01\x03"  # File, data "hi", filesize 5, packed blocksizes [3]
    block = b"\x12" + bytes([len(link)]) + link + b"\x0a" + bytes([len(data)]) + data
    node = unixfs.decode_file_node(block)
    assert (node.data, node.blocksizes, node.size) == (b"hi", (3,), 5)
