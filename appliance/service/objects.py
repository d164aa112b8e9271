"""Object operations: store bodies in IPFS, commit metadata, release CIDs (durability order of DESIGN.md #4)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from appliance.components import ContentStore, MetadataStore, ObjectBody
from appliance.errors import (
    ContentIntegrityError,
    DeleteMarkerError,
    InvalidArgument,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    PreconditionFailed,
)
from appliance.model import (
    DamageReport,
    ListPage,
    ObjectMeta,
    PinRecord,
    VersionPage,
    WriteCondition,
    parse_version_id,
    validate_key,
)
from appliance.service.pin_orchestrator import PinAcknowledger

__all__ = [
    "DeleteResult",
    "ObjectService",
    "PutRequest",
    "check_version_id",
    "check_write_condition",
    "release_quietly",
]


async def release_quietly(store: MetadataStore, cid: str, *, grace: float, now: float) -> None:
    """Queue the release of a CID a failed write pinned but nothing references; never raises (it runs while an
    error is already on its way to the client)."""
    try:
        await asyncio.shield(asyncio.to_thread(store.release_if_unreferenced, cid, unpin_grace=grace, now=now))
    except Exception:
        log.exception("could not queue the release of unreferenced cid %s", cid)


async def check_write_condition(store: MetadataStore, bucket: str, key: str, condition: WriteCondition) -> None:
    """A conditional write's check before its body is taken: NoSuchKey when If-Match meets no object (or a delete
    marker), PreconditionFailed when the condition fails. The commit checks it again in its transaction."""
    reason = condition.violation(await asyncio.to_thread(store.get_object, bucket, key))
    if reason == "missing":
        raise NoSuchKey(f"The specified key does not exist: {key[:200]}")
    if reason:
        raise PreconditionFailed("At least one of the pre-conditions you specified did not hold.")


def check_version_id(version_id: str) -> None:
    """InvalidArgument unless `version_id` is "null" or an id this store makes."""
    if version_id != "null" and parse_version_id(version_id) is None:
        raise InvalidArgument("Invalid version id specified")


log = logging.getLogger(__name__)


def _state_of(record: PinRecord | None, outbox: bool) -> str:
    """A CID's pin state; without a record (written before pin tracking) it has its local pin, and with cluster
    replication it waits for reconcile to queue its cluster pin."""
    if record is not None:
        return record.state
    return "queued" if outbox else "pinned"


@dataclass(frozen=True, slots=True)
class PutRequest:
    """What a PutObject carries besides its body."""

    bucket: str
    key: str
    content_type: str
    user_meta: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    owner: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    condition: WriteCondition | None = None  # If-Match / If-None-Match: *


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """One key of a DeleteObjects call: deleted, or the error it met."""

    key: str
    error: Exception | None = None
    version_id: str | None = None
    removed: ObjectMeta | None = None  # what went: an object, a version, or (versioned DELETE) the new marker


class ObjectService:
    """Objects: PUT streams into IPFS and is acknowledged only after the pin and the metadata commit."""

    def __init__(
        self,
        store: MetadataStore,
        content: ContentStore,
        *,
        unpin_grace: float,
        clock: Callable[[], float] = time.time,
        acknowledger: PinAcknowledger | None = None,
        on_read: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._content = content
        self._grace = unpin_grace
        self._clock = clock
        self._ack = acknowledger
        self._on_read = on_read  # counts reads per CID for the dynamic replication policy

    async def require_bucket(self, bucket: str) -> None:
        """Raise NoSuchBucket unless the bucket exists."""
        if await asyncio.to_thread(self._store.get_bucket, bucket) is None:
            raise NoSuchBucket(f"The specified bucket does not exist: {bucket}")

    async def put_object(self, request: PutRequest, body: ObjectBody) -> ObjectMeta:
        """Add the verified body to IPFS (pinned), then commit the row. On any failure nothing is
        committed and a pin nobody references is queued for release."""
        validate_key(request.key)
        await self.require_bucket(request.bucket)
        if request.condition is not None:
            await check_write_condition(self._store, request.bucket, request.key, request.condition)
        added = await self._content.add(aiter(body), pin=True)
        meta = ObjectMeta(
            bucket=request.bucket,
            key=request.key,
            cid=added.cid,
            size=body.size,
            etag=body.md5_hex,
            last_modified=self._clock(),
            content_type=request.content_type,
            user_meta=request.user_meta,
            headers=request.headers,
            checksums=tuple(sorted(body.checksums.items())),
            owner=request.owner,
            tags=request.tags,
        )
        try:
            confirmed = await self.confirm_replication(request.bucket, f"{request.bucket}/{request.key}", added.cid)
            outcome = await asyncio.to_thread(
                self._store.put_object, meta, unpin_grace=self._grace, now=self._clock(), condition=request.condition
            )
        except BaseException:
            await self._release_quietly(added.cid)
            raise
        if outcome.repin_needed:
            # An unpin of this very CID was in flight when we committed: pin again before acknowledging.
            await self._content.pin(added.cid)
        if confirmed is not None:
            await asyncio.to_thread(self._store.mark_pinned, confirmed)
        return outcome.current or meta

    async def confirm_replication(self, bucket: str, name: str, cid: str) -> PinRecord | None:
        """In a bucket whose PUTs wait for the cluster (`ack: cluster`): pin `cid` and wait until replication_min
        peers report it pinned (BackendUnavailable if they do not in time); the status to record. None for
        buckets acknowledged on the local pin."""
        if self._ack is None:
            return None
        policy = await self._ack.policy_for(bucket)
        if policy is None:
            return None
        report = await self._ack.pin_and_wait(cid, name, policy)
        return PinRecord(
            cid=cid,
            state="pinned",
            name=name,
            peers=report.peers,
            updated=self._clock(),
            replication_min=policy.replication_min,
            replication_max=policy.replication_max,
        )

    async def pin_state(self, cid: str) -> str:
        """The pin state reported in `x-ipfs-pin-status` (model.PIN_STATES)."""
        return _state_of(await asyncio.to_thread(self._store.pin_status, cid), self._store.pin_outbox)

    async def head_object_pin(self, bucket: str, key: str, version_id: str | None = None) -> tuple[ObjectMeta, str]:
        """head_object and the content's pin state (one thread hop for the current version, as GET/HEAD need)."""
        if version_id is not None:
            meta = await self.head_object(bucket, key, version_id)
            return meta, await self.pin_state(meta.cid)

        def load() -> tuple[ObjectMeta | None, PinRecord | None]:
            found = self._store.get_object(bucket, key)
            return found, (None if found is None else self._store.pin_status(found.cid))

        validate_key(key)
        current, record = await asyncio.to_thread(load)
        if current is None:
            meta = await self.head_object(bucket, key)  # the right error (or a row written just now)
            return meta, await self.pin_state(meta.cid)
        return current, _state_of(record, self._store.pin_outbox)

    async def copy_object(
        self,
        source: ObjectMeta,
        bucket: str,
        key: str,
        *,
        content_type: str,
        user_meta: tuple[tuple[str, str], ...],
        headers: tuple[tuple[str, str], ...],
        owner: str,
        tags: tuple[tuple[str, str], ...] = (),
        condition: WriteCondition | None = None,
    ) -> ObjectMeta:
        """A new row referencing the source's CID: no data moves, the refcount keeps the content pinned. With
        `condition` (the destination's If-Match / If-None-Match: *): NoSuchKey / PreconditionFailed before the
        commit, ConditionalRequestConflict when a concurrent write makes it fail inside the commit."""
        validate_key(key)
        if condition is not None:
            await check_write_condition(self._store, bucket, key, condition)
        meta = ObjectMeta(
            bucket=bucket,
            key=key,
            cid=source.cid,
            size=source.size,
            etag=source.etag,
            last_modified=self._clock(),
            content_type=content_type,
            user_meta=user_meta,
            headers=headers,
            checksums=source.checksums,
            owner=owner,
            parts=source.parts,
            part_checksums=source.part_checksums,
            part_numbers=source.part_numbers,
            tags=tags,
        )
        outcome = await asyncio.to_thread(
            self._store.put_object, meta, unpin_grace=self._grace, now=self._clock(), condition=condition
        )
        if outcome.repin_needed:
            await self._content.pin(meta.cid)
        return outcome.current or meta

    async def set_tags(
        self, bucket: str, key: str, tags: tuple[tuple[str, str], ...], version_id: str | None = None
    ) -> ObjectMeta:
        """Replace the tag set of the object (of one version); NoSuchKey / NoSuchVersion / NoSuchBucket, and
        DeleteMarkerError for a delete marker."""
        await self.head_object(bucket, key, version_id)  # the right error for a missing key, version or a marker
        updated = await asyncio.to_thread(self._store.set_object_tags, bucket, key, tags, version_id)
        if updated is None:  # deleted in between
            raise NoSuchKey(f"The specified key does not exist: {key[:200]}")
        return updated

    async def set_acl(self, bucket: str, key: str, acl: str, version_id: str | None = None) -> ObjectMeta:
        """Replace the object's ACL (of one version); the same errors as set_tags."""
        await self.head_object(bucket, key, version_id)
        updated = await asyncio.to_thread(self._store.set_object_acl, bucket, key, acl, version_id)
        if updated is None:  # deleted in between
            raise NoSuchKey(f"The specified key does not exist: {key[:200]}")
        return updated

    async def _release_quietly(self, cid: str) -> None:
        await release_quietly(self._store, cid, grace=self._grace, now=self._clock())

    async def head_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectMeta:
        """The object's metadata (a given version of it); NoSuchKey / NoSuchVersion / NoSuchBucket, and
        DeleteMarkerError when the answer is a delete marker."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)
            meta = await asyncio.to_thread(self._store.get_version, bucket, key, version_id)
            if meta is None:
                await self.require_bucket(bucket)
                raise NoSuchVersion()
            if meta.delete_marker:
                raise DeleteMarkerError(
                    "The specified method is not allowed against this resource.", version_id=version_id, requested=True
                )
            return meta
        meta = await asyncio.to_thread(self._store.get_object, bucket, key)
        if meta is None:
            await self.require_bucket(bucket)
            if await asyncio.to_thread(self._store.current_is_delete_marker, bucket, key):
                raise DeleteMarkerError(
                    f"The specified key does not exist: {key[:200]}", version_id=await self._marker_id(bucket, key)
                )
            raise NoSuchKey(f"The specified key does not exist: {key[:200]}")
        return meta

    async def _marker_id(self, bucket: str, key: str) -> str:
        """The version id of the delete marker that is `key`'s current version ("" if it is gone by now): S3 names
        it in x-amz-version-id on the 404. The key sorts first among those it prefixes, newest version first."""
        page = await asyncio.to_thread(self._store.list_versions, bucket, prefix=key, max_keys=1)
        if page.versions and page.versions[0][0].key == key and page.versions[0][0].delete_marker:
            return page.versions[0][0].version_id
        return ""

    def open_content(self, meta: ObjectMeta, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream the object's bytes (a range of them) from IPFS, verified against its CID and recorded size. A
        block that fails verification is reported (damaged_blocks, for scrub and the metrics) and the stream
        raises ContentIntegrityError before any byte of it."""
        if length is None:
            # Known size: saves the node a stat call per GET.
            length = meta.size - offset
        if self._on_read is not None:
            self._on_read(meta.cid)
        return self._checked(meta, self._content.cat(meta.cid, offset, length, size=meta.size))

    async def _checked(self, meta: ObjectMeta, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for piece in source:
                yield piece
        except ContentIntegrityError as exc:
            log.error(
                "content of %s/%s (cid %s) failed verification at block %s: %s",
                meta.bucket,
                meta.key[:200],
                meta.cid,
                exc.block,
                exc.reason,
            )
            await self.report_damage(exc)
            raise
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    async def report_damage(self, error: ContentIntegrityError, source: str = "read") -> None:
        """Record a block that failed verification; never raises (an error is already on its way)."""
        now = self._clock()
        report = DamageReport(
            block=error.block, root=error.root, reason=error.reason, first_seen=now, last_seen=now, source=source
        )
        try:
            await asyncio.shield(asyncio.to_thread(self._store.report_damage, report))
        except Exception:
            log.exception("could not record the damaged block %s", error.block)

    async def delete_object(self, bucket: str, key: str) -> ObjectMeta | None:
        """Delete the object (absent is not an error, as in S3); NoSuchBucket if the bucket is gone."""
        validate_key(key)
        removed = await asyncio.to_thread(
            self._store.delete_object, bucket, key, unpin_grace=self._grace, now=self._clock()
        )
        if removed is None:
            await self.require_bucket(bucket)
        return removed

    async def delete_version(self, bucket: str, key: str, version_id: str) -> ObjectMeta | None:
        """Remove one version for good (None: there was no such version, which S3 answers with 204 too)."""
        validate_key(key)
        check_version_id(version_id)
        return await asyncio.to_thread(
            self._store.delete_version, bucket, key, version_id, unpin_grace=self._grace, now=self._clock()
        )

    async def delete_objects(self, bucket: str, entries: list[tuple[str, str | None]]) -> list[DeleteResult]:
        """Delete several keys (or versions of them); each gets its own result."""
        await self.require_bucket(bucket)
        results: list[DeleteResult] = []
        for key, version_id in entries:
            try:
                if version_id is None:
                    removed = await self.delete_object(bucket, key)
                else:
                    removed = await self.delete_version(bucket, key, version_id)
            except Exception as exc:
                results.append(DeleteResult(key, exc, version_id))
            else:
                results.append(DeleteResult(key, None, version_id, removed))
        return results

    async def list_objects(
        self, bucket: str, *, prefix: str, delimiter: str, start_after: str, max_keys: int
    ) -> ListPage:
        """One page of the bucket's keys (served from metadata alone: works with IPFS down)."""
        return await asyncio.to_thread(
            self._store.list_objects,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            max_keys=max_keys,
        )

    async def list_versions(
        self, bucket: str, *, prefix: str, delimiter: str, key_marker: str, version_id_marker: str, max_keys: int
    ) -> VersionPage:
        """One page of ListObjectVersions (from metadata alone)."""
        return await asyncio.to_thread(
            self._store.list_versions,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            max_keys=max_keys,
        )

    async def objects_by_cid(self, cid: str) -> list[tuple[str, str]]:
        """Every (bucket, key) whose content is `cid`."""
        return await asyncio.to_thread(self._store.objects_by_cid, cid)
