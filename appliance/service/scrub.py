"""Scrub: walk the objects (current, noncurrent versions, parts of uploads in progress) and check that every block of
each one's DAG is on the local node with the right hash and shape, and that its pin is where its policy says; with
`repair`, fetch good copies of bad or missing blocks from the peers and pin again what is not pinned.

One run at a time per appliance, in the main process. Its position (the last item done) and counters are stored
after every item, so a daemon killed mid-run takes the run up again where it stopped when it starts again
(`resume`). A run is paced at `rate` objects per second so it never starves S3 traffic. Every damaged or missing
block is recorded as a damage report (source "scrub"); a repaired one is cleared. At the start of each run the open
reports (verified reads record theirs) are checked again: fine now (or their object gone) → cleared; still bad →
counted, and repaired with `repair`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.components import DagChecker, Pinner, ScrubStore
from appliance.errors import BackendUnavailable, NoSuchBucket, RequestError, S3IpfsError
from appliance.model import BlockFault, DagCheck, DamageReport, ScrubItem
from appliance.service.pin_orchestrator import PIN_METADATA
from appliance.service.pin_policy import PolicyBook
from appliance.service.scrub_run import ScrubOptions, ScrubRun

__all__ = ["ScrubBusy", "Scrubber"]

log = logging.getLogger(__name__)

PHASES = ("objects", "versions", "parts")
_PAGE = 100
_REPAIR_ROUNDS = 3  # a repaired inner node uncovers its children: check again, at most this often
_MAX_SEEN = 100_000  # CIDs remembered per run (checked clean, pins checked): bounded memory on huge stores
_MAX_REPORTS = 1000  # open damage reports re-checked per run
_KEEP = 20  # summaries of finished runs kept


class ScrubBusy(RequestError):
    """A scrub is already running (the admin API answers 409)."""

    default_message = "A scrub is already running; cancel it or wait for it to end."


def _kind_of(reason: str) -> str:
    """The fault kind a damage report's reason names (reports from verified reads carry only the reason)."""
    if reason.startswith("missing"):
        return "missing"
    if reason.startswith(("hash mismatch", "short", "long", "unsupported hash")):
        return "corrupt"
    return "invalid"


class Scrubber:
    """Starts, runs, resumes and cancels scrub runs; keeps the counters the metrics show."""

    def __init__(
        self,
        store: ScrubStore,
        checker: DagChecker,
        pinner: Pinner,
        policies: PolicyBook,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_queued: Callable[[], None] = lambda: None,
        default_rate: float | None = None,
    ) -> None:
        self._store = store
        self._checker = checker
        self._pinner = pinner
        self._policies = policies
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._on_queued = on_queued
        self.default_options = ScrubOptions() if default_rate is None else ScrubOptions(rate=default_rate)
        self.current: ScrubRun | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancelling = False
        self._next_slot = 0.0
        # Since the daemon started, for the metrics.
        self.objects_checked_total = 0
        self.damaged_blocks_total = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ---- control --------------------------------------------------------------------------------------------

    async def start(self, options: ScrubOptions) -> ScrubRun:
        """Start a run (ScrubBusy if one runs, NoSuchBucket for an unknown bucket); returns at once."""
        if self.running:
            raise ScrubBusy()
        if options.bucket and await asyncio.to_thread(self._store.get_bucket, options.bucket) is None:
            raise NoSuchBucket(f"no such bucket: {options.bucket[:80]}")
        total = await asyncio.to_thread(self._store.scrub_count, bucket=options.bucket, prefix=options.prefix)
        if self.running:  # another start won the race while we counted
            raise ScrubBusy()
        run = ScrubRun.new(options, self._clock(), total)
        await asyncio.to_thread(self._store.save_scrub_state, run.document())
        self._spawn(run)
        return run

    async def resume(self) -> ScrubRun | None:
        """Take up a run the daemon left running when it stopped (None if there is none)."""
        if self.running:
            return None
        doc = await asyncio.to_thread(self._store.scrub_state)
        if doc is None or doc.get("state") != "running":
            return None
        run = ScrubRun.from_document(doc, self._clock())
        run.resumes += 1
        log.info("scrub %s: resuming in %s after %d items", run.id, run.phase, run.done)
        self._spawn(run)
        return run

    def cancel(self) -> bool:
        """Cancel the running run (it is recorded as cancelled); False if none runs."""
        if self._task is None or self._task.done():
            return False
        self._cancelling = True
        self._task.cancel()
        return True

    async def wait(self) -> ScrubRun | None:
        """Wait for the running run to end; the run (None if none ran)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return self.current

    async def run_periodic(self) -> None:
        """One periodic run with the default options (nothing if a run is going on), waited for."""
        if self.running:
            return
        with contextlib.suppress(ScrubBusy):
            await self.start(self.default_options)
        await self.wait()

    async def aclose(self) -> None:
        """Stop for a shutdown: the run stays `running` in the store and is resumed at the next start."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def status(self) -> dict[str, Any]:
        """The running run's progress (or a stored run waiting to be resumed) and the recent summaries."""
        history = await asyncio.to_thread(self._store.scrub_history, _KEEP)
        current: dict[str, Any] | None = None
        if self.running and self.current is not None:
            current = self.current.progress(self._clock())
        else:
            doc = await asyncio.to_thread(self._store.scrub_state)
            if doc is not None and doc.get("state") == "running":
                current = ScrubRun.from_document(doc, self._clock()).progress(self._clock())
                current["state"] = "interrupted"  # the daemon stopped during it; it resumes after the next start
        return {
            "running": self.running,
            "current": current,
            "last": history[0] if history else None,
            "history": history,
        }

    # ---- the run --------------------------------------------------------------------------------------------

    def _spawn(self, run: ScrubRun) -> None:
        self.current = run
        self._cancelling = False
        self._next_slot = 0.0
        self._task = asyncio.create_task(self._execute(run), name=f"scrub-{run.id}")

    async def _execute(self, run: ScrubRun) -> None:
        seen = _Seen()
        try:
            await self._recheck_reports(run, seen)
            start = PHASES.index(run.phase) if run.phase in PHASES else 0
            for phase in PHASES[start:]:
                if phase != run.phase:
                    run.phase, run.after = phase, b""
                await self._walk(run, seen)
            run.state = "done"
        except asyncio.CancelledError:
            if not self._cancelling:
                # A shutdown: the stored position stays, the run is resumed at the next start.
                log.info("scrub %s: stopped with the daemon after %d items", run.id, run.done)
                raise
            run.state = "cancelled"
        except S3IpfsError as exc:
            run.state, run.error = "failed", exc.message
            log.warning("scrub %s failed: %s", run.id, exc.message)
        except Exception as exc:  # a bug must not leave the run "running" for ever; record it and log it
            run.state, run.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
            log.exception("scrub %s failed", run.id)
        run.finished = self._clock()
        await asyncio.to_thread(self._store.finish_scrub, run.document(), run.summary(), keep=_KEEP)
        log.info("scrub %s %s: %s", run.id, run.state, {k: v for k, v in run.counters.items() if v})

    async def _walk(self, run: ScrubRun, seen: _Seen) -> None:
        options = run.options
        while True:
            items = await asyncio.to_thread(
                self._store.scrub_items,
                run.phase,
                run.after,
                bucket=options.bucket,
                prefix=options.prefix,
                limit=_PAGE,
            )
            if not items:
                return
            for item in items:
                await self._item(run, item, seen)
                run.after = item.position
                run.session_done += 1
                await asyncio.to_thread(self._store.save_scrub_state, run.document())

    async def _pace(self, rate: float) -> None:
        now = self._monotonic()
        if self._next_slot > now:
            await self._sleep(self._next_slot - now)
        self._next_slot = max(self._next_slot, now) + 1.0 / rate

    async def _item(self, run: ScrubRun, item: ScrubItem, seen: _Seen) -> None:
        if item.cid in seen.clean:
            run.add("objects_skipped")
        else:
            await self._pace(run.options.rate)
            try:
                await self._content(run, item, seen)
            except BackendUnavailable:
                raise  # the node is down: the run stops (failed) rather than report everything missing
            except S3IpfsError as exc:
                run.add("errors")
                run.sample(bucket=item.bucket, key=item.key, cid=item.cid, error=exc.message[:200])
        if item.phase != "parts" and item.cid not in seen.pins:
            seen.remember(seen.pins, item.cid)
            try:
                await self._pin(run, item)
            except S3IpfsError as exc:
                run.add("errors")
                run.sample(bucket=item.bucket, key=item.key, cid=item.cid, error=f"pin status: {exc.message}"[:200])

    async def _content(self, run: ScrubRun, item: ScrubItem, seen: _Seen) -> None:
        check = await self._checker.check(item.cid, item.size)
        self._count_check(run, check)
        rounds = 0
        while check.faults:
            for fault in check.faults:
                await self._found(run, item, fault, seen)
            if not run.options.repair or rounds >= _REPAIR_ROUNDS:
                break
            fixed = 0
            for fault in check.faults:
                if fault.block in seen.unrepairable:
                    continue
                why = await self._checker.repair(fault.block, item.cid, fault.kind)
                if why is None:
                    fixed += 1
                    await self._repaired(run, fault.block, seen)
                else:
                    seen.unrepairable.add(fault.block)
                    run.sample(bucket=item.bucket, key=item.key, block=fault.block, repair_failed=why[:200])
            if not fixed:
                break
            check = await self._checker.check(item.cid, item.size)
            self._count_check(run, check)
            rounds += 1
        if not check.faults:
            seen.remember_clean(item.cid)
            for block in seen.reports_by_root.pop(item.cid, ()):
                if block not in seen.bad and await asyncio.to_thread(self._store.clear_damage, block):
                    run.add("reports_cleared")
            return
        for fault in check.faults:
            if fault.block not in seen.left_bad:
                seen.left_bad.add(fault.block)
                run.add("unrepaired")

    def _count_check(self, run: ScrubRun, check: DagCheck) -> None:
        run.add("objects_checked")
        run.add("blocks_checked", check.blocks)
        run.add("bytes_checked", check.bytes)
        self.objects_checked_total += 1

    async def _found(self, run: ScrubRun, item: ScrubItem, fault: BlockFault, seen: _Seen) -> None:
        """Count and report a fault the first time this run meets its block."""
        if fault.block in seen.bad:
            return
        seen.bad.add(fault.block)
        run.add("missing" if fault.kind == "missing" else "damaged")
        self.damaged_blocks_total += 1
        run.sample(
            bucket=item.bucket, key=item.key, cid=item.cid, block=fault.block, kind=fault.kind, reason=fault.reason
        )
        now = self._clock()
        reason = "missing" if fault.kind == "missing" else fault.reason
        await asyncio.to_thread(
            self._store.report_damage, DamageReport(fault.block, item.cid, reason, now, now, source="scrub")
        )

    async def _repaired(self, run: ScrubRun, block: str, seen: _Seen) -> None:
        run.add("repaired")
        seen.bad.discard(block)
        await asyncio.to_thread(self._store.clear_damage, block)

    async def _recheck_reports(self, run: ScrubRun, seen: _Seen) -> None:
        """Check the open damage reports again (see the module docstring)."""
        reports = await asyncio.to_thread(self._store.damage_reports, _MAX_REPORTS)
        for report in reports:
            run.add("reports_rechecked")
            if await asyncio.to_thread(self._store.cid_refcount, report.root) == 0:
                if await asyncio.to_thread(self._store.clear_damage, report.block):
                    run.add("reports_cleared")  # its object is gone
                continue
            kind = _kind_of(report.reason)
            state = await self._checker.block_ok(report.block)
            if state is None and kind != "invalid":
                if await asyncio.to_thread(self._store.clear_damage, report.block):
                    run.add("reports_cleared")
                continue
            if state is None:
                # The block's bytes are right; whether the DAG adds up is checked when the walk reaches its object.
                seen.reports_by_root.setdefault(report.root, []).append(report.block)
                continue
            item = ScrubItem("objects", b"", "", "", report.root, 0)
            await self._found(run, item, BlockFault(report.block, state, report.reason), seen)
            why = "not asked to repair"
            if run.options.repair:
                why = await self._checker.repair(report.block, report.root, state) or ""
                if not why:
                    await self._repaired(run, report.block, seen)
                    continue
            seen.left_bad.add(report.block)
            run.add("unrepaired")
            if why != "not asked to repair":
                run.sample(root=report.root, block=report.block, repair_failed=why[:200])

    async def _pin(self, run: ScrubRun, item: ScrubItem) -> None:
        """Check the CID's pin against its policy; with repair, pin it again (local) or queue it again (cluster)."""
        if await asyncio.to_thread(self._store.pin_job, item.cid) is not None:
            return  # the outbox is on it: not wrong, just not done yet
        run.add("pins_checked")
        report = await self._pinner.status(item.cid)
        if self._pinner.kind == "local":
            wanted = 1
            ok = report.pinned >= 1
        else:
            try:
                policy = await self._policies.get(item.bucket)
            except NoSuchBucket:
                policy = self._policies.defaults
            wanted = policy.replication_min
            ok = report.satisfies(policy.replication_min)
        if ok:
            return
        run.add("pins_wrong")
        run.sample(bucket=item.bucket, key=item.key, cid=item.cid, pin=f"{report.pinned} pinned, policy wants {wanted}")
        if not run.options.repair:
            return
        if self._pinner.kind == "local":
            await self._pinner.pin(
                item.cid, name=f"{item.bucket}/{item.key}", policy=self._policies.defaults, metadata=PIN_METADATA
            )
            if (await self._pinner.status(item.cid)).pinned >= 1:
                run.add("pins_repaired")
            return
        queued = await asyncio.to_thread(self._store.queue_pins, [item.cid], now=self._clock())
        if queued:
            run.add("pins_repaired")
            self._on_queued()


class _Seen:
    """What one run remembers while it walks (bounded)."""

    def __init__(self) -> None:
        self.clean: set[str] = set()  # CIDs checked clean this run
        self.pins: set[str] = set()  # CIDs whose pin was checked
        self.bad: set[str] = set()  # blocks found bad and not repaired (counted once)
        self.left_bad: set[str] = set()  # blocks counted as unrepaired
        self.unrepairable: set[str] = set()  # blocks a repair failed for (not tried again this run)
        self.reports_by_root: dict[str, list[str]] = {}  # open reports to clear when their object checks clean

    def remember_clean(self, cid: str) -> None:
        self.remember(self.clean, cid)

    @staticmethod
    def remember(into: set[str], cid: str) -> None:
        if len(into) >= _MAX_SEEN:
            into.clear()  # forgetting only means checking some content twice
        into.add(cid)
