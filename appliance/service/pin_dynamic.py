"""The dynamic replication policy: CIDs read often get extra replicas; when they cool down the replicas go again.

Workers count GETs per CID in memory (`AccessRecorder`) and add them to LMDB's exponentially decayed scores in one
write every few seconds. Once per appliance, `HotColdPolicy` reads the scores: a CID whose score reaches
`hot_threshold` gets `hot_extra` replicas on top of its bucket's policy (capped by `max_replication`); a boosted CID
whose score falls below `cold_threshold` (< hot: hysteresis) and whose status has not changed for `min_dwell` goes
back to its bucket's policy. Changes go through the pin outbox, at most `max_changes` a pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable

from appliance.components import MetadataStore
from appliance.model import PinRecord
from appliance.service.periodic import every

__all__ = ["AccessRecorder", "DynamicSettings", "HotColdPolicy"]

log = logging.getLogger(__name__)

_MAX_PENDING = 50_000  # distinct CIDs counted in memory before an early flush


class AccessRecorder:
    """Counts object reads per CID in one worker; `flush` writes them in one transaction."""

    def __init__(self, store: MetadataStore, *, half_life: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._half_life = half_life
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self.flushed_total = 0

    def note(self, cid: str) -> bool:
        """Count one read; True when so many CIDs are pending that the caller should flush now."""
        self._counts[cid] += 1
        return len(self._counts) >= _MAX_PENDING

    async def flush(self) -> int:
        """Write the pending counts; returns how many CIDs were written. On a failure the counts are dropped
        (statistics, not data) and the error is logged."""
        if not self._counts:
            return 0
        counts, self._counts = dict(self._counts), Counter()
        try:
            await asyncio.to_thread(self._store.record_access, counts, now=self._clock(), half_life=self._half_life)
        except Exception:
            log.exception("could not record %d access counts", len(counts))
            return 0
        self.flushed_total += len(counts)
        return len(counts)

    async def run_forever(self, stop: asyncio.Event, interval: float) -> None:
        """Flush every `interval` seconds until `stop`, then once more (the last counts)."""
        await every(interval, self.flush, stop, name="access count flush", first_delay=interval)
        await self.flush()


@dataclasses.dataclass(frozen=True, slots=True)
class DynamicSettings:
    """config: pinning.half_life_seconds, hot_threshold, cold_threshold, hot_extra_replicas, min_dwell_seconds,
    max_changes_per_pass."""

    half_life: float = 3600.0
    hot_threshold: float = 100.0
    cold_threshold: float = 10.0
    hot_extra: int = 1
    min_dwell: float = 600.0
    max_changes: int = 100


@dataclasses.dataclass
class DynamicPass:
    """What one pass of the policy did."""

    tracked: int = 0
    raised: list[str] = dataclasses.field(default_factory=list)
    lowered: list[str] = dataclasses.field(default_factory=list)


class HotColdPolicy:
    """Raises and lowers replication from access scores (runs once per appliance)."""

    def __init__(
        self,
        store: MetadataStore,
        settings: DynamicSettings,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[int], None] = lambda count: None,
    ) -> None:
        if settings.cold_threshold >= settings.hot_threshold:
            raise ValueError("cold_threshold must be below hot_threshold")
        self._store = store
        self._settings = settings
        self._clock = clock
        self._on_change = on_change

    async def run_once(self) -> DynamicPass:
        settings = self._settings
        now = self._clock()
        scores = await asyncio.to_thread(self._store.access_scores, now=now, half_life=settings.half_life)
        result = DynamicPass(tracked=len(scores))
        budget = settings.max_changes
        hot = sorted(
            (cid for cid, score in scores.items() if score >= settings.hot_threshold), key=lambda c: -scores[c]
        )
        raise_now: list[str] = []
        for cid in hot:
            if len(raise_now) >= budget:
                break
            record = await asyncio.to_thread(self._store.pin_status, cid)
            if record is None or record.state == "unpinning" or record.extra >= settings.hot_extra:
                continue
            raise_now.append(cid)
        if raise_now:
            await asyncio.to_thread(self._store.queue_pins, raise_now, now=now, extra=settings.hot_extra)
            result.raised = raise_now
            budget -= len(raise_now)
        lower_now: list[str] = []
        after = ""
        while budget > len(lower_now):
            page = await asyncio.to_thread(self._store.pin_statuses, after=after, limit=1000)
            if not page:
                break
            after = page[-1].cid
            for record in page:
                if len(lower_now) >= budget:
                    break
                if (
                    record.extra > 0
                    and scores.get(record.cid, 0.0) < settings.cold_threshold
                    and self._dwelt(record, now)
                ):
                    lower_now.append(record.cid)
            if len(page) < 1000:
                break
        if lower_now:
            await asyncio.to_thread(self._store.queue_pins, lower_now, now=now, extra=0)
            result.lowered = lower_now
        changes = len(result.raised) + len(result.lowered)
        if changes:
            self._on_change(changes)
            log.info("dynamic replication: %d CIDs raised, %d lowered", len(result.raised), len(result.lowered))
        return result

    def _dwelt(self, record: PinRecord, now: float) -> bool:
        return now - record.updated >= self._settings.min_dwell
