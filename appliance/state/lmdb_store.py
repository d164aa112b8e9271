"""The metadata store on LMDB: buckets, objects, CID refcounts and the unpin queue in one environment.

Several processes (the S3 workers and the orchestrator) open the same directory; LMDB serialises their
write transactions. Every public method is one whole transaction run on the caller's thread, so callers
use asyncio.to_thread; no transaction or cursor outlives a call. Key layout: keys.py.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import lmdb

from appliance.errors import (
    BackendError,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    ConfigError,
    InvalidArgument,
    NoSuchBucket,
    NoSuchUpload,
)
from appliance.model import (
    BucketMeta,
    ListPage,
    ObjectMeta,
    PartMeta,
    PutOutcome,
    UploadMeta,
    VersionPage,
    validate_key,
)
from appliance.state import codec, keys, uploads, versions
from appliance.state.codec import UnpinJob
from appliance.state.migrations import CURRENT_VERSION, check_version, migrate, read_version

__all__ = ["DEFAULT_MAP_SIZE", "DEFAULT_UNPIN_LEASE", "DEFAULT_UNPINNED_TTL", "LmdbMetadataStore"]

DEFAULT_MAP_SIZE = 64 << 30
DEFAULT_UNPIN_LEASE = 600.0  # an in-flight unpin older than this is claimable again (its claimer died)
DEFAULT_UNPINNED_TTL = 86400.0  # how long a finished unpin is remembered (longer than any PUT takes)
_MAX_DBS = 32  # room for the databases later schema versions add
_PRUNE_BATCH = 1000

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(
    method: Callable[Concatenate[LmdbMetadataStore, _P], _R],
) -> Callable[Concatenate[LmdbMetadataStore, _P], _R]:
    """Check the store is usable here and translate LMDB failures into domain errors."""

    @functools.wraps(method)
    def guarded(self: LmdbMetadataStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if self._pid != os.getpid():
            raise BackendError("the metadata store was opened before a fork: open it in the process that uses it")
        try:
            return method(self, *args, **kwargs)
        except lmdb.MapFullError as exc:
            raise BackendError(
                f"metadata store is full ({self._map_size} bytes): raise metadata.map_size and restart"
            ) from exc
        except lmdb.ReadonlyError as exc:
            raise BackendError("the metadata store is open read-only: this operation writes") from exc
        except lmdb.Error as exc:
            raise BackendError(f"metadata store error: {exc}") from exc

    return guarded


class LmdbMetadataStore:
    """components.MetadataStore on an LMDB environment directory; open one per path per process.

    Beyond the Protocol: an unpin claimed more than `unpin_lease` seconds ago is claimable again (its
    claimer died), and put_object also answers repin_needed when an unpin of the CID *finished* within
    `unpinned_ttl` (the PUT's add may have pinned the content just before that unpin removed the pin).
    """

    def __init__(
        self,
        path: Path,
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        readonly: bool = False,
        unpin_lease: float = DEFAULT_UNPIN_LEASE,
        unpinned_ttl: float = DEFAULT_UNPINNED_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if unpin_lease <= 0:
            raise ConfigError("the unpin lease must be positive")
        self._path = Path(path)
        self._map_size = map_size
        self._lease = unpin_lease
        self._unpinned_ttl = unpinned_ttl
        self._clock = clock
        self._pid = os.getpid()
        try:
            if not readonly:
                self._path.mkdir(parents=True, exist_ok=True)
            self._env = lmdb.open(
                str(self._path),
                map_size=map_size,
                subdir=True,
                readonly=readonly,
                create=not readonly,
                lock=True,
                sync=True,
                metasync=True,
                max_dbs=_MAX_DBS,
                max_readers=1024,
            )
        except (lmdb.Error, OSError) as exc:
            raise ConfigError(
                f"cannot open the metadata store at {self._path}: {exc}; check metadata.path and its permissions"
            ) from exc
        try:
            if self._env.max_key_size() < keys.LMDB_MAX_KEY:
                raise ConfigError(f"liblmdb's key size limit is {self._env.max_key_size()}; s3ipfs needs 511")
            self._dbs = self._open_dbs(readonly)
        except BaseException:
            self._env.close()
            raise

    def _open_dbs(self, readonly: bool) -> keys.Dbs:
        where = str(self._path)
        try:
            if readonly:
                # py-lmdb keeps a handle opened in a read transaction only if open_db makes its own.
                dbs = keys.Dbs(*(self._env.open_db(name, create=False, dupsort=dup) for name, dup in keys.DB_SPECS))
                with self._env.begin() as txn:
                    found = read_version(txn, dbs)
                check_version(found, where)
                if found < CURRENT_VERSION:
                    raise ConfigError(f"the metadata store at {where} needs a migration: open it writable once")
                return dbs
            with self._env.begin(write=True) as txn:
                dbs = keys.Dbs(*(self._env.open_db(name, txn=txn, dupsort=dup) for name, dup in keys.DB_SPECS))
                migrate(txn, dbs, where)
            return dbs
        except lmdb.NotFoundError as exc:
            raise ConfigError(f"the metadata store at {where} is not initialised: start s3ipfs once") from exc
        except lmdb.Error as exc:
            raise ConfigError(f"cannot open the metadata store at {where}: {exc}") from exc

    # Buckets

    @_guarded
    def create_bucket(self, bucket: BucketMeta) -> None:
        with self._env.begin(write=True) as txn:
            if not txn.put(
                keys.bucket_key(bucket.name), codec.encode_bucket(bucket), db=self._dbs.buckets, overwrite=False
            ):
                raise BucketAlreadyOwnedByYou(f"You already own the bucket {bucket.name}.")

    @_guarded
    def get_bucket(self, name: str) -> BucketMeta | None:
        with self._env.begin() as txn:
            raw = txn.get(keys.bucket_key(name), db=self._dbs.buckets)
            return None if raw is None else codec.decode_bucket(name, raw)

    @_guarded
    def list_buckets(self) -> list[BucketMeta]:
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs.buckets)
            return [codec.decode_bucket(name.decode("utf-8"), raw) for name, raw in cursor.iternext()]

    @_guarded
    def delete_bucket(self, name: str) -> None:
        with self._env.begin(write=True) as txn:
            if txn.get(keys.bucket_key(name), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {name[:80]}")
            head = keys.bucket_prefix(name)
            cursor = txn.cursor(db=self._dbs.objects)
            if cursor.set_range(head) and cursor.key().startswith(head):
                raise BucketNotEmpty(f"The bucket you tried to delete is not empty: {name}")
            txn.delete(keys.bucket_key(name), db=self._dbs.buckets)
            configs = txn.cursor(db=self._dbs.bucket_configs)
            while configs.set_range(head) and configs.key().startswith(head):
                configs.delete()

    @_guarded
    def put_bucket_config(self, bucket: str, name: str, value: str) -> None:
        with self._env.begin(write=True) as txn:
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            txn.put(
                keys.bucket_prefix(bucket) + name.encode("ascii"), value.encode("utf-8"), db=self._dbs.bucket_configs
            )

    @_guarded
    def get_bucket_config(self, bucket: str, name: str) -> str | None:
        with self._env.begin() as txn:
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            raw = txn.get(keys.bucket_prefix(bucket) + name.encode("ascii"), db=self._dbs.bucket_configs)
            return None if raw is None else bytes(raw).decode("utf-8")

    @_guarded
    def delete_bucket_config(self, bucket: str, name: str) -> None:
        with self._env.begin(write=True) as txn:
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            txn.delete(keys.bucket_prefix(bucket) + name.encode("ascii"), db=self._dbs.bucket_configs)

    # Objects

    @_guarded
    def put_object(self, meta: ObjectMeta, *, unpin_grace: float, now: float) -> PutOutcome:
        validate_key(meta.key)
        with self._env.begin(write=True) as txn:
            if txn.get(keys.bucket_key(meta.bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {meta.bucket[:80]}")
            return self._write_current(txn, meta, unpin_grace=unpin_grace, now=now)

    def _write_current(self, txn: Any, meta: ObjectMeta, *, unpin_grace: float, now: float) -> PutOutcome:
        """Make `meta` the key's current version: in a versioned bucket the previous one becomes noncurrent
        (Enabled) or, if it is the "null" version, is replaced (Suspended)."""
        oid = keys.object_id(meta.bucket, meta.key)
        mode = versions.bucket_versioning(txn, self._dbs, meta.bucket)
        if mode == versions.ENABLED:
            meta = dataclasses.replace(meta, version_id=versions.new_version_id(now))
        elif mode == versions.SUSPENDED:
            meta = dataclasses.replace(meta, version_id="null")
            self._drop_null_versions(txn, oid, due=now + unpin_grace)
        else:
            meta = dataclasses.replace(meta, version_id="")
        current = codec.load_object(txn, self._dbs.objects, oid)
        if mode and current is not None and not (mode == versions.SUSPENDED and current.shown_version == "null"):
            self._archive(txn, oid, current)
        previous = codec.store_object(txn, self._dbs.objects, oid, meta)
        repin = False
        if previous is None or previous.cid != meta.cid:
            if previous is not None:
                self._drop_ref(txn, previous.cid, oid, due=now + unpin_grace)
            self._add_ref(txn, meta.cid, oid)
            repin = self._take_unpin(txn, meta.cid)
            # An unpin that finished while this PUT was streaming may have removed the pin `add` made.
            repin = codec.take_unpinned(txn, self._dbs, meta.cid) or repin
        return PutOutcome(previous=previous, repin_needed=repin, current=meta)

    def _archive(self, txn: Any, oid: bytes, meta: ObjectMeta) -> None:
        """Copy the current version into `versions` with its own CID reference (the caller then replaces or
        removes the current row, dropping its object reference without reaching refcount zero)."""
        archived = dataclasses.replace(meta, version_id=meta.shown_version)
        vkey = versions.version_key_of(oid, archived)
        txn.put(vkey, codec.encode_version(archived), db=self._dbs.versions)
        txn.put(archived.cid.encode("utf-8"), keys.version_ref(vkey), db=self._dbs.cid_refs)

    def _drop_version(self, txn: Any, vkey: bytes, meta: ObjectMeta, *, due: float) -> None:
        txn.delete(vkey, db=self._dbs.versions)
        if not meta.delete_marker:
            self._drop_ref_value(txn, meta.cid, keys.version_ref(vkey), due=due)

    def _drop_null_versions(self, txn: Any, oid: bytes, *, due: float) -> None:
        for vkey, meta in list(versions.iter_versions(txn, self._dbs, oid)):
            if meta.shown_version == "null":
                self._drop_version(txn, vkey, meta, due=due)

    @_guarded
    def get_object(self, bucket: str, key: str) -> ObjectMeta | None:
        with self._env.begin() as txn:
            return codec.load_object(txn, self._dbs.objects, keys.object_id(bucket, key))

    @_guarded
    def set_object_tags(
        self, bucket: str, key: str, tags: tuple[tuple[str, str], ...], version_id: str | None = None
    ) -> ObjectMeta | None:
        """Replace the tags of the object (of one version of it) in one transaction; None if there is none."""
        oid = keys.object_id(bucket, key)
        with self._env.begin(write=True) as txn:
            meta = codec.load_object(txn, self._dbs.objects, oid)
            if meta is not None and (version_id is None or meta.shown_version == version_id):
                updated = dataclasses.replace(meta, tags=tags)
                codec.store_object(txn, self._dbs.objects, oid, updated)
                return updated
            if version_id is None:
                return None
            found = versions.find_version(txn, self._dbs, oid, version_id)
            if found is None:
                return None
            vkey, old = found
            updated = dataclasses.replace(old, tags=tags)
            txn.put(vkey, codec.encode_version(updated), db=self._dbs.versions)
            return updated

    @_guarded
    def delete_object(self, bucket: str, key: str, *, unpin_grace: float, now: float) -> ObjectMeta | None:
        """Delete the current version. In a versioned bucket a delete marker becomes the current version and is
        returned (the removed version stays as noncurrent, unless it was the "null" one of a suspended bucket)."""
        oid = keys.object_id(bucket, key)
        due = now + unpin_grace
        with self._env.begin(write=True) as txn:
            mode = versions.bucket_versioning(txn, self._dbs, bucket)
            if not mode:
                previous = codec.remove_object(txn, self._dbs.objects, oid)
                if previous is not None:
                    self._drop_ref(txn, previous.cid, oid, due=due)
                return previous
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            current = codec.remove_object(txn, self._dbs.objects, oid)
            if current is not None:
                if not (mode == versions.SUSPENDED and current.shown_version == "null"):
                    self._archive(txn, oid, current)
                self._drop_ref(txn, current.cid, oid, due=due)
            if mode == versions.SUSPENDED:
                self._drop_null_versions(txn, oid, due=due)
            marker = ObjectMeta(
                bucket=bucket,
                key=key,
                cid="",
                size=0,
                etag="",
                last_modified=now,
                version_id=versions.new_version_id(now) if mode == versions.ENABLED else "null",
                delete_marker=True,
            )
            txn.put(versions.version_key_of(oid, marker), codec.encode_version(marker), db=self._dbs.versions)
            return marker

    @_guarded
    def get_version(self, bucket: str, key: str, version_id: str) -> ObjectMeta | None:
        """The version `version_id` of a key (current, noncurrent or a delete marker), or None."""
        oid = keys.object_id(bucket, key)
        with self._env.begin() as txn:
            current = codec.load_object(txn, self._dbs.objects, oid)
            if current is not None and current.shown_version == version_id:
                return current
            found = versions.find_version(txn, self._dbs, oid, version_id)
            return None if found is None else found[1]

    @_guarded
    def current_is_delete_marker(self, bucket: str, key: str) -> bool:
        """Whether the key's newest version is a delete marker (GET then says x-amz-delete-marker: true)."""
        oid = keys.object_id(bucket, key)
        with self._env.begin() as txn:
            if codec.load_object(txn, self._dbs.objects, oid) is not None:
                return False
            newest = next(versions.iter_versions(txn, self._dbs, oid), None)
            return newest is not None and newest[1].delete_marker

    @_guarded
    def delete_version(
        self, bucket: str, key: str, version_id: str, *, unpin_grace: float, now: float
    ) -> ObjectMeta | None:
        """Remove one version for good (None if there is no such version). If it was the current one, the newest
        noncurrent version, unless it is a delete marker, becomes current again."""
        oid = keys.object_id(bucket, key)
        due = now + unpin_grace
        with self._env.begin(write=True) as txn:
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            current = codec.load_object(txn, self._dbs.objects, oid)
            if current is not None and current.shown_version == version_id:
                codec.remove_object(txn, self._dbs.objects, oid)
                self._drop_ref(txn, current.cid, oid, due=due)
                removed = current
            else:
                found = versions.find_version(txn, self._dbs, oid, version_id)
                if found is None:
                    return None
                vkey, removed = found
                self._drop_version(txn, vkey, removed, due=due)
            if codec.load_object(txn, self._dbs.objects, oid) is None:
                newest = next(versions.iter_versions(txn, self._dbs, oid), None)
                if newest is not None and not newest[1].delete_marker:
                    vkey, promoted = newest
                    codec.store_object(txn, self._dbs.objects, oid, promoted)
                    self._add_ref(txn, promoted.cid, oid)
                    txn.delete(vkey, db=self._dbs.versions)
                    txn.delete(promoted.cid.encode("utf-8"), keys.version_ref(vkey), db=self._dbs.cid_refs)
            return removed

    @_guarded
    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        if max_keys < 0:
            raise InvalidArgument("max-keys must be zero or positive.")
        head = keys.bucket_prefix(bucket)
        wanted = head + prefix.encode("utf-8")
        delim = delimiter.encode("utf-8")
        low: bytes | None = _listing_start(head, wanted, delim, start_after)
        objects: list[ObjectMeta] = []
        prefixes: list[str] = []
        truncated = False
        last: str | None = None
        with self._env.begin() as txn:
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            cursor = txn.cursor(db=self._dbs.objects)
            entries = codec.scan_objects(cursor, low) if low is not None and max_keys > 0 else iter(())
            while (entry := next(entries, None)) is not None:
                oid, row = entry
                if not oid.startswith(wanted):
                    break
                if len(objects) + len(prefixes) == max_keys:
                    truncated = True
                    break
                cut = oid.find(delim, len(wanted)) if delim else -1
                if cut < 0:
                    last = oid[len(head) :].decode("utf-8")
                    objects.append(codec.row_object(bucket, last, row))
                    continue
                common = oid[: cut + len(delim)]
                last = common[len(head) :].decode("utf-8")
                prefixes.append(last)
                # Seek past every key under this common prefix instead of walking them.
                low = keys.prefix_successor(common)
                if low is None:
                    break
                entries = codec.scan_objects(cursor, low)
        return ListPage(tuple(objects), tuple(prefixes), truncated, last if truncated else None)

    @_guarded
    def list_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionPage:
        """ListObjectVersions: every version (current first, then newest to oldest) and delete marker of each key,
        keys in listing order, with CommonPrefixes for a delimiter."""
        with self._env.begin() as txn:
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            return versions.list_page(
                txn,
                self._dbs,
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                version_id_marker=version_id_marker,
                max_keys=max_keys,
            )

    # The CID index

    @_guarded
    def objects_by_cid(self, cid: str) -> list[tuple[str, str]]:
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs.cid_refs)
            if not cursor.set_key(cid.encode("utf-8")):
                return []
            found = []
            for ref in cursor.iternext_dup():
                if ref.startswith((keys.PART_REF_MARK, keys.VERSION_REF_MARK)):
                    continue  # a part of a multipart upload in progress, or a noncurrent version
                oid = txn.get(ref[1:], db=self._dbs.long_names) if ref.startswith(keys.LONG_REF_MARK) else ref
                if oid is None:
                    raise BackendError(f"the metadata store's CID index is inconsistent for {cid}")
                found.append(keys.split_object_id(oid))
            return found

    @_guarded
    def cid_refcount(self, cid: str) -> int:
        with self._env.begin() as txn:
            return self._refcount(txn, cid)

    # The unpin queue

    @_guarded
    def release_if_unreferenced(self, cid: str, *, unpin_grace: float, now: float) -> bool:
        with self._env.begin(write=True) as txn:
            if self._refcount(txn, cid) > 0:
                return False
            job = codec.get_job(txn, self._dbs, cid)
            if job is None or job.state == "inflight":
                # An unpin in flight may predate the pin this PUT made: queue a fresh one, and its
                # finish_unpin answers False so the unpinner restores the pin until then.
                codec.set_job(txn, self._dbs, cid, UnpinJob("queued", now + unpin_grace))
            return True

    @_guarded
    def claim_due_unpins(self, now: float, limit: int) -> list[str]:
        claimed: list[str] = []
        with self._env.begin(write=True) as txn:
            self._prune_unpinned(txn, now)
            while len(claimed) < limit:
                cursor = txn.cursor(db=self._dbs.unpin_due)
                batch: list[str] = []
                for index_key in cursor.iternext(values=False):
                    due, cid = keys.split_due_key(index_key)
                    if due > now or len(batch) == limit - len(claimed):
                        break
                    batch.append(cid)
                if not batch:
                    break
                for cid in batch:
                    # Queued and due, or in flight past its lease (the claimer died): claim it.
                    if self._refcount(txn, cid) > 0:
                        codec.remove_job(txn, self._dbs, cid)
                    else:
                        codec.set_job(txn, self._dbs, cid, UnpinJob("inflight", now + self._lease))
                        claimed.append(cid)
        return claimed

    @_guarded
    def finish_unpin(self, cid: str) -> bool:
        with self._env.begin(write=True) as txn:
            job = codec.get_job(txn, self._dbs, cid)
            if job is None or job.state != "inflight":
                return False
            codec.remove_job(txn, self._dbs, cid)
            codec.remember_unpinned(txn, self._dbs, cid, self._clock() + self._unpinned_ttl)
            return True

    @_guarded
    def retry_unpin(self, cid: str, at: float) -> None:
        with self._env.begin(write=True) as txn:
            job = codec.get_job(txn, self._dbs, cid)
            if job is not None and job.state == "inflight":
                codec.set_job(txn, self._dbs, cid, UnpinJob("queued", at))

    @_guarded
    def unpin_queue_depth(self) -> int:
        with self._env.begin() as txn:
            return int(txn.stat(self._dbs.unpins)["entries"])

    # Multipart uploads

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
                self._drop_ref_value(txn, previous.cid, ref, due=now + unpin_grace)
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
    def complete_upload(self, upload_id: str, meta: ObjectMeta, *, unpin_grace: float, now: float) -> PutOutcome:
        """In one transaction: the object row (referencing the composed root CID) replaces any previous object, the
        upload and its parts go, and part CIDs nothing else references are queued for unpin."""
        with self._env.begin(write=True) as txn:
            upload = uploads.load_upload(txn, self._dbs, upload_id)
            if upload is None or (upload.bucket, upload.key) != (meta.bucket, meta.key):
                raise NoSuchUpload()
            if txn.get(keys.bucket_key(meta.bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {meta.bucket[:80]}")
            outcome = self._write_current(txn, meta, unpin_grace=unpin_grace, now=now)
            for part in uploads.delete_upload_rows(txn, self._dbs, upload):
                self._drop_ref_value(txn, part.cid, keys.part_ref(upload_id, part.part_number), due=now + unpin_grace)
            return outcome

    @_guarded
    def abort_upload(self, upload_id: str, *, unpin_grace: float, now: float) -> UploadMeta:
        with self._env.begin(write=True) as txn:
            upload = uploads.load_upload(txn, self._dbs, upload_id)
            if upload is None:
                raise NoSuchUpload()
            for part in uploads.delete_upload_rows(txn, self._dbs, upload):
                self._drop_ref_value(txn, part.cid, keys.part_ref(upload_id, part.part_number), due=now + unpin_grace)
            return upload

    # Operations

    @_guarded
    def schema_version(self) -> int:
        with self._env.begin() as txn:
            return read_version(txn, self._dbs)

    @_guarded
    def stats(self) -> dict[str, int]:
        """Counts for the admin API and metrics."""
        with self._env.begin() as txn:
            info = self._env.info()
            return {
                "buckets": int(txn.stat(self._dbs.buckets)["entries"]),
                # Records of current versions (keys over 510 bytes share a record per 510-byte head).
                "objects": int(txn.stat(self._dbs.objects)["entries"]),
                "noncurrent_versions": int(txn.stat(self._dbs.versions)["entries"]),
                "uploads": int(txn.stat(self._dbs.uploads)["entries"]),
                "cid_refs": int(txn.stat(self._dbs.cid_refs)["entries"]),
                "unpin_queue": int(txn.stat(self._dbs.unpins)["entries"]),
                "unpinned_remembered": int(txn.stat(self._dbs.unpinned)["entries"]),
                "map_size_bytes": int(info["map_size"]),
                "map_used_bytes": int((info["last_pgno"] + 1) * self._env.stat()["psize"]),
            }

    @_guarded
    def backup(self, dest: Path) -> Path:
        """Write a consistent, compacted copy of the store into directory `dest` (created if missing)."""
        dest = Path(dest)
        if (dest / "data.mdb").exists():
            raise InvalidArgument(f"the backup destination {dest} already holds a data.mdb: choose an empty directory")
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create the backup directory {dest}: {exc}") from exc
        self._env.copy(str(dest), compact=True)
        return dest / "data.mdb"

    def close(self) -> None:
        if self._pid == os.getpid():
            self._env.close()

    # References and jobs

    def _refcount(self, txn: Any, cid: str) -> int:
        cursor = txn.cursor(db=self._dbs.cid_refs)
        return int(cursor.count()) if cursor.set_key(cid.encode("utf-8")) else 0

    def _add_ref(self, txn: Any, cid: str, oid: bytes) -> None:
        ref = keys.ref_value(oid)
        if ref.startswith(keys.LONG_REF_MARK):
            txn.put(ref[1:], oid, db=self._dbs.long_names)
        txn.put(cid.encode("utf-8"), ref, db=self._dbs.cid_refs)

    def _drop_ref(self, txn: Any, cid: str, oid: bytes, *, due: float) -> None:
        """Remove one reference; queue the CID's unpin at `due` if it was the last."""
        ref = keys.ref_value(oid)
        if ref.startswith(keys.LONG_REF_MARK):
            txn.delete(ref[1:], db=self._dbs.long_names)
        self._drop_ref_value(txn, cid, ref, due=due)

    def _drop_ref_value(self, txn: Any, cid: str, ref: bytes, *, due: float) -> None:
        txn.delete(cid.encode("utf-8"), ref, db=self._dbs.cid_refs)
        if self._refcount(txn, cid) == 0:
            codec.set_job(txn, self._dbs, cid, UnpinJob("queued", due))

    def _take_unpin(self, txn: Any, cid: str) -> bool:
        """Cancel the unpin job of a CID a row now references; True if it was already in flight."""
        job = codec.remove_job(txn, self._dbs, cid)
        return job is not None and job.state == "inflight"

    def _prune_unpinned(self, txn: Any, now: float) -> None:
        cursor = txn.cursor(db=self._dbs.unpinned_expiry)
        expired: list[str] = []
        for index_key in cursor.iternext(values=False):
            if keys.split_due_key(index_key)[0] > now or len(expired) == _PRUNE_BATCH:
                break
            expired.append(keys.split_due_key(index_key)[1])
        for cid in expired:
            codec.take_unpinned(txn, self._dbs, cid)


def _listing_start(head: bytes, wanted: bytes, delim: bytes, start_after: str) -> bytes | None:
    """The smallest object id a listing may return (None: nothing can follow start_after)."""
    if not start_after:
        return wanted
    after = head + start_after.encode("utf-8")
    low = max(wanted, after + b"\x00")  # the smallest id strictly greater than start_after
    if delim and after.startswith(wanted):
        cut = after.find(delim, len(wanted))
        if cut >= 0:
            # start_after lies under a common prefix that an earlier page already returned.
            beyond = keys.prefix_successor(after[: cut + len(delim)])
            return None if beyond is None else max(low, beyond)
    return low
