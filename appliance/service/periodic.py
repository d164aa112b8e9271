"""The one way a background job runs periodically: until a stop event, with a first delay, early wake-ups and
backoff after failures (the loop never dies of its job's error)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["MAX_BACKOFF", "backoff", "every", "sleep_or_stop"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKOFF = 300.0  # seconds: the longest wait after failures in a row (unless the interval itself is longer)


async def sleep_or_stop(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> bool:
    """Sleep up to `seconds`, less when `stop` (or `wake`) is set meanwhile; True when `stop` is set."""
    if stop.is_set() or (wake is not None and wake.is_set()):
        return stop.is_set()
    if seconds <= 0:
        await asyncio.sleep(0)  # still a yield: a tight loop must let others run
        return stop.is_set()
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return stop.is_set()


def backoff(interval: float, failures: int, max_backoff: float = MAX_BACKOFF) -> float:
    """The wait after `failures` failed runs in a row: the interval doubled per failure, capped at
    max(interval, max_backoff); the interval itself when nothing failed."""
    if failures <= 0:
        return interval
    return min(interval * float(2 ** min(failures, 30)), max(interval, max_backoff))


async def every(
    interval: float,
    job: Callable[[], Awaitable[T]],
    stop: asyncio.Event,
    *,
    name: str,
    first_delay: float = 0.0,
    wake: asyncio.Event | None = None,
    again: Callable[[T], bool] | None = None,
    max_backoff: float = MAX_BACKOFF,
) -> None:
    """Run `job` after `first_delay`, then `interval` seconds after each run ends, until `stop` is set.

    `wake` set: the next run starts at once (it is cleared before each run, so a wake during a run is not lost).
    `again(result)` true: the next run starts at once (a full batch: more work is waiting).
    A run that raises is logged under `name` and the next wait doubles per failure in a row (see `backoff`); the
    first run that succeeds goes back to `interval`.
    """
    if first_delay > 0 and await sleep_or_stop(stop, first_delay):
        return
    failures = 0
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            result = await job()
        except Exception as exc:
            failures += 1
            delay = backoff(interval, failures, max_backoff)
            if failures == 1:
                log.exception("%s failed; retrying in %.1f s", name, delay)
            else:  # the traceback was logged with the first failure of the row
                log.error("%s failed (%d in a row): %r; retrying in %.1f s", name, failures, exc, delay)
            await sleep_or_stop(stop, delay, wake)
            continue
        if failures:
            log.info("%s succeeded again after %d failure(s)", name, failures)
            failures = 0
        if again is not None and again(result):
            await asyncio.sleep(0)
            continue
        await sleep_or_stop(stop, interval, wake)
