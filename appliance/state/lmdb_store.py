"""The metadata store on LMDB: buckets, objects, CID refcounts and the unpin queue in one environment.

Several processes (the S3 workers and the orchestrator) open the same directory; LMDB serialises their
write transactions. Every public method is one whole transaction run on the caller's thread, so callers
use asyncio.to_thread; no transaction or cursor outlives a call. Key layout: keys.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from appliance.errors import (
    BackendError,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidArgument,
    NoSuchBucket,
)
from appliance.model import BucketMeta, ListPage, ObjectMeta, PutOutcome, WriteCondition, validate_key
from appliance.state import codec, keys, pins, versions
from appliance.state.codec import UnpinJob
from appliance.state.damage_store import DamageMethods
from appliance.state.iam_store import IamMethods
from appliance.state.migrations import read_version
from appliance.state.pin_store import PinMethods
from appliance.state.scrub_store import ScrubMethods
from appliance.state.store_base import DEFAULT_MAP_SIZE, DEFAULT_UNPIN_LEASE, DEFAULT_UNPINNED_TTL
from appliance.state.store_base import guarded as _guarded
from appliance.state.upload_store import UploadMethods
from appliance.state.version_store import VersionMethods

__all__ = ["DEFAULT_MAP_SIZE", "DEFAULT_UNPIN_LEASE", "DEFAULT_UNPINNED_TTL", "LmdbMetadataStore"]


class LmdbMetadataStore(UploadMethods, VersionMethods, PinMethods, DamageMethods, ScrubMethods, IamMethods):
    """components.MetadataStore on an LMDB environment directory; open one per path per process.

    Beyond the Protocol: an unpin claimed more than `unpin_lease` seconds ago is claimable again (its
    claimer died), and put_object also answers repin_needed when an unpin of the CID *finished* within
    `unpinned_ttl` (the PUT's add may have pinned the content just before that unpin removed the pin).
    """

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
    def put_object(
        self, meta: ObjectMeta, *, unpin_grace: float, now: float, condition: WriteCondition | None = None
    ) -> PutOutcome:
        validate_key(meta.key)
        with self._env.begin(write=True) as txn:
            if txn.get(keys.bucket_key(meta.bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {meta.bucket[:80]}")
            self._check_condition(txn, meta, condition)
            return self._write_current(txn, meta, unpin_grace=unpin_grace, now=now)

    @_guarded
    def get_object(self, bucket: str, key: str) -> ObjectMeta | None:
        with self._env.begin() as txn:
            return codec.load_object(txn, self._dbs.objects, keys.object_id(bucket, key))

    @_guarded
    def set_object_tags(
        self, bucket: str, key: str, tags: tuple[tuple[str, str], ...], version_id: str | None = None
    ) -> ObjectMeta | None:
        """Replace the tags of the object (of one version of it) in one transaction; None if there is none."""
        return self._replace_object(bucket, key, version_id, tags=tags)

    @_guarded
    def set_object_acl(self, bucket: str, key: str, acl: str, version_id: str | None = None) -> ObjectMeta | None:
        """Replace the ACL of the object (of one version of it) in one transaction; None if there is none."""
        return self._replace_object(bucket, key, version_id, acl=acl)

    def _replace_object(self, bucket: str, key: str, version_id: str | None, **changes: Any) -> ObjectMeta | None:
        oid = keys.object_id(bucket, key)
        with self._env.begin(write=True) as txn:
            meta = codec.load_object(txn, self._dbs.objects, oid)
            if meta is not None and (version_id is None or meta.shown_version == version_id):
                updated = dataclasses.replace(meta, **changes)
                codec.store_object(txn, self._dbs.objects, oid, updated)
                return updated
            if version_id is None:
                return None
            found = versions.find_version(txn, self._dbs, oid, version_id)
            if found is None:
                return None
            vkey, old = found
            updated = dataclasses.replace(old, **changes)
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
                    self._drop_ref(txn, previous.cid, oid, due=due, now=now)
                return previous
            if txn.get(keys.bucket_key(bucket), db=self._dbs.buckets) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            current = codec.remove_object(txn, self._dbs.objects, oid)
            if current is not None:
                if not (mode == versions.SUSPENDED and current.shown_version == "null"):
                    self._archive(txn, oid, current)
                self._drop_ref(txn, current.cid, oid, due=due, now=now)
            if mode == versions.SUSPENDED:
                self._drop_null_versions(txn, oid, due=due, now=now)
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
            pins.remove_job(txn, self._dbs, cid)
            txn.delete(cid.encode("utf-8"), db=self._dbs.pin_status)
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
                "readers": int(info["num_readers"]),
                "max_readers": int(info["max_readers"]),
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
