"""Versioned reads and deletes of the metadata store: a version by id, delete markers, removing one version for good,
and ListObjectVersions."""

from __future__ import annotations

from appliance.errors import NoSuchBucket
from appliance.model import ObjectMeta, VersionPage
from appliance.state import codec, keys, versions
from appliance.state.store_base import StoreBase
from appliance.state.store_base import guarded as _guarded

__all__ = ["VersionMethods"]


class VersionMethods(StoreBase):
    """The version methods of LmdbMetadataStore."""

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
                self._drop_ref(txn, current.cid, oid, due=due, now=now)
                removed = current
            else:
                found = versions.find_version(txn, self._dbs, oid, version_id)
                if found is None:
                    return None
                vkey, removed = found
                self._drop_version(txn, vkey, removed, due=due, now=now)
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
