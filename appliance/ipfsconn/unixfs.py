"""UnixFS file roots over existing files, as dag-pb blocks (pure, no I/O).

A multipart object is one UnixFS file whose root links the parts' own roots (raw leaves or dag-pb file nodes), so
no part data is re-added: `cat` of the root on any IPFS node returns the parts' bytes in order. Encoding follows
the dag-pb spec (PBNode: Links (field 2) before Data (field 1); PBLink: Hash 1, Name 2, Tsize 3) and UnixFS Data
(Type 1 = File, filesize 3, blocksizes 4, not packed), as go-unixfs writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.model import Cid, decode_varint, encode_varint

__all__ = [
    "MAX_LINKS",
    "Child",
    "FileNode",
    "compose_blocks",
    "dag_pb_links",
    "dag_pb_tsize",
    "decode_file_node",
    "file_node_size",
    "wrap",
]

MAX_LINKS = 174  # links per node, as Kubo's balanced layout
_FILE = 2
_varint = encode_varint
_read_varint = decode_varint


@dataclass(frozen=True, slots=True)
class Child:
    """An existing UnixFS file (or raw leaf) to link: its CID, its file bytes and its cumulative DAG size."""

    cid: str
    size: int
    tsize: int


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _file_node(children: Sequence[Child]) -> bytes:
    data = _int_field(1, _FILE) + _int_field(3, sum(c.size for c in children))
    data += b"".join(_int_field(4, c.size) for c in children)
    links = b"".join(
        _bytes_field(2, _bytes_field(1, Cid.parse(c.cid).raw) + _bytes_field(2, b"") + _int_field(3, c.tsize))
        for c in children
    )
    return links + _bytes_field(1, data)


def compose_blocks(children: Sequence[Child]) -> tuple[list[bytes], str]:
    """The dag-pb blocks of a file made of `children` in order (at most MAX_LINKS links per node, so a long list
    gets intermediate nodes), children-first, and the root CID."""
    if not children:
        raise ValueError("a composed file needs at least one child")
    blocks: list[bytes] = []
    level = list(children)
    while True:
        parents: list[Child] = []
        for start in range(0, len(level), MAX_LINKS):
            group = level[start : start + MAX_LINKS]
            block = _file_node(group)
            blocks.append(block)
            parents.append(
                Child(Cid.of_block(block).text, sum(c.size for c in group), len(block) + sum(c.tsize for c in group))
            )
        if len(parents) == 1:
            return blocks, parents[0].cid
        level = parents


def dag_pb_links(block: bytes) -> list[tuple[bytes, int]]:
    """(binary CID, Tsize) of every link of a dag-pb node, in order. ValueError if it does not parse."""
    links: list[tuple[bytes, int]] = []
    pos = 0
    while pos < len(block):
        key, pos = _read_varint(block, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _read_varint(block, pos)
            continue
        if wire != 2:
            raise ValueError("unexpected wire type in a dag-pb node")
        length, pos = _read_varint(block, pos)
        payload, pos = block[pos : pos + length], pos + length
        if pos > len(block):
            raise ValueError("truncated dag-pb field")
        if key >> 3 != 2:
            continue  # Data
        cid, tsize, inner = b"", 0, 0
        while inner < len(payload):
            lkey, inner = _read_varint(payload, inner)
            if lkey & 7 == 2:
                llen, inner = _read_varint(payload, inner)
                if lkey >> 3 == 1:
                    cid = payload[inner : inner + llen]
                inner += llen
            elif lkey & 7 == 0:
                value, inner = _read_varint(payload, inner)
                if lkey >> 3 == 3:
                    tsize = value
            else:
                raise ValueError("unexpected wire type in a dag-pb link")
        links.append((cid, tsize))
    return links


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, varint value or bytes payload) of a protobuf message; ValueError if it does not parse."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        if key & 7 == 0:
            value, pos = _read_varint(data, pos)
            fields.append((key >> 3, value))
        elif key & 7 == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated protobuf field")
            fields.append((key >> 3, data[pos : pos + length]))
            pos += length
        else:
            raise ValueError("unexpected protobuf wire type")
    return fields


def file_node_size(block: bytes) -> int:
    """The file bytes under a dag-pb UnixFS file node (`filesize`, else its data plus `blocksizes`).
    ValueError if the block is not a UnixFS file (or raw) node."""
    payloads = [v for n, v in _fields(block) if n == 1 and isinstance(v, bytes)]
    if not payloads:
        raise ValueError("dag-pb node without UnixFS Data")
    kind, filesize, inline, blocksizes = None, None, 0, 0
    for number, value in _fields(payloads[-1]):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            inline = len(value)
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes += value
    if kind not in (0, _FILE):  # Raw (0) or File (2)
        raise ValueError(f"UnixFS node of type {kind} is not a file")
    return filesize if filesize is not None else inline + blocksizes


def dag_pb_tsize(block: bytes) -> int:
    """The cumulative DAG size of a dag-pb node: its own bytes plus its links' Tsize."""
    return len(block) + sum(tsize for _, tsize in dag_pb_links(block))


def wrap(child: Child) -> tuple[bytes, Child]:
    """A one-link file node over `child`: the same bytes one level deeper. Composed files keep every leaf at the
    same depth this way, which some exporters (js-ipfs) need to return the bytes in order."""
    block = _file_node([child])
    return block, Child(Cid.of_block(block).text, child.size, len(block) + child.tsize)


@dataclass(frozen=True, slots=True)
class FileNode:
    """A dag-pb UnixFS file node, checked for consistency: `data` (inline bytes, first) then one child per link,
    the i-th holding `blocksizes[i]` file bytes; `size` is their sum (and the node's filesize when it states one)."""

    links: tuple[Cid, ...]
    blocksizes: tuple[int, ...]
    data: bytes
    size: int


def _link_cid(payload: bytes) -> Cid:
    found: Cid | None = None
    for number, value in _fields(payload):
        if number == 1:
            if not isinstance(value, bytes):
                raise ValueError("a dag-pb link's Hash is not bytes")
            found = Cid(value)
    if found is None:
        raise ValueError("a dag-pb link without a Hash")
    return found


def decode_file_node(block: bytes, *, max_size: int = 1 << 62) -> FileNode:
    """Parse a dag-pb UnixFS File (or Raw) node strictly; ValueError naming what is wrong: a directory or another
    type, links and blocksizes that disagree, a filesize that is not the sum of its parts, a link that is not a
    CIDv1, a size above `max_size`."""
    links: list[Cid] = []
    payloads: list[bytes] = []
    for number, value in _fields(block):
        if not isinstance(value, bytes):
            raise ValueError("a dag-pb node field has the wrong wire type")
        if number == 2:
            if payloads:
                raise ValueError("a dag-pb link after the Data field")
            links.append(_link_cid(value))
        elif number == 1:
            payloads.append(value)
        else:
            raise ValueError(f"unknown dag-pb field {number}")
    if len(payloads) != 1:
        raise ValueError("a dag-pb node needs exactly one UnixFS Data field")
    kind: int | None = None
    filesize: int | None = None
    data = b""
    blocksizes: list[int] = []
    for number, value in _fields(payloads[0]):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            data = value
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes.append(value)
        elif number == 4 and isinstance(value, bytes):  # packed repeated (some encoders)
            pos = 0
            while pos < len(value):
                size, pos = _read_varint(value, pos)
                blocksizes.append(size)
    if kind not in (0, _FILE):
        raise ValueError(f"UnixFS node of type {kind} is not a file")
    if len(blocksizes) != len(links):
        raise ValueError(f"{len(links)} links but {len(blocksizes)} blocksizes")
    total = len(data) + sum(blocksizes)
    if filesize is not None and filesize != total:
        raise ValueError(f"filesize {filesize} is not the {total} bytes of its data and children")
    if total > max_size:
        raise ValueError(f"a file node of {total} bytes is larger than expected")
    return FileNode(links=tuple(links), blocksizes=tuple(blocksizes), data=data, size=total)
