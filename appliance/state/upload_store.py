"""Multipart uploads in the metadata store: uploads, their parts (whose CIDs count as references) and the commit of
a completed upload."""

from __future__ import annotations

from appliance.errors import NoSuchBucket, NoSuchUpload
from appliance.model import CompletedUpload, ObjectMeta, PartMeta, PutOutcome, UploadMeta, WriteCondition, validate_key
from appliance.state import codec, keys, uploads
from appliance.state.store_base import StoreBase
from appliance.state.store_base import guarded as _guarded

__all__ = ["UploadMethods"]


class UploadMethods(StoreBase):
    """The multipart methods of LmdbMetadataStore."""

    @_guarded
    def create_upload(self, upload: UploadMeta) -> None:
        validate_key(upload.key)
        with self._env.begin(write=True) as txn:
            if txn.get(keys.bucket_key(upload.bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {upload.bucket[:80]}")
            uploads.store_upload(txn, self._dbs, upload)

    @_guarded
    def get_upload(self, upload_id: str) -> UploadMeta | None:
        with self._env.begin() as txn:
            return uploads.load_upload(txn, self._dbs, upload_id)

    @_guarded
    def put_part(self, upload_id: str, part: PartMeta, *, unpin_grace: float, now: float) -> bool:
        """Record a part (replacing one with the same number); True if its CID must be re-pinned (an unpin of
        it was in flight). NoSuchUpload if the upload is gone (completed or aborted meanwhile)."""
        with self._env.begin(write=True) as txn:
            if uploads.load_upload(txn, self._dbs, upload_id) is None:
                raise NoSuchUpload()
            key = keys.part_key(upload_id, part.part_number)
            ref = keys.part_ref(upload_id, part.part_number)
            old = txn.get(key, db=self._dbs.parts)
            if old is not None:
                previous = codec.decode_part(part.part_number, old)
                self._drop_ref_value(txn, previous.cid, ref, due=now + unpin_grace, now=now)
            txn.put(key, codec.encode_part(part), db=self._dbs.parts)
            txn.put(part.cid.encode("utf-8"), ref, db=self._dbs.cid_refs)
            repin = self._take_unpin(txn, part.cid)
            return codec.take_unpinned(txn, self._dbs, part.cid) or repin

    @_guarded
    def list_parts(self, upload_id: str, *, after: int = 0, limit: int = 10_000) -> list[PartMeta]:
        with self._env.begin() as txn:
            if uploads.load_upload(txn, self._dbs, upload_id) is None:
                raise NoSuchUpload()
            found: list[PartMeta] = []
            for part in uploads.iter_parts(txn, self._dbs, upload_id, after):
                if len(found) == limit:
                    break
                found.append(part)
            return found

    @_guarded
    def list_uploads(self, bucket: str) -> list[UploadMeta]:
        """Every upload in progress in `bucket` (unordered; the caller sorts and pages)."""
        with self._env.begin() as txn:
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            found = []
            for upload_id in uploads.upload_ids_of_bucket(txn, self._dbs, bucket):
                upload = uploads.load_upload(txn, self._dbs, upload_id)
                if upload is not None:
                    found.append(upload)
            return found

    @_guarded
    def uploads_initiated_before(self, cutoff: float, limit: int = 100) -> list[UploadMeta]:
        """Uploads older than `cutoff` (abandoned ones, for the cleanup job)."""
        with self._env.begin() as txn:
            found = []
            for upload_id, raw in txn.cursor(db=self._dbs.uploads).iternext():
                upload = codec.decode_upload(upload_id.decode("ascii"), raw)
                if upload.initiated < cutoff:
                    found.append(upload)
                    if len(found) == limit:
                        break
            return found

    @_guarded
    def complete_upload(
        self,
        upload_id: str,
        meta: ObjectMeta,
        *,
        unpin_grace: float,
        now: float,
        condition: WriteCondition | None = None,
        checksum_type: str = "",
        requested: tuple[tuple[int, str], ...] = (),
    ) -> PutOutcome:
        """In one transaction: the object row (referencing the composed root CID) replaces any previous object, the
        upload and its parts go, part CIDs nothing else references are queued for unpin, and a record of the
        completion (`requested`: the (number, ETag) list completed) answers retries until it expires.
        ConditionalRequestConflict (nothing written) if `condition` no longer holds."""
        with self._env.begin(write=True) as txn:
            upload = uploads.load_upload(txn, self._dbs, upload_id)
            if upload is None or (upload.bucket, upload.key) != (meta.bucket, meta.key):
                raise NoSuchUpload()
            if txn.get(keys.bucket_key(meta.bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {meta.bucket[:80]}")
            self._check_condition(txn, meta, condition)
            outcome = self._write_current(txn, meta, unpin_grace=unpin_grace, now=now)
            for part in uploads.delete_upload_rows(txn, self._dbs, upload):
                self._drop_ref_value(
                    txn, part.cid, keys.part_ref(upload_id, part.part_number), due=now + unpin_grace, now=now
                )
            done = CompletedUpload(upload_id, outcome.current or meta, checksum_type, requested, now)
            uploads.store_completed(txn, self._dbs, done)
            return outcome

    @_guarded
    def get_completed_upload(self, upload_id: str) -> CompletedUpload | None:
        """The record of a completed upload (until expire_completed_uploads drops it), or None."""
        with self._env.begin() as txn:
            return uploads.load_completed(txn, self._dbs, upload_id)

    @_guarded
    def expire_completed_uploads(self, cutoff: float, limit: int = 1000) -> int:
        """Forget up to `limit` completed-upload records older than `cutoff`; how many went."""
        with self._env.begin(write=True) as txn:
            return uploads.expire_completed(txn, self._dbs, cutoff, limit)

    @_guarded
    def abort_upload(self, upload_id: str, *, unpin_grace: float, now: float) -> UploadMeta:
        with self._env.begin(write=True) as txn:
            upload = uploads.load_upload(txn, self._dbs, upload_id)
            if upload is None:
                raise NoSuchUpload()
            for part in uploads.delete_upload_rows(txn, self._dbs, upload):
                self._drop_ref_value(
                    txn, part.cid, keys.part_ref(upload_id, part.part_number), due=now + unpin_grace, now=now
                )
            return upload
