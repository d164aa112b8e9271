"""Object versions in the metadata store, transaction-level helpers only.

The current version of a key stays in the `objects` database (so listings are unchanged); noncurrent versions and
delete markers live in `versions`, newest first per key. A bucket's versioning state is its "versioning" config
document: absent (never enabled: rows carry version_id ""), "Enabled" or "Suspended".
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections.abc import Iterator
from typing import Any

from appliance.model import ObjectMeta, VersionPage, parse_version_id
from appliance.state import codec, keys

__all__ = [
    "ENABLED",
    "SUSPENDED",
    "bucket_versioning",
    "find_version",
    "iter_versions",
    "list_page",
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


def list_page(
    txn: Any,
    dbs: keys.Dbs,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    version_id_marker: str,
    max_keys: int,
) -> VersionPage:
    """One ListObjectVersions page: every version (current first, then newest to oldest) and delete marker of each
    key, keys in listing order, CommonPrefixes for a delimiter."""
    head = keys.bucket_prefix(bucket)
    wanted = head + prefix.encode("utf-8")
    delim = delimiter.encode("utf-8")
    entries: list[tuple[ObjectMeta, bool]] = []
    prefixes: list[str] = []
    truncated = False
    next_key = next_version = ""
    for oid in _version_oids(txn, dbs, wanted):
        key = oid[len(head) :].decode("utf-8")
        cut = oid.find(delim, len(wanted)) if delim else -1
        if cut >= 0:
            common = oid[: cut + len(delim)][len(head) :].decode("utf-8")
            if (prefixes and prefixes[-1] == common) or (key_marker and common <= key_marker):
                continue
            if len(entries) + len(prefixes) == max_keys:
                truncated = True
                break
            prefixes.append(common)
            next_key, next_version = common, ""
            continue
        if key_marker and key < key_marker:
            continue
        rows = _all_versions(txn, dbs, oid)
        if key_marker and key == key_marker:
            if not version_id_marker:
                continue
            ids = [meta.shown_version for meta, _ in rows]
            rows = rows[ids.index(version_id_marker) + 1 :] if version_id_marker in ids else []
        for meta, latest in rows:
            if len(entries) + len(prefixes) == max_keys:
                truncated = True
                break
            entries.append((meta, latest))
            next_key, next_version = key, meta.shown_version
        if truncated:
            break
    if not truncated:
        next_key = next_version = ""
    return VersionPage(tuple(entries), tuple(prefixes), truncated, next_key, next_version)


def _all_versions(txn: Any, dbs: keys.Dbs, oid: bytes) -> list[tuple[ObjectMeta, bool]]:
    rows: list[tuple[ObjectMeta, bool]] = []
    current = codec.load_object(txn, dbs.objects, oid)
    if current is not None:
        rows.append((current, True))
    for _, meta in iter_versions(txn, dbs, oid):
        rows.append((meta, not rows))
    return rows


def _version_oids(txn: Any, dbs: keys.Dbs, wanted: bytes) -> Iterator[bytes]:
    """Every object id under `wanted` that has a current or a noncurrent version, in id order."""
    current = itertools.takewhile(
        lambda oid: oid.startswith(wanted),
        (oid for oid, _ in codec.scan_objects(txn.cursor(db=dbs.objects), wanted)),
    )
    head = wanted[: keys.VERSION_HEAD_MAX]

    def older() -> Iterator[bytes]:
        cursor = txn.cursor(db=dbs.versions)
        if not cursor.set_range(head):
            return
        for vkey, raw in cursor.iternext():
            if not vkey.startswith(head):
                return
            meta = codec.decode_version(raw)
            oid = keys.object_id(meta.bucket, meta.key)
            if oid.startswith(wanted):
                yield oid

    last = None
    for oid in heapq.merge(current, older()):
        if oid != last:
            last = oid
            yield oid
