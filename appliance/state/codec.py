"""Row encodings of the metadata store, and how object rows map onto records of the objects database.

An object row is [cid, size, etag, last_modified, content_type, user_meta, headers, checksums, owner];
bucket and key live in the LMDB key, or, inside a long-id group (keys.py), as [key, row] pairs. JSON
keeps floats exact (repr round-trips) and the store readable with mdb_dump; pairs come back as tuples.
Unpin jobs and timestamps are fixed-size structs.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from appliance.errors import BackendError
from appliance.model import BucketMeta, CompletedUpload, ObjectMeta, PartMeta, UploadMeta
from appliance.state import keys

__all__ = [
    "GroupMember",
    "UnpinJob",
    "decode_bucket",
    "decode_completed",
    "decode_group",
    "decode_job",
    "decode_object",
    "decode_part",
    "decode_upload",
    "decode_version",
    "decode_time",
    "encode_bucket",
    "encode_completed",
    "encode_group",
    "encode_job",
    "encode_object",
    "encode_part",
    "encode_upload",
    "encode_version",
    "encode_time",
    "get_job",
    "remember_unpinned",
    "remove_job",
    "set_job",
    "take_unpinned",
    "load_object",
    "object_from_row",
    "object_to_row",
    "remove_object",
    "row_object",
    "scan_objects",
    "store_object",
]

GroupMember = tuple[str, list[Any]]  # (key, object row)
Row = bytes | list[Any]  # a direct record's value, or a decoded row from a long-id group

_JOB = struct.Struct(">cd")
_TIME = struct.Struct(">d")
_STATES: dict[bytes, Literal["queued", "inflight"]] = {b"q": "queued", b"i": "inflight"}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    # Hot in listings: JSON already gives str pairs, so only the shape is restored.
    return tuple(map(tuple, value)) if value else ()


def encode_bucket(bucket: BucketMeta) -> bytes:
    """The buckets-db value of `bucket`."""
    return _dumps([bucket.created, bucket.region, bucket.owner])


def decode_bucket(name: str, raw: bytes) -> BucketMeta:
    """The bucket stored under `name`."""
    try:
        created, region, owner = json.loads(raw)
        return BucketMeta(name=name, created=float(created), region=str(region), owner=str(owner))
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt bucket row for {name!r} in the metadata store: {exc}") from exc


def object_to_row(meta: ObjectMeta) -> list[Any]:
    """The JSON-ready row of `meta` (without bucket and key)."""
    return [
        meta.cid,
        meta.size,
        meta.etag,
        meta.last_modified,
        meta.content_type,
        meta.user_meta,
        meta.headers,
        meta.checksums,
        meta.owner,
        *([_extras(meta)] if meta.parts or meta.tags or meta.version_id or meta.delete_marker or meta.acl else []),
    ]


def _extras(meta: ObjectMeta) -> dict[str, Any]:
    """Optional fields, present only when set (rows of plain objects stay as short as before)."""
    extras: dict[str, Any] = {}
    if meta.parts:
        extras["p"] = list(meta.parts)
        if any(meta.part_checksums):
            extras["pc"] = meta.part_checksums
        if meta.part_numbers:
            extras["pn"] = list(meta.part_numbers)
    if meta.tags:
        extras["t"] = meta.tags
    if meta.version_id:
        extras["v"] = meta.version_id
    if meta.delete_marker:
        extras["d"] = 1
    if meta.acl:
        extras["acl"] = meta.acl
    return extras


def object_from_row(bucket: str, key: str, row: list[Any]) -> ObjectMeta:
    """The object described by a decoded row."""
    try:
        cid, size, etag, last_modified, content_type, user_meta, headers, checksums, owner, *rest = row
        if len(rest) > 1:
            raise ValueError(f"{len(row)} fields")
        extras = rest[0] if rest else {}
        if isinstance(extras, list):  # an early schema-2 row: the part sizes alone
            extras = {"p": extras}
        return ObjectMeta(
            bucket=bucket,
            key=key,
            cid=cid,
            size=size,
            etag=etag,
            last_modified=float(last_modified),
            content_type=content_type,
            user_meta=_pairs(user_meta),
            headers=_pairs(headers),
            checksums=_pairs(checksums),
            owner=owner,
            parts=tuple(extras.get("p", ())),
            tags=_pairs(extras.get("t")),
            version_id=str(extras.get("v", "")),
            delete_marker=bool(extras.get("d", 0)),
            part_checksums=tuple(_pairs(sums) for sums in extras.get("pc", ())),
            part_numbers=tuple(int(n) for n in extras.get("pn", ())),
            acl=str(extras.get("acl", "")),
        )
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt object row for {bucket}/{key[:200]} in the metadata store: {exc}") from exc


def encode_object(meta: ObjectMeta) -> bytes:
    """The objects-db value of a directly stored object."""
    return _dumps(object_to_row(meta))


def decode_object(bucket: str, key: str, raw: bytes) -> ObjectMeta:
    """A directly stored object."""
    try:
        row = json.loads(raw)
    except ValueError as exc:
        raise BackendError(f"corrupt object row for {bucket}/{key[:200]} in the metadata store: {exc}") from exc
    return object_from_row(bucket, key, row)


def encode_group(members: list[GroupMember]) -> bytes:
    """The value of a long-id group; `members` must be sorted by key bytes."""
    return _dumps(members)


def decode_group(raw: bytes) -> list[GroupMember]:
    """The members of a long-id group, sorted by key bytes."""
    try:
        members = json.loads(raw)
        return [(str(key), list(row)) for key, row in members]
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt long-key group in the metadata store: {exc}") from exc


@dataclass(frozen=True, slots=True)
class UnpinJob:
    """A queued unpin (due: when to run it) or one in flight (due: when its lease expires)."""

    state: Literal["queued", "inflight"]
    due: float


def encode_job(job: UnpinJob) -> bytes:
    """The unpins-db value of `job`."""
    return _JOB.pack(b"q" if job.state == "queued" else b"i", job.due)


def decode_job(raw: bytes) -> UnpinJob:
    """An unpin job."""
    try:
        state, due = _JOB.unpack(raw)
        return UnpinJob(_STATES[state], due)
    except (struct.error, KeyError) as exc:
        raise BackendError(f"corrupt unpin job in the metadata store: {exc}") from exc


def encode_time(when: float) -> bytes:
    """A timestamp value."""
    return _TIME.pack(when)


def decode_time(raw: bytes) -> float:
    """A timestamp value."""
    (when,) = _TIME.unpack(raw)
    return float(when)


def row_object(bucket: str, key: str, row: Row) -> ObjectMeta:
    """The object of a row as scan_objects yields it."""
    return decode_object(bucket, key, row) if isinstance(row, bytes) else object_from_row(bucket, key, row)


def _sorted(members: list[GroupMember]) -> list[GroupMember]:
    return sorted(members, key=lambda member: member[0].encode("utf-8"))


def load_object(txn: Any, db: Any, oid: bytes) -> ObjectMeta | None:
    """The object stored under object id `oid` in the objects database `db`, or None."""
    skey = keys.storage_key(oid)
    raw = txn.get(skey, db=db)
    if raw is None:
        return None
    bucket, key = keys.split_object_id(oid)
    if not keys.is_group_key(skey):
        return decode_object(bucket, key, raw)
    for member, row in decode_group(raw):
        if member == key:
            return object_from_row(bucket, key, row)
    return None


def store_object(txn: Any, db: Any, oid: bytes, meta: ObjectMeta) -> ObjectMeta | None:
    """Insert or replace the row of `meta` (whose id is `oid`); return the row it replaced."""
    skey = keys.storage_key(oid)
    if not keys.is_group_key(skey):
        old = txn.replace(skey, encode_object(meta), db=db)
        return None if old is None else decode_object(meta.bucket, meta.key, old)
    previous = load_object(txn, db, oid)
    raw = txn.get(skey, db=db)
    members = [m for m in ([] if raw is None else decode_group(raw)) if m[0] != meta.key]
    members.append((meta.key, object_to_row(meta)))
    txn.put(skey, encode_group(_sorted(members)), db=db)
    return previous


def remove_object(txn: Any, db: Any, oid: bytes) -> ObjectMeta | None:
    """Remove the row of `oid`; return it (None if there was none)."""
    previous = load_object(txn, db, oid)
    if previous is None:
        return None
    skey = keys.storage_key(oid)
    if not keys.is_group_key(skey):
        txn.delete(skey, db=db)
        return previous
    members = [m for m in decode_group(txn.get(skey, db=db)) if m[0] != previous.key]
    if members:
        txn.put(skey, encode_group(members), db=db)
    else:
        txn.delete(skey, db=db)
    return previous


def scan_objects(cursor: Any, low: bytes) -> Iterator[tuple[bytes, Row]]:
    """(object id, row) of every object id >= `low`, in id order, expanding long-id groups in place."""
    if not cursor.set_range(keys.storage_key(low)):
        return
    for skey, raw in cursor.iternext():
        if not keys.is_group_key(skey):
            yield skey, raw
            continue
        head = skey[: skey.index(b"\x00") + 1]
        for key, row in decode_group(raw):
            oid = head + key.encode("utf-8")
            if oid >= low:
                yield oid, row


def get_job(txn: Any, dbs: keys.Dbs, cid: str) -> UnpinJob | None:
    """The unpin job of `cid`, or None."""
    raw = txn.get(cid.encode("utf-8"), db=dbs.unpins)
    return None if raw is None else decode_job(raw)


def set_job(txn: Any, dbs: keys.Dbs, cid: str, job: UnpinJob) -> None:
    """Create or replace the unpin job of `cid`, keeping the due-time index in step."""
    remove_job(txn, dbs, cid)
    txn.put(cid.encode("utf-8"), encode_job(job), db=dbs.unpins)
    txn.put(keys.due_key(job.due, cid), b"", db=dbs.unpin_due)


def remove_job(txn: Any, dbs: keys.Dbs, cid: str) -> UnpinJob | None:
    """Delete the unpin job of `cid` and its index entry; return it (None if there was none)."""
    raw = txn.pop(cid.encode("utf-8"), db=dbs.unpins)
    if raw is None:
        return None
    job = decode_job(raw)
    txn.delete(keys.due_key(job.due, cid), db=dbs.unpin_due)
    return job


def remember_unpinned(txn: Any, dbs: keys.Dbs, cid: str, expiry: float) -> None:
    """Record that `cid` was unpinned, until `expiry`."""
    take_unpinned(txn, dbs, cid)
    txn.put(cid.encode("utf-8"), encode_time(expiry), db=dbs.unpinned)
    txn.put(keys.due_key(expiry, cid), b"", db=dbs.unpinned_expiry)


def take_unpinned(txn: Any, dbs: keys.Dbs, cid: str) -> bool:
    """Forget that `cid` was unpinned; True if it had been."""
    raw = txn.pop(cid.encode("utf-8"), db=dbs.unpinned)
    if raw is None:
        return False
    txn.delete(keys.due_key(decode_time(raw), cid), db=dbs.unpinned_expiry)
    return True


def encode_upload(upload: UploadMeta) -> bytes:
    """The uploads-db value of a multipart upload (the key is its id)."""
    return _dumps(
        [
            upload.bucket,
            upload.key,
            upload.initiated,
            upload.content_type,
            upload.user_meta,
            upload.headers,
            upload.owner,
            upload.checksum_algorithm,
            upload.tags,
            upload.checksum_type,
        ]
    )


def decode_upload(upload_id: str, raw: bytes) -> UploadMeta:
    try:
        bucket, key, initiated, content_type, user_meta, headers, owner, algorithm, *rest = json.loads(raw)
        return UploadMeta(
            upload_id=upload_id,
            bucket=bucket,
            key=key,
            initiated=float(initiated),
            content_type=content_type,
            user_meta=_pairs(user_meta),
            headers=_pairs(headers),
            owner=owner,
            checksum_algorithm=algorithm,
            tags=_pairs(rest[0]) if rest else (),
            checksum_type=str(rest[1]) if len(rest) > 1 else "",
        )
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt upload row {upload_id!r} in the metadata store: {exc}") from exc


def encode_part(part: PartMeta) -> bytes:
    return _dumps([part.cid, part.size, part.etag, part.last_modified, part.checksums])


def decode_part(part_number: int, raw: bytes) -> PartMeta:
    try:
        cid, size, etag, last_modified, checksums = json.loads(raw)
        return PartMeta(part_number, cid, int(size), etag, float(last_modified), _pairs(checksums))
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt part row {part_number} in the metadata store: {exc}") from exc


def encode_version(meta: ObjectMeta) -> bytes:
    """A versions-db value: bucket and key, then the object row (delete markers included)."""
    return _dumps([meta.bucket, meta.key, object_to_row(meta)])


def decode_version(raw: bytes) -> ObjectMeta:
    try:
        bucket, key, row = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt version row in the metadata store: {exc}") from exc
    return object_from_row(str(bucket), str(key), row)


def encode_completed(done: CompletedUpload) -> bytes:
    """A completed_uploads value: [completed, checksum type, [[number, etag], ...], bucket, key, object row]."""
    meta = done.meta
    return _dumps([done.completed, done.checksum_type, done.parts, meta.bucket, meta.key, object_to_row(meta)])


def decode_completed(upload_id: str, raw: bytes) -> CompletedUpload:
    try:
        completed, checksum_type, parts, bucket, key, row = json.loads(raw)
        return CompletedUpload(
            upload_id=upload_id,
            meta=object_from_row(str(bucket), str(key), row),
            checksum_type=str(checksum_type),
            parts=tuple((int(number), str(etag)) for number, etag in parts),
            completed=float(completed),
        )
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt completed-upload row {upload_id!r} in the metadata store: {exc}") from exc
