"""The S3 additional checksums (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256) in their AWS wire format."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

from awscrt import checksums as _crt

from appliance.errors import InvalidArgument

__all__ = [
    "ALGORITHMS",
    "FULL_OBJECT_ALGORITHMS",
    "Checksum",
    "composite",
    "crc_combine",
    "full_object",
    "new_checksum",
]

ALGORITHMS: tuple[str, ...] = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


class Checksum(Protocol):
    """A running checksum; `b64digest` is base64 of the big-endian digest bytes, as S3 sends it."""

    def update(self, data: bytes) -> None: ...

    def b64digest(self) -> str: ...


class _Crc32:
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def b64digest(self) -> str:
        return base64.b64encode(self._value.to_bytes(4, "big")).decode("ascii")


class _Crc32c:
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = _crt.crc32c(data, self._value)

    def b64digest(self) -> str:
        return base64.b64encode(self._value.to_bytes(4, "big")).decode("ascii")


class _Crc64Nvme:
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = _crt.crc64nvme(data, self._value)

    def b64digest(self) -> str:
        return base64.b64encode(self._value.to_bytes(8, "big")).decode("ascii")


class _Hash:
    __slots__ = ("_hash",)

    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def b64digest(self) -> str:
        return base64.b64encode(self._hash.digest()).decode("ascii")


def new_checksum(algorithm: str) -> Checksum:
    """A fresh checksum for a lower-case algorithm name from `ALGORITHMS`; anything else is InvalidArgument."""
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        return _Crc32c()
    if algorithm == "crc64nvme":
        return _Crc64Nvme()
    if algorithm in ("sha1", "sha256"):
        return _Hash(algorithm)
    raise InvalidArgument(f"Unsupported checksum algorithm: {algorithm[:32]!r}.")


def composite(algorithm: str, part_values: list[str]) -> str:
    """S3's COMPOSITE checksum of a multipart object: the checksum of the concatenated binary part checksums,
    base64, followed by '-<number of parts>'."""
    combined = new_checksum(algorithm)
    for value in part_values:
        combined.update(base64.b64decode(value))
    return f"{combined.b64digest()}-{len(part_values)}"


# The CRCs S3 can combine into a FULL_OBJECT checksum of a multipart object: awscrt's combine (crc(A), crc(B),
# len(B)) -> crc(A+B), in O(log len(B)), and the digest width in bytes.
_COMBINE: dict[str, tuple[Callable[[int, int, int], int], int]] = {
    "crc32": (_crt.combine_crc32, 4),
    "crc32c": (_crt.combine_crc32c, 4),
    "crc64nvme": (_crt.combine_crc64nvme, 8),
}
FULL_OBJECT_ALGORITHMS = frozenset(_COMBINE)


def crc_combine(algorithm: str, first: int, second: int, second_length: int) -> int:
    """The CRC of A+B from crc(A), crc(B) and len(B) (zlib's crc32_combine, for the three S3 CRCs)."""
    return _COMBINE[algorithm][0](first, second, second_length)


def full_object(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """S3's FULL_OBJECT checksum of a multipart object from its parts' (base64 CRC, size): the CRC of the whole."""
    width = _COMBINE[algorithm][1]
    combined: int | None = None
    for value, size in parts:
        crc = int.from_bytes(base64.b64decode(value), "big")
        combined = crc if combined is None else crc_combine(algorithm, combined, crc, size)
    if combined is None:
        raise ValueError("no parts")
    return base64.b64encode(combined.to_bytes(width, "big")).decode("ascii")
