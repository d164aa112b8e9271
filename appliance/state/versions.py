"""Object versions in the metadata store, transaction-level helpers only.

The current version of a key stays in the `objects` database (so listings are unchanged); noncurrent versions and
delete markers live in `versions`, newest first per key. A bucket's versioning state is its "versioning" config
document: absent (never enabled: rows carry version_id ""), "Enabled" or "Suspended".
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from appliance.model import ObjectMeta, parse_version_id
from appliance.state import codec, keys

__all__ = [
    "ENABLED",
    "SUSPENDED",
    "bucket_versioning",
    "find_version",
    "iter_versions",
    "new_version_id",
    "version_key_of",
]

ENABLED = "Enabled"
SUSPENDED = "Suspended"
VERSIONING_CONFIG = b"versioning"


def bucket_versioning(txn: Any, dbs: keys.Dbs, bucket: str) -> str:
    """ "" (never enabled), "Enabled" or "Suspended"."""
    raw = txn.get(keys.bucket_prefix(bucket) + VERSIONING_CONFIG, db=dbs.bucket_configs)
    if raw is None:
        return ""
    text = bytes(raw).decode("utf-8").strip('"')
    return text if text in (ENABLED, SUSPENDED) else ""


def new_version_id(now: float) -> str:
    """Time-ordered and unique: 16 hex digits of microseconds, 8 random hex digits."""
    return f"{int(now * 1_000_000):016x}{secrets.randbits(32):08x}"


def version_key_of(oid: bytes, meta: ObjectMeta) -> bytes:
    """The versions-db key for `meta` (the "null" version sorts by its time)."""
    parsed = parse_version_id(meta.version_id)
    if parsed is None:
        return keys.version_key(oid, int(meta.last_modified * 1_000_000), 0)
    return keys.version_key(oid, *parsed)


def iter_versions(txn: Any, dbs: keys.Dbs, oid: bytes) -> Iterator[tuple[bytes, ObjectMeta]]:
    """(versions-db key, version) of one key, newest first."""
    head = keys.version_prefix(oid)
    cursor = txn.cursor(db=dbs.versions)
    if not cursor.set_range(head):
        return
    bucket, key = keys.split_object_id(oid)
    for vkey, raw in cursor.iternext():
        if not vkey.startswith(head):
            return
        meta = codec.decode_version(raw)
        if (meta.bucket, meta.key) == (bucket, key):  # ids longer than the head may share a prefix
            yield vkey, meta


def find_version(txn: Any, dbs: keys.Dbs, oid: bytes, version_id: str) -> tuple[bytes, ObjectMeta] | None:
    """The noncurrent version or delete marker `version_id` of a key, or None."""
    parsed = parse_version_id(version_id)
    if parsed is not None:
        vkey = keys.version_key(oid, *parsed)
        raw = txn.get(vkey, db=dbs.versions)
        return None if raw is None else (vkey, codec.decode_version(raw))
    for vkey, meta in iter_versions(txn, dbs, oid):
        if meta.shown_version == version_id:
            return vkey, meta
    return None
