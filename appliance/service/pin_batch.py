"""Batch pin operations with progress (admin API `/batches`, CLI `s3ipfs pins batch`):

- `repin`: every current object of a bucket (under a prefix) is queued in the pin outbox again, optionally after
  setting a new replication policy on the bucket: the outbox pins each CID with the new policy and verifies it;
- `pin`: a list of CIDs pinned through the pinner with the default policy (metadata `s3ipfs-batch: <id>`, so
  reconcile does not take them for the gateway's orphans);
- `unpin`: a list of CIDs unpinned, except those objects still reference (deleting the objects releases those).

Batches run in the supervisor process; their progress lives in memory (a repin's queued jobs are durable in the
outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from appliance.components import MetadataStore, Pinner
from appliance.errors import InvalidArgument, NoSuchBucket, S3IpfsError
from appliance.service.pin_policy import PolicyBook

__all__ = ["MAX_CIDS", "Batch", "BatchRunner"]

log = logging.getLogger(__name__)

MAX_CIDS = 100_000
_MAX_KEPT = 100  # finished batches remembered
_MAX_ERRORS = 20
_PAGE = 1000
_CONCURRENCY = 8


@dataclasses.dataclass
class Batch:
    """One batch and its progress."""

    id: str
    op: str
    params: dict[str, Any]
    started: float
    state: str = "running"  # running | done | failed | cancelled
    total: int | None = None  # None while a repin is still walking the bucket
    done: int = 0
    failed: int = 0
    skipped: int = 0
    finished: float = 0.0
    errors: list[str] = dataclasses.field(default_factory=list)

    def error(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(message[:300])

    def document(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class BatchRunner:
    """Starts batches as tasks, keeps their progress."""

    def __init__(
        self,
        store: MetadataStore,
        pinner: Pinner,
        policies: PolicyBook,
        *,
        clock: Callable[[], float] = time.time,
        on_queued: Callable[[int], None] = lambda count: None,
    ) -> None:
        self._store = store
        self._pinner = pinner
        self._policies = policies
        self._clock = clock
        self._on_queued = on_queued
        self._batches: dict[str, Batch] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def get(self, batch_id: str) -> Batch | None:
        return self._batches.get(batch_id)

    def batches(self) -> list[Batch]:
        return sorted(self._batches.values(), key=lambda b: b.started, reverse=True)

    async def start_repin(self, bucket: str, prefix: str, policy: Any | None) -> Batch:
        """Validate (NoSuchBucket, InvalidArgument), set the policy if given, then start walking the bucket."""
        if len(prefix.encode("utf-8")) > 1024:
            raise InvalidArgument("prefix is longer than 1024 bytes")
        if await asyncio.to_thread(self._store.get_bucket, bucket) is None:
            raise NoSuchBucket(f"no such bucket: {bucket[:80]}")
        if policy is not None:
            await self._policies.put(bucket, policy)
        batch = self._new("repin", {"bucket": bucket, "prefix": prefix, "policy": policy})
        self._run(batch, self._repin(batch, bucket, prefix))
        return batch

    def start_list(self, op: str, cids: Sequence[str]) -> Batch:
        """Start pinning or unpinning `cids` (already normalised by the caller)."""
        if op not in ("pin", "unpin"):
            raise InvalidArgument("op must be repin, pin or unpin")
        if not cids or len(cids) > MAX_CIDS:
            raise InvalidArgument(f"cids must list 1 to {MAX_CIDS} CIDs")
        unique = list(dict.fromkeys(cids))
        batch = self._new(op, {"count": len(unique)})
        batch.total = len(unique)
        work = self._pin_list(batch, unique) if op == "pin" else self._unpin_list(batch, unique)
        self._run(batch, work)
        return batch

    def cancel(self, batch_id: str) -> bool:
        task = self._tasks.get(batch_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _new(self, op: str, params: dict[str, Any]) -> Batch:
        finished = [b for b in self.batches() if b.state != "running"]
        for old in finished[_MAX_KEPT - 1 :]:
            self._batches.pop(old.id, None)
            self._tasks.pop(old.id, None)
        batch = Batch(id=secrets.token_hex(8), op=op, params=params, started=self._clock())
        self._batches[batch.id] = batch
        return batch

    def _run(self, batch: Batch, work: Any) -> None:
        async def runner() -> None:
            try:
                await work
                batch.state = "done"
            except asyncio.CancelledError:
                batch.state = "cancelled"
                raise
            except Exception as exc:
                batch.state = "failed"
                batch.error(str(exc) or type(exc).__name__)
                log.exception("batch %s (%s) failed", batch.id, batch.op)
            finally:
                batch.finished = self._clock()

        self._tasks[batch.id] = asyncio.create_task(runner(), name=f"batch-{batch.id}")

    async def _repin(self, batch: Batch, bucket: str, prefix: str) -> None:
        after = ""
        seen = 0
        while True:
            page = await asyncio.to_thread(
                self._store.list_objects, bucket, prefix=prefix, start_after=after, max_keys=_PAGE
            )
            if not page.objects:
                break
            after = page.objects[-1].key
            seen += len(page.objects)
            cids = list(dict.fromkeys(meta.cid for meta in page.objects))
            queued = await asyncio.to_thread(self._store.queue_pins, cids, now=self._clock())
            batch.done += len(page.objects)
            batch.skipped += len(cids) - queued
            self._on_queued(queued)
            if not page.is_truncated:
                break
        batch.total = seen

    async def _pin_list(self, batch: Batch, cids: list[str]) -> None:
        policy = self._policies.defaults
        metadata = {"s3ipfs-batch": batch.id}

        async def one(cid: str) -> None:
            try:
                await self._pinner.pin(cid, name=f"batch-{batch.id}", policy=policy, metadata=metadata)
                batch.done += 1
            except S3IpfsError as exc:
                batch.error(f"{cid}: {exc.message}")

        await _bounded(one, cids)

    async def _unpin_list(self, batch: Batch, cids: list[str]) -> None:
        async def one(cid: str) -> None:
            if await asyncio.to_thread(self._store.cid_refcount, cid) > 0:
                batch.skipped += 1
                if len(batch.errors) < _MAX_ERRORS:
                    batch.errors.append(f"{cid}: objects still reference it (delete them to release it)")
                return
            try:
                await self._pinner.unpin(cid)
                batch.done += 1
            except S3IpfsError as exc:
                batch.error(f"{cid}: {exc.message}")

        await _bounded(one, cids)


async def _bounded(job: Callable[[str], Any], items: list[str]) -> None:
    """Run `job` over `items`, `_CONCURRENCY` at a time, in order of start."""
    iterator = iter(items)

    async def worker() -> None:
        for item in iterator:
            await job(item)

    with contextlib.suppress(StopIteration):
        await asyncio.gather(*(worker() for _ in itertools.repeat(None, min(_CONCURRENCY, len(items)))))
