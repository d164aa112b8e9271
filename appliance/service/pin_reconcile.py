"""Reconcile: compare the CIDs the metadata references with the pinner's pinset and repair the difference.

- referenced but not in the pinset → its pin job is queued again (the outbox pins and verifies it);
- in the pinset with peers in error (`pin_error`, `unexpectedly_unpinned`, a dead peer's `cluster_error`) → the
  pinner is asked to recover it (the cluster re-allocates) and its job is queued to track the result;
- in the pinset, carrying the gateway's pin metadata, but referenced by nothing (an orphan: a PUT that failed after
  its cluster pin, a lost unpin) → its unpin is queued after `orphan_grace` (a PUT of the same content cancels it).
  Pins the gateway did not make are never touched.

A dry run only reports. Runs once per appliance (periodically, and on demand from the admin API / CLI).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from appliance.components import MetadataStore, Pinner
from appliance.errors import S3IpfsError
from appliance.model import PinReport
from appliance.service.pin_orchestrator import PIN_METADATA

__all__ = ["ReconcileReport", "Reconciler"]

log = logging.getLogger(__name__)

_SAMPLE = 100  # CIDs listed per category in a report (the counts are complete)
_PAGE = 1000


@dataclasses.dataclass
class ReconcileReport:
    """What one reconcile pass found and did."""

    dry_run: bool
    started: float
    finished: float = 0.0
    pinner: str = ""
    referenced: int = 0
    pinset: int = 0
    missing: int = 0
    errored: int = 0
    orphans: int = 0
    foreign: int = 0  # pins the gateway did not make (left alone)
    queued: int = 0
    recovered: int = 0
    orphans_queued: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    samples: dict[str, list[str]] = dataclasses.field(
        default_factory=lambda: {"missing": [], "errored": [], "orphans": []}
    )

    def note(self, category: str, cid: str) -> None:
        setattr(self, category, getattr(self, category) + 1)
        sample = self.samples[category]
        if len(sample) < _SAMPLE:
            sample.append(cid)

    def document(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ours(report: PinReport) -> bool:
    return all(dict(report.metadata).get(key) == value for key, value in PIN_METADATA.items())


class Reconciler:
    """One reconcile pass at a time; keeps the last report."""

    def __init__(
        self,
        store: MetadataStore,
        pinner: Pinner,
        *,
        orphan_grace: float,
        clock: Callable[[], float] = time.time,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._pinner = pinner
        self._grace = orphan_grace
        self._clock = clock
        self._on_queued = on_queued
        self._lock = asyncio.Lock()
        self.last: ReconcileReport | None = None

    @property
    def running(self) -> bool:
        return self._lock.locked()

    async def run(self, *, dry_run: bool = False) -> ReconcileReport:
        """One full pass (a second caller waits for the running one to end, then runs its own)."""
        async with self._lock:
            report = ReconcileReport(dry_run=dry_run, started=self._clock(), pinner=self._pinner.kind)
            try:
                await self._pass(report)
            except S3IpfsError as exc:
                report.failures.append(exc.message)
                log.warning("reconcile stopped: %s", exc.message)
            report.finished = self._clock()
            if not dry_run:
                self.last = report
            log.info(
                "reconcile%s: %d referenced, %d pinned, %d missing, %d in error, %d orphans",
                " (dry run)" if dry_run else "",
                report.referenced,
                report.pinset,
                report.missing,
                report.errored,
                report.orphans,
            )
            return report

    async def _pass(self, report: ReconcileReport) -> None:
        pinset: dict[str, PinReport] = {}
        async for item in self._pinner.pinset():
            pinset[item.cid] = item
        report.pinset = len(pinset)
        seen: set[str] = set()
        after = ""
        while True:
            page = await asyncio.to_thread(self._store.referenced_cids, after=after, limit=_PAGE)
            if not page:
                break
            after = page[-1][0]
            await self._referenced(report, page, pinset, seen)
            if len(page) < _PAGE:
                break
        for cid, item in pinset.items():
            if cid in seen or not item.in_pinset:
                continue
            if not _ours(item) and self._pinner.kind == "cluster":
                report.foreign += 1
                continue
            if self._pinner.kind != "cluster":
                # A local node's pins are not only ours (MFS, the operator's): never unpin them from here.
                report.foreign += 1
                continue
            await self._orphan(report, cid)

    async def _referenced(
        self, report: ReconcileReport, page: list[tuple[str, str, str]], pinset: dict[str, PinReport], seen: set[str]
    ) -> None:
        requeue: list[str] = []
        for cid, _, _ in page:
            seen.add(cid)
            report.referenced += 1
            item = pinset.get(cid)
            if item is None or not item.in_pinset:
                report.note("missing", cid)
            elif item.errors:
                report.note("errored", cid)
                if not report.dry_run:
                    try:
                        await self._pinner.recover(cid)
                        report.recovered += 1
                    except S3IpfsError as exc:
                        report.failures.append(f"recover {cid}: {exc.message}"[:300])
            else:
                continue
            if not report.dry_run and await asyncio.to_thread(self._needs_job, cid, report.started):
                requeue.append(cid)
        if requeue:
            report.queued += await asyncio.to_thread(self._store.queue_pins, requeue, now=self._clock())
            self._on_queued()

    def _needs_job(self, cid: str, since: float) -> bool:
        """Whether a CID the pinset listing showed missing or in error needs a pin job: none is queued, and it was
        not recorded pinned after the listing began (then the listing is stale for it: its job just finished)."""
        if self._store.pin_job(cid) is not None:
            return False
        record = self._store.pin_status(cid)
        return record is None or record.state != "pinned" or record.updated < since

    async def _orphan(self, report: ReconcileReport, cid: str) -> None:
        report.note("orphans", cid)
        if report.dry_run:
            return
        queued = await asyncio.to_thread(
            self._store.release_if_unreferenced, cid, unpin_grace=self._grace, now=self._clock()
        )
        if queued:
            report.orphans_queued += 1
