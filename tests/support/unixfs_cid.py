"""An independent, stdlib-only calculator of the UnixFS file CID Kubo and js-ipfs give for
`cid-version=1, raw-leaves=true, chunker=size-N, hash=sha2-256` (balanced layout, 174 links per node).

    builder = UnixfsCidBuilder(chunk_size=1 << 20)
    for piece in pieces:
        builder.update(piece)
    builder.finish()  # 'bafy…' (or 'bafk…' for a file of at most one chunk)

Memory stays bounded: one partial chunk plus at most 174 pending links per tree level.

The layout (ipfs-unixfs-importer's balanced builder, equal to go-unixfs's balanced layout): chunks become
raw leaves; every 174 links at one level make a dag-pb parent one level up; at the end each level's rest
is closed into a parent until one node remains. A file of one chunk is that raw leaf itself, and an empty
file is the raw leaf of no bytes.

dag-pb (canonical order: Links first, then Data): PBLink{1: Hash, 2: Name = "", 3: Tsize}; UnixFS Data
{1: Type = File (2), 3: filesize, 4: blocksizes (repeated, not packed)}. Tsize of a raw leaf is its length;
of a dag-pb child, its block length plus its children's Tsizes.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_LINKS", "UnixfsCidBuilder", "cid_of_bytes", "cid_of_chunks", "cid_of_file", "cid_text"]

MAX_LINKS = 174
_RAW = 0x55
_DAG_PB = 0x70
_SHA2_256 = 0x12
_UNIXFS_FILE = 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _cid(codec: int, block: bytes | bytearray | memoryview) -> bytes:
    digest = hashlib.sha256(block).digest()
    return _varint(1) + _varint(codec) + bytes([_SHA2_256, len(digest)]) + digest


def cid_text(cid: bytes) -> str:
    """Multibase base32 (lower case, no padding) text of binary CID bytes."""
    return "b" + base64.b32encode(cid).decode("ascii").lower().rstrip("=")


@dataclass(frozen=True, slots=True)
class _Link:
    cid: bytes
    tsize: int  # cumulative DAG size below and including the child
    filesize: int  # file bytes under the child


def _parent(links: list[_Link]) -> _Link:
    data = _field_varint(1, _UNIXFS_FILE) + _field_varint(3, sum(link.filesize for link in links))
    data += b"".join(_field_varint(4, link.filesize) for link in links)
    block = b"".join(
        _field_bytes(2, _field_bytes(1, link.cid) + _field_bytes(2, b"") + _field_varint(3, link.tsize))
        for link in links
    )
    block += _field_bytes(1, data)
    filesize = sum(link.filesize for link in links)
    return _Link(_cid(_DAG_PB, block), len(block) + sum(link.tsize for link in links), filesize)


class UnixfsCidBuilder:
    """Feed bytes with `update`, read the root CID with `finish`."""

    def __init__(self, chunk_size: int = 262144) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be > 0")
        self.chunk_size = chunk_size
        self.size = 0
        self._partial = bytearray()
        self._levels: list[list[_Link]] = [[]]
        self._leaves = 0

    def update(self, data: bytes) -> None:
        view = memoryview(data).cast("B")
        self.size += len(view)
        if self._partial:
            take = self.chunk_size - len(self._partial)
            self._partial += view[:take]
            view = view[take:]
            if len(self._partial) < self.chunk_size:
                return
            self._leaf(self._partial)
            self._partial = bytearray()
        while len(view) >= self.chunk_size:
            self._leaf(view[: self.chunk_size])
            view = view[self.chunk_size :]
        self._partial += view

    def _leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        self._leaves += 1
        self._push(0, _Link(_cid(_RAW, chunk), len(chunk), len(chunk)))

    def _push(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        self._levels[level].append(link)
        if len(self._levels[level]) == MAX_LINKS:
            full, self._levels[level] = self._levels[level], []
            self._push(level + 1, _parent(full))

    def finish(self) -> str:
        """The root CID in base32; the builder is spent afterwards."""
        if self._partial or self._leaves == 0:
            self._leaf(self._partial)  # the last short chunk, or the empty file's empty leaf
            self._partial = bytearray()
        level = 0
        while True:
            links = self._levels[level]
            higher = any(self._levels[level + 1 :])
            if not higher and len(links) == 1:
                return cid_text(links[0].cid)
            if links:
                self._levels[level] = []
                self._push(level + 1, _parent(links))
            level += 1


def cid_of_chunks(pieces: Iterable[bytes], chunk_size: int = 262144) -> str:
    """The CID of the concatenation of `pieces` (any sizes)."""
    builder = UnixfsCidBuilder(chunk_size)
    for piece in pieces:
        builder.update(piece)
    return builder.finish()


def cid_of_bytes(data: bytes, chunk_size: int = 262144) -> str:
    """The CID of `data`."""
    return cid_of_chunks([data], chunk_size)


def cid_of_file(path: Path, chunk_size: int = 262144) -> str:
    """The CID of a file, read in 1 MiB pieces."""
    with Path(path).open("rb") as fh:
        return cid_of_chunks(iter(lambda: fh.read(1 << 20), b""), chunk_size)


if __name__ == "__main__":
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 262144
    print(cid_of_file(Path(sys.argv[1]), size))
