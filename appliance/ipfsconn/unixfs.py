"""UnixFS file roots over existing files, as dag-pb blocks (pure, no I/O).

A multipart object is one UnixFS file whose root links the parts' own roots (raw leaves or dag-pb file nodes), so
no part data is re-added: `cat` of the root on any IPFS node returns the parts' bytes in order. Encoding follows
the dag-pb spec (PBNode: Links (field 2) before Data (field 1); PBLink: Hash 1, Name 2, Tsize 3) and UnixFS Data
(Type 1 = File, filesize 3, blocksizes 4, not packed), as go-unixfs writes them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DAG_PB",
    "MAX_LINKS",
    "RAW",
    "Child",
    "cid_bytes",
    "cid_of_block",
    "cid_text",
    "compose_blocks",
    "dag_pb_links",
    "dag_pb_tsize",
    "file_node_size",
    "is_raw",
    "wrap",
]

MAX_LINKS = 174  # links per node, as Kubo's balanced layout
DAG_PB = 0x70  # multicodec of dag-pb blocks
RAW = 0x55  # multicodec of raw blocks (leaves)
_DAG_PB = DAG_PB
_RAW = RAW
_SHA2_256 = 0x12
_FILE = 2


@dataclass(frozen=True, slots=True)
class Child:
    """An existing UnixFS file (or raw leaf) to link: its CID, its file bytes and its cumulative DAG size."""

    cid: str
    size: int
    tsize: int


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def cid_bytes(text: str) -> bytes:
    """Binary form of a base32 CIDv1 text (`b…`)."""
    if not text.startswith("b") or len(text) < 10:
        raise ValueError(f"not a base32 CIDv1: {text[:80]!r}")
    raw = base64.b32decode(text[1:].upper() + "=" * (-(len(text) - 1) % 8))
    if raw[:1] != b"\x01":
        raise ValueError(f"not a CIDv1: {text[:80]!r}")
    return raw


def cid_text(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def cid_of_block(block: bytes, codec: int = _DAG_PB) -> str:
    """CIDv1, sha2-256, base32 of a block."""
    digest = hashlib.sha256(block).digest()
    return cid_text(_varint(1) + _varint(codec) + bytes([_SHA2_256, len(digest)]) + digest)


def _file_node(children: Sequence[Child]) -> bytes:
    data = _int_field(1, _FILE) + _int_field(3, sum(c.size for c in children))
    data += b"".join(_int_field(4, c.size) for c in children)
    links = b"".join(
        _bytes_field(2, _bytes_field(1, cid_bytes(c.cid)) + _bytes_field(2, b"") + _int_field(3, c.tsize))
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
                Child(cid_of_block(block), sum(c.size for c in group), len(block) + sum(c.tsize for c in group))
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


def is_raw(cid: bytes) -> bool:
    """Whether a binary CIDv1 names a raw block (a leaf)."""
    return cid[1:2] == bytes([_RAW])


def wrap(child: Child) -> tuple[bytes, Child]:
    """A one-link file node over `child`: the same bytes one level deeper. Composed files keep every leaf at the
    same depth this way, which some exporters (js-ipfs) need to return the bytes in order."""
    block = _file_node([child])
    return block, Child(cid_of_block(block), child.size, len(block) + child.tsize)
