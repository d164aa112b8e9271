"""The LMDB key layout: named databases, object ids, long-key groups, order-preserving time keys.

Named databases (all in one environment):

    meta            b"schema_version" -> ASCII decimal
    buckets         bucket UTF-8 -> bucket row
    objects         storage key (below) -> object row, or a group of rows for long ids
    long_names      sha256(object id) -> object id, for ids too long to be a cid_refs value
    cid_refs        (dupsort) CID -> ref (object id, or b"\\xff" + sha256(object id) when long)
    unpins          CID -> unpin job (state, due)
    unpin_due       due time (8 bytes, ordered) + CID -> b""   (one entry per job)
    unpinned        CID -> time its unpin finished (a tombstone; see LmdbMetadataStore.put_object)
    unpinned_expiry expiry time (8 bytes, ordered) + CID -> b""
    uploads         upload id (ASCII) -> multipart upload row                      (schema 2)
    upload_index    bucket UTF-8 + NUL + upload id -> b""  (a bucket's uploads)      (schema 2)
    parts           upload id + NUL + part number (4 bytes, big-endian) -> part row (schema 2)
    bucket_configs  bucket UTF-8 + NUL + name (cors, tagging, versioning, ...) -> JSON text (schema 2)
    versions        version_prefix(object id) + inverted time (8) + random (4) -> version row (schema 2):
                    noncurrent versions and delete markers; the current version stays in `objects`

    pin_jobs        CID -> pin outbox job (JSON, model.PinJob)                           (schema 3)
    pin_due         due time (8 bytes, ordered) + CID -> b""  (one entry per pin job)   (schema 3)
    pin_status      CID -> pin status record (JSON, model.PinRecord)                     (schema 3)
    access_stats    CID -> decayed access counter (score, time; two doubles)             (schema 3)

    damaged_blocks  block CID (ASCII) -> damage report (JSON, model.DamageReport)        (schema 4)
    scrub           b"run" -> the current or last scrub run (JSON: options, position, counters)   (schema 4)
                    b"history" + finish time (8, ordered) + run id -> a finished run's summary (JSON)
    completed_uploads  upload id (ASCII) -> completed-upload record (codec.encode_completed)  (schema 5)
    completed_due      completion time (8 bytes, ordered) + upload id -> b""  (expiry order)  (schema 5)
    iam             IAM records (JSON) under one-letter prefixes (state/iam_store.py)           (schema 6)
    iam_usage       access key id (ASCII) -> last-used time (8 bytes, pack_time); written in batches, outside
                    the IAM change counter (meta b"iam_generation", 8 bytes big-endian) that every IAM write bumps

A noncurrent version's CID is referenced in cid_refs by VERSION_REF_MARK + its versions-db key.

A part's CID is referenced in cid_refs by PART_REF_MARK + upload id + NUL + part number, so a part being
uploaded counts in the CID's refcount like an object does, and objects_by_cid skips it.

An object id is bucket UTF-8 + b"\\x00" + key UTF-8, so one bucket's keys are contiguous and in UTF-8
byte order (S3 listing order). LMDB keys are at most 511 bytes but an id may reach 1088 bytes, so an
id longer than DIRECT_MAX is stored in a *group*: the record keyed by its first DIRECT_MAX bytes plus
GROUP_MARK, whose value holds every long id with that head, sorted. No direct key is DIRECT_MAX + 1
bytes long, and a group key sorts exactly where its members do, so a cursor walk stays in id order.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DB_SPECS",
    "DIRECT_MAX",
    "GROUP_MARK",
    "LONG_REF_MARK",
    "PART_REF_MARK",
    "VERSION_REF_MARK",
    "SCHEMA_VERSION_KEY",
    "Dbs",
    "bucket_key",
    "bucket_prefix",
    "due_key",
    "is_group_key",
    "long_name_key",
    "part_key",
    "part_number_of",
    "part_ref",
    "upload_index_key",
    "version_key",
    "version_prefix",
    "version_ref",
    "object_id",
    "pack_time",
    "prefix_successor",
    "ref_value",
    "split_due_key",
    "split_object_id",
    "storage_key",
    "unpack_time",
]

LMDB_MAX_KEY = 511  # MDB_MAXKEYSIZE of the bundled liblmdb; checked when the store opens
DIRECT_MAX = LMDB_MAX_KEY - 1
GROUP_MARK = b"\x01"
LONG_REF_MARK = b"\xff"  # never the first byte of an object id (bucket names are ASCII)
PART_REF_MARK = b"\xfe"  # a cid_refs value naming a multipart part, not an object
VERSION_REF_MARK = b"\xfd"  # a cid_refs value naming a noncurrent object version
SCHEMA_VERSION_KEY = b"schema_version"

# (name, dupsort) for every named database, opened once when the store opens.
DB_SPECS: tuple[tuple[bytes, bool], ...] = (
    (b"meta", False),
    (b"buckets", False),
    (b"objects", False),
    (b"long_names", False),
    (b"cid_refs", True),
    (b"unpins", False),
    (b"unpin_due", False),
    (b"unpinned", False),
    (b"unpinned_expiry", False),
    (b"uploads", False),
    (b"upload_index", False),
    (b"parts", False),
    (b"bucket_configs", False),
    (b"versions", False),
    (b"pin_jobs", False),
    (b"pin_due", False),
    (b"pin_status", False),
    (b"access_stats", False),
    (b"damaged_blocks", False),
    (b"scrub", False),
    (b"completed_uploads", False),
    (b"completed_due", False),
    (b"iam", False),
    (b"iam_usage", False),
)

_TIME = struct.Struct(">Q")
_DOUBLE = struct.Struct(">d")
_SIGN = 1 << 63
_ALL = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Dbs:
    """The opened named-database handles (lmdb._Database); see the module docstring."""

    meta: Any
    buckets: Any
    objects: Any
    long_names: Any
    cid_refs: Any
    unpins: Any
    unpin_due: Any
    unpinned: Any
    unpinned_expiry: Any
    uploads: Any
    upload_index: Any
    parts: Any
    bucket_configs: Any
    versions: Any
    pin_jobs: Any
    pin_due: Any
    pin_status: Any
    access_stats: Any
    damaged_blocks: Any
    scrub: Any
    completed_uploads: Any
    completed_due: Any
    iam: Any
    iam_usage: Any


def bucket_key(bucket: str) -> bytes:
    """The buckets-db key of `bucket`."""
    return bucket.encode("utf-8")


def bucket_prefix(bucket: str) -> bytes:
    """The common head of every object id in `bucket`."""
    return bucket.encode("utf-8") + b"\x00"


def object_id(bucket: str, key: str) -> bytes:
    """bucket UTF-8 + NUL + key UTF-8."""
    return bucket.encode("utf-8") + b"\x00" + key.encode("utf-8")


def split_object_id(oid: bytes) -> tuple[str, str]:
    """(bucket, key) of an object id (bucket names hold no NUL; keys may)."""
    bucket, _, key = oid.partition(b"\x00")
    return bucket.decode("utf-8"), key.decode("utf-8")


def storage_key(oid: bytes) -> bytes:
    """The objects-db key holding `oid`: the id itself, or its group's key when it is too long.

    Also the right set_range() target for any lower bound: it lands on the group that may hold ids >= the
    bound, or on the first direct key after it."""
    if len(oid) <= DIRECT_MAX:
        return oid
    return oid[:DIRECT_MAX] + GROUP_MARK


def is_group_key(skey: bytes) -> bool:
    """Whether an objects-db key is a long-id group."""
    return len(skey) == DIRECT_MAX + 1


def long_name_key(oid: bytes) -> bytes:
    """The long_names key of an id too long to be a dupsort value."""
    return hashlib.sha256(oid).digest()


def ref_value(oid: bytes) -> bytes:
    """The cid_refs value naming `oid`: the id, or a hash of it when it exceeds LMDB's value limit."""
    if len(oid) <= LMDB_MAX_KEY:
        return oid
    return LONG_REF_MARK + long_name_key(oid)


def prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix` (None: no such string)."""
    head = prefix.rstrip(b"\xff")
    if not head:
        return None
    return head[:-1] + bytes((head[-1] + 1,))


def pack_time(when: float) -> bytes:
    """8 bytes whose byte order is the numeric order of `when` (negative values included)."""
    if math.isnan(when):  # NaN has no place in an ordered index
        raise ValueError("time must not be NaN")
    (bits,) = _TIME.unpack(_DOUBLE.pack(when))
    bits = bits ^ _ALL if bits & _SIGN else bits | _SIGN
    return _TIME.pack(bits)


def unpack_time(packed: bytes) -> float:
    """The inverse of pack_time."""
    (bits,) = _TIME.unpack(packed)
    bits = bits ^ _SIGN if bits & _SIGN else bits ^ _ALL
    (when,) = _DOUBLE.unpack(_TIME.pack(bits))
    return float(when)


def due_key(when: float, cid: str) -> bytes:
    """An index key ordered by time, then CID."""
    return pack_time(when) + cid.encode("utf-8")


def split_due_key(key: bytes) -> tuple[float, str]:
    """(time, cid) of a due_key."""
    return unpack_time(key[:8]), key[8:].decode("utf-8")


_PART = struct.Struct(">I")


def part_key(upload_id: str, part_number: int) -> bytes:
    """The parts-db key of one part (a cursor over upload id + NUL walks the parts in number order)."""
    return upload_id.encode("ascii") + b"\x00" + _PART.pack(part_number)


def part_number_of(key: bytes) -> int:
    return int(_PART.unpack(key[-4:])[0])


def part_ref(upload_id: str, part_number: int) -> bytes:
    """The cid_refs value naming a part."""
    return PART_REF_MARK + upload_id.encode("ascii") + b"\x00" + str(part_number).encode("ascii")


def upload_index_key(bucket: str, upload_id: str) -> bytes:
    return bucket.encode("utf-8") + b"\x00" + upload_id.encode("ascii")


VERSION_HEAD_MAX = 470  # object-id bytes kept in a versions-db key; longer ids are told apart by their hash
_VERSION_TIME = struct.Struct(">QI")


def version_prefix(oid: bytes) -> bytes:
    """The head of every versions-db key of one object id (ids order as the objects db does, except that ids
    longer than VERSION_HEAD_MAX bytes sharing that head order by hash)."""
    return oid[:VERSION_HEAD_MAX] + b"\x00" + hashlib.sha256(oid).digest()[:8]


def version_key(oid: bytes, micros: int, rand: int) -> bytes:
    """Newest first within an object id."""
    return version_prefix(oid) + _VERSION_TIME.pack(_ALL - micros, rand)


def version_ref(vkey: bytes) -> bytes:
    return VERSION_REF_MARK + vkey
