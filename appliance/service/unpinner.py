"""The background job that unpins CIDs no object references any more, after their grace period."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from appliance.components import ContentStore, MetadataStore, Pinner
from appliance.errors import S3IpfsError
from appliance.service.periodic import every

__all__ = ["Unpinner"]

log = logging.getLogger(__name__)


class Unpinner:
    """Drains the unpin queue. Runs once per appliance (in the supervisor process)."""

    def __init__(
        self,
        store: MetadataStore,
        content: ContentStore,
        *,
        interval: float,
        batch: int = 100,
        clock: Callable[[], float] = time.time,
        replica: Pinner | None = None,
    ) -> None:
        self._store = store
        self._content = content
        self._replica = replica  # the cluster pinner: its pin goes too (before the local one)
        self._interval = interval
        self._batch = batch
        self._clock = clock
        self.unpinned_total = 0
        self.errors_total = 0

    async def run_once(self) -> int:
        """Unpin every due CID; returns how many were unpinned. Failures are retried with backoff."""
        cids = await asyncio.to_thread(self._store.claim_due_unpins, self._clock(), self._batch)
        done = 0
        for cid in cids:
            try:
                if self._replica is not None:
                    await self._replica.unpin(cid)
                await self._content.unpin(cid)
            except S3IpfsError as exc:
                self.errors_total += 1
                delay = self._interval * (2 + random.random())  # noqa: S311 - jitter, not crypto
                log.warning("unpin of %s failed (%s); retrying in %.0f s", cid, exc.message, delay)
                await asyncio.to_thread(self._store.retry_unpin, cid, self._clock() + delay)
                continue
            still_free = await asyncio.to_thread(self._store.finish_unpin, cid)
            if not still_free:
                # A PUT referenced the CID while we were unpinning it: restore the pin (its PUT queued the
                # cluster pin job again, so the outbox restores the cluster's).
                await self._content.pin(cid)
                continue
            done += 1
        self.unpinned_total += done
        return done

    async def run_forever(self, stop: asyncio.Event) -> None:
        """A pass every interval until `stop` is set; never dies on an error."""
        await every(self._interval, self.run_once, stop, name="unpin pass")
