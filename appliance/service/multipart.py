"""Multipart uploads: each part is its own UnixFS file in IPFS; Complete links the parts under one root (no data is
moved) and commits the object in one metadata transaction."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from appliance.checksums import composite, full_object
from appliance.components import ContentStore, MetadataStore, ObjectBody
from appliance.errors import (
    BadDigest,
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    InvalidRequest,
    NoSuchBucket,
    NoSuchUpload,
)
from appliance.model import CompletedUpload, ObjectMeta, PartMeta, PinRecord, UploadMeta, WriteCondition, validate_key
from appliance.service.objects import check_write_condition, release_quietly

__all__ = ["MAX_PARTS", "MIN_PART_SIZE", "CompletedPart", "MultipartService"]

log = logging.getLogger(__name__)

MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_OBJECT_SIZE = 5 * 1024**4  # S3's 5 TiB
DEFAULT_COMPLETED_RETENTION = 86400.0  # how long a retried Complete still gets its first answer


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One <Part> of a CompleteMultipartUpload request."""

    part_number: int
    etag: str  # without quotes
    checksums: tuple[tuple[str, str], ...] = ()  # (algorithm, base64) the request names for the part


class _Measured:
    """An ObjectBody over already-trusted bytes (read back from IPFS): counts and hashes them as they pass."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self.size = 0
        self.md5_hex = ""
        self.checksums: dict[str, str] = {}

    async def _run(self) -> AsyncIterator[bytes]:
        digest = hashlib.md5(usedforsecurity=False)
        async for piece in self._source:
            self.size += len(piece)
            digest.update(piece)
            yield piece
        self.md5_hex = digest.hexdigest()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()


def parse_part_number(text: str | None) -> int:
    """A partNumber query value: 1..10000, else InvalidArgument."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= MAX_PARTS:
        raise InvalidArgument(f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive.")
    return int(text)


class MultipartService:
    """Create, upload parts, complete, abort and list multipart uploads."""

    def __init__(
        self,
        store: MetadataStore,
        content: ContentStore,
        *,
        unpin_grace: float,
        min_part_size: int = MIN_PART_SIZE,
        clock: Callable[[], float] = time.time,
        confirm: Callable[[str, str, str], Awaitable[PinRecord | None]] | None = None,
        completed_retention: float = DEFAULT_COMPLETED_RETENTION,
    ) -> None:
        self._store = store
        self._content = content
        self._grace = unpin_grace
        self._min_part = min_part_size
        self._clock = clock
        # ObjectService.confirm_replication: a bucket with `ack: cluster` waits for the cluster's pins.
        self._confirm = confirm
        self._completed_retention = completed_retention

    async def create(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        user_meta: tuple[tuple[str, str], ...] = (),
        headers: tuple[tuple[str, str], ...] = (),
        owner: str = "",
        checksum_algorithm: str = "",
        tags: tuple[tuple[str, str], ...] = (),
        checksum_type: str = "",
    ) -> UploadMeta:
        validate_key(key)
        upload = UploadMeta(
            upload_id=secrets.token_hex(16),
            bucket=bucket,
            key=key,
            initiated=self._clock(),
            content_type=content_type,
            user_meta=user_meta,
            headers=headers,
            owner=owner,
            checksum_algorithm=checksum_algorithm,
            tags=tags,
            checksum_type=checksum_type,
        )
        await asyncio.to_thread(self._store.create_upload, upload)
        return upload

    async def get(self, bucket: str, key: str, upload_id: str) -> UploadMeta:
        """The upload, checked against the bucket and key of the request; NoSuchUpload / NoSuchBucket."""
        upload = await asyncio.to_thread(self._store.get_upload, upload_id)
        if upload is None or upload.bucket != bucket or upload.key != key:
            if await asyncio.to_thread(self._store.get_bucket, bucket) is None:
                raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
            raise NoSuchUpload()
        return upload

    async def upload_part(self, upload: UploadMeta, part_number: int, body: ObjectBody) -> PartMeta:
        """Add the verified part body (pinned) and record it; on failure nothing is recorded."""
        added = await self._content.add(aiter(body), pin=True)
        part = PartMeta(
            part_number=part_number,
            cid=added.cid,
            size=body.size,
            etag=body.md5_hex,
            last_modified=self._clock(),
            checksums=tuple(sorted(body.checksums.items())),
        )
        try:
            repin = await asyncio.to_thread(
                self._store.put_part, upload.upload_id, part, unpin_grace=self._grace, now=self._clock()
            )
        except BaseException:
            await self._release_quietly(added.cid)
            raise
        if repin:
            await self._content.pin(added.cid)
        return part

    async def add_existing_part(self, upload: UploadMeta, part_number: int, source: ObjectMeta) -> PartMeta:
        """A part that is the whole of an existing plain object: its CID and MD5 are reused, no data moves."""
        part = PartMeta(part_number, source.cid, source.size, source.etag, self._clock(), source.checksums)
        repin = await asyncio.to_thread(
            self._store.put_part, upload.upload_id, part, unpin_grace=self._grace, now=self._clock()
        )
        if repin:
            await self._content.pin(part.cid)
        return part

    async def upload_part_from(self, upload: UploadMeta, part_number: int, data: AsyncIterator[bytes]) -> PartMeta:
        """A part made of bytes read from IPFS (a range of another object): added as a new file."""
        return await self.upload_part(upload, part_number, _Measured(data))

    async def completed(
        self, bucket: str, key: str, upload_id: str, requested: list[CompletedPart]
    ) -> CompletedUpload | None:
        """The first answer to a Complete of this upload that already succeeded, if this request repeats it (same
        bucket, key and (part number, ETag) list); None otherwise, which the caller answers with NoSuchUpload."""
        done = await asyncio.to_thread(self._store.get_completed_upload, upload_id)
        if done is None or (done.meta.bucket, done.meta.key) != (bucket, key) or done.parts != _listed(requested):
            return None
        return done

    async def complete(
        self,
        upload: UploadMeta,
        requested: list[CompletedPart],
        *,
        expected_checksum: str | None = None,
        condition: WriteCondition | None = None,
        expected_size: int | None = None,
    ) -> CompletedUpload:
        """Check the requested parts against the stored ones, link them under one root and commit the object (if
        `condition` holds). A concurrent Complete of the same upload that won gets its answer repeated."""
        if not requested:
            raise InvalidPart("You must specify at least one part.")
        numbers = [p.part_number for p in requested]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise InvalidPartOrder()
        stored = {p.part_number: p for p in await asyncio.to_thread(self._store.list_parts, upload.upload_id)}
        chosen: list[PartMeta] = []
        for wanted in requested:
            part = stored.get(wanted.part_number)
            if part is None or part.etag != wanted.etag.strip('"').lower():
                raise InvalidPart(f"Part {wanted.part_number} was not uploaded or its ETag does not match.")
            kept = dict(part.checksums)
            for algorithm, value in wanted.checksums:
                if kept.get(algorithm) != value:
                    raise InvalidPart(
                        f"The {algorithm.upper()} checksum of part {wanted.part_number} does not match the uploaded "
                        "part's."
                    )
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < self._min_part:
                raise EntityTooSmall(
                    f"Part {part.part_number} is {part.size} bytes; every part but the last must be at least "
                    f"{self._min_part} bytes."
                )
        if sum(p.size for p in chosen) > MAX_OBJECT_SIZE:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed object size of 5 TiB.")
        if expected_size is not None and expected_size != sum(p.size for p in chosen):
            raise InvalidRequest("The provided 'x-amz-mp-object-size' header does not match what was computed.")
        checksums = self._composite(upload, chosen)
        if expected_checksum is not None and checksums and not _same_checksum(checksums[0][1], expected_checksum):
            raise BadDigest(
                f"The {upload.checksum_algorithm.upper()} you specified did not match the calculated checksum."
            )
        if condition is not None:
            await check_write_condition(self._store, upload.bucket, upload.key, condition)
        if len(chosen) == 1:
            cid = chosen[0].cid
        else:
            cid = await self._content.compose([(p.cid, p.size) for p in chosen], pin=True)
        digest = hashlib.md5(usedforsecurity=False)
        for part in chosen:
            digest.update(bytes.fromhex(part.etag))
        meta = ObjectMeta(
            bucket=upload.bucket,
            key=upload.key,
            cid=cid,
            size=sum(p.size for p in chosen),
            etag=f"{digest.hexdigest()}-{len(chosen)}",
            last_modified=self._clock(),
            content_type=upload.content_type,
            user_meta=upload.user_meta,
            headers=upload.headers,
            checksums=checksums,
            owner=upload.owner,
            parts=tuple(p.size for p in chosen),
            tags=upload.tags,
            part_checksums=tuple(p.checksums for p in chosen),
            part_numbers=() if numbers == list(range(1, len(numbers) + 1)) else tuple(numbers),
        )
        checksum_type = (upload.checksum_type or "COMPOSITE") if checksums else ""
        try:
            confirmed = None
            if self._confirm is not None:
                confirmed = await self._confirm(upload.bucket, f"{upload.bucket}/{upload.key}", cid)
            outcome = await asyncio.to_thread(
                self._store.complete_upload,
                upload.upload_id,
                meta,
                unpin_grace=self._grace,
                now=self._clock(),
                condition=condition,
                checksum_type=checksum_type,
                requested=_listed(requested),
            )
        except NoSuchUpload:
            if len(chosen) > 1:
                await self._release_quietly(cid)
            done = await self.completed(upload.bucket, upload.key, upload.upload_id, requested)
            if done is None:
                raise
            return done  # a concurrent Complete of the same parts won
        except BaseException:
            if len(chosen) > 1:
                await self._release_quietly(cid)
            raise
        if outcome.repin_needed:
            await self._content.pin(cid)
        if confirmed is not None:
            await asyncio.to_thread(self._store.mark_pinned, confirmed)
        committed = outcome.current or meta
        return CompletedUpload(upload.upload_id, committed, checksum_type, _listed(requested), committed.last_modified)

    @staticmethod
    def _composite(upload: UploadMeta, parts: list[PartMeta]) -> tuple[tuple[str, str], ...]:
        """The object's checksum when the upload declared an algorithm and every part carries it: COMPOSITE (the
        checksum of the part checksums, "-N") or FULL_OBJECT (the CRC of the whole object, combined from the parts)."""
        algorithm = upload.checksum_algorithm
        if not algorithm:
            return ()
        values: list[str] = []
        for part in parts:
            value = dict(part.checksums).get(algorithm)
            if value is None:
                raise InvalidPart(f"Every part of this upload must carry its {algorithm.upper()} checksum.")
            values.append(value)
        if upload.checksum_type == "FULL_OBJECT":
            return ((algorithm, full_object(algorithm, [(v, p.size) for v, p in zip(values, parts, strict=True)])),)
        return ((algorithm, composite(algorithm, values)),)

    async def abort(self, upload: UploadMeta) -> None:
        await asyncio.to_thread(self._store.abort_upload, upload.upload_id, unpin_grace=self._grace, now=self._clock())

    async def list_parts(self, upload: UploadMeta, *, after: int, limit: int) -> list[PartMeta]:
        return await asyncio.to_thread(self._store.list_parts, upload.upload_id, after=after, limit=limit)

    async def list_uploads(self, bucket: str) -> list[UploadMeta]:
        uploads = await asyncio.to_thread(self._store.list_uploads, bucket)
        return sorted(uploads, key=lambda u: (u.key.encode("utf-8"), u.initiated, u.upload_id))

    async def abort_abandoned(self, max_age: float) -> int:
        """Abort uploads older than `max_age` seconds (their parts are released) and forget completion records
        older than the retention; returns how many uploads were aborted."""
        while await asyncio.to_thread(self._store.expire_completed_uploads, self._clock() - self._completed_retention):
            pass  # batches of 1000 per transaction, until none is left
        done = 0
        for upload in await asyncio.to_thread(self._store.uploads_initiated_before, self._clock() - max_age):
            try:
                await self.abort(upload)
            except NoSuchUpload:
                continue  # completed or aborted meanwhile
            log.info("aborted abandoned multipart upload %s of %s/%s", upload.upload_id, upload.bucket, upload.key)
            done += 1
        return done

    async def _release_quietly(self, cid: str) -> None:
        await release_quietly(self._store, cid, grace=self._grace, now=self._clock())


def _listed(requested: list[CompletedPart]) -> tuple[tuple[int, str], ...]:
    """The (number, ETag) list a Complete names, as its record keeps it (ETags without quotes, lower case)."""
    return tuple((p.part_number, p.etag.strip('"').lower()) for p in requested)


def _same_checksum(computed: str, sent: str) -> bool:
    """Whether the x-amz-checksum-* a Complete sent is the object's: a COMPOSITE one may omit its "-N" suffix."""
    sent = sent.strip()
    return sent == computed or ("-" in computed and sent == computed.rsplit("-", 1)[0])
