"""Multipart uploads in the metadata store: the rows and their index, transaction-level helpers only.

LmdbMetadataStore wraps each call in one transaction; the CID references of parts live in cid_refs
(keys.PART_REF_MARK), so the store's own reference helpers keep refcounts and the unpin queue right.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from appliance.model import PartMeta, UploadMeta
from appliance.state import codec, keys

__all__ = ["delete_upload_rows", "iter_parts", "load_upload", "store_upload", "upload_ids_of_bucket"]


def load_upload(txn: Any, dbs: keys.Dbs, upload_id: str) -> UploadMeta | None:
    if not upload_id.isascii() or not upload_id or len(upload_id) > 128:
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
