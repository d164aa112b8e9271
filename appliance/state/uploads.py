"""Multipart uploads in the metadata store: the rows and their index, transaction-level helpers only.

LmdbMetadataStore wraps each call in one transaction; the CID references of parts live in cid_refs
(keys.PART_REF_MARK), so the store's own reference helpers keep refcounts and the unpin queue right.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from appliance.model import CompletedUpload, PartMeta, UploadMeta
from appliance.state import codec, keys

__all__ = [
    "delete_upload_rows",
    "expire_completed",
    "iter_parts",
    "load_completed",
    "load_upload",
    "store_completed",
    "store_upload",
    "upload_ids_of_bucket",
]


def load_upload(txn: Any, dbs: keys.Dbs, upload_id: str) -> UploadMeta | None:
    if not _valid_id(upload_id):
        return None
    raw = txn.get(upload_id.encode("ascii"), db=dbs.uploads)
    return None if raw is None else codec.decode_upload(upload_id, raw)


def store_upload(txn: Any, dbs: keys.Dbs, upload: UploadMeta) -> None:
    txn.put(upload.upload_id.encode("ascii"), codec.encode_upload(upload), db=dbs.uploads)
    txn.put(keys.upload_index_key(upload.bucket, upload.upload_id), b"", db=dbs.upload_index)


def iter_parts(txn: Any, dbs: keys.Dbs, upload_id: str, after: int = 0) -> Iterator[PartMeta]:
    """The upload's parts in number order, starting after part number `after`."""
    head = upload_id.encode("ascii") + b"\x00"
    cursor = txn.cursor(db=dbs.parts)
    if not cursor.set_range(keys.part_key(upload_id, after + 1)):
        return
    for key, raw in cursor.iternext():
        if not key.startswith(head):
            return
        yield codec.decode_part(keys.part_number_of(key), raw)


def delete_upload_rows(txn: Any, dbs: keys.Dbs, upload: UploadMeta) -> list[PartMeta]:
    """Remove the upload, its index entry and its part rows; return the parts (their refs are the caller's)."""
    parts = list(iter_parts(txn, dbs, upload.upload_id))
    for part in parts:
        txn.delete(keys.part_key(upload.upload_id, part.part_number), db=dbs.parts)
    txn.delete(upload.upload_id.encode("ascii"), db=dbs.uploads)
    txn.delete(keys.upload_index_key(upload.bucket, upload.upload_id), db=dbs.upload_index)
    return parts


def upload_ids_of_bucket(txn: Any, dbs: keys.Dbs, bucket: str) -> list[str]:
    head = keys.bucket_prefix(bucket)
    cursor = txn.cursor(db=dbs.upload_index)
    ids: list[str] = []
    if cursor.set_range(head):
        for key in cursor.iternext(values=False):
            if not key.startswith(head):
                break
            ids.append(key[len(head) :].decode("ascii"))
    return ids


def _valid_id(upload_id: str) -> bool:
    return upload_id.isascii() and 0 < len(upload_id) <= 128


def store_completed(txn: Any, dbs: keys.Dbs, done: CompletedUpload) -> None:
    """Record a completion (replacing an older record of the same id) with its expiry index entry."""
    old = load_completed(txn, dbs, done.upload_id)
    if old is not None:
        txn.delete(keys.due_key(old.completed, old.upload_id), db=dbs.completed_due)
    txn.put(done.upload_id.encode("ascii"), codec.encode_completed(done), db=dbs.completed_uploads)
    txn.put(keys.due_key(done.completed, done.upload_id), b"", db=dbs.completed_due)


def load_completed(txn: Any, dbs: keys.Dbs, upload_id: str) -> CompletedUpload | None:
    if not _valid_id(upload_id):
        return None
    raw = txn.get(upload_id.encode("ascii"), db=dbs.completed_uploads)
    return None if raw is None else codec.decode_completed(upload_id, raw)


def expire_completed(txn: Any, dbs: keys.Dbs, cutoff: float, limit: int) -> int:
    """Drop up to `limit` completion records made before `cutoff` (oldest first); how many went."""
    cursor = txn.cursor(db=dbs.completed_due)
    expired: list[bytes] = []
    for index_key in cursor.iternext(values=False):
        if keys.split_due_key(index_key)[0] >= cutoff or len(expired) == limit:
            break
        expired.append(index_key)
    for index_key in expired:
        txn.delete(index_key, db=dbs.completed_due)
        txn.delete(keys.split_due_key(index_key)[1].encode("ascii"), db=dbs.completed_uploads)
    return len(expired)
