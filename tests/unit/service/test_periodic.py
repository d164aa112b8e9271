"""The periodic-job helper: order of runs, stop, wake, `again`, failures with backoff (short intervals, no timings)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from appliance.service.periodic import MAX_BACKOFF, backoff, every, sleep_or_stop

TICK = 0.001


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(TICK)
    raise AssertionError(f"never happened: {what}")


async def _run(
    job: Callable[[], Awaitable[Any]], stop: asyncio.Event, interval: float = TICK, **kwargs: Any
) -> asyncio.Task[None]:
    return asyncio.create_task(every(interval, job, stop, name="test job", **kwargs))


async def test_runs_repeatedly_until_stop_and_not_after() -> None:
    stop = asyncio.Event()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1

    task = await _run(job, stop)
    await _until(lambda: runs >= 3, "three runs")
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    after = runs
    await asyncio.sleep(TICK * 5)
    assert runs == after


async def test_stop_during_the_first_delay_runs_nothing() -> None:
    stop = asyncio.Event()
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)

    task = await _run(job, stop, first_delay=3600.0)
    await asyncio.sleep(TICK * 5)
    assert not task.done()  # still waiting for its first run
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert runs == []


async def test_a_set_stop_runs_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)

    await asyncio.wait_for(every(TICK, job, stop, name="test job"), timeout=5)
    assert runs == []


async def test_wake_starts_the_next_run_at_once() -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1

    task = await _run(job, stop, interval=3600.0, wake=wake)
    await _until(lambda: runs == 1, "the first run")
    wake.set()
    await _until(lambda: runs == 2, "a run after the wake")
    assert not wake.is_set()  # cleared before the run it caused
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def test_again_goes_straight_on_while_work_is_waiting() -> None:
    stop = asyncio.Event()
    batches = [10, 10, 3]  # two full batches, then less: the hour-long interval applies

    async def job() -> int:
        return batches.pop(0) if batches else 0

    task = await _run(job, stop, interval=3600.0, again=lambda done: done >= 10)
    await _until(lambda: not batches, "three runs without waiting")
    await asyncio.sleep(TICK * 5)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def test_a_failing_job_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    calls = 0

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RuntimeError(f"boom {calls}")

    with caplog.at_level(logging.INFO, logger="appliance.service.periodic"):
        task = await _run(job, stop, max_backoff=TICK * 8)
        await _until(lambda: calls >= 5, "runs after three failures")
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("test job failed; retrying in")
    assert caplog.records[0].exc_info is not None  # the first failure of a row carries the traceback
    assert "failed (2 in a row): RuntimeError('boom 2')" in messages[1]
    assert "failed (3 in a row)" in messages[2]
    assert messages[3] == "test job succeeded again after 3 failure(s)"


async def test_stop_cuts_a_backoff_wait_short() -> None:
    stop = asyncio.Event()
    calls = 0

    async def job() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("down")

    task = await _run(job, stop, interval=3600.0)
    await _until(lambda: calls == 1, "the first run")
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert calls == 1


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    assert [backoff(1.0, n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert backoff(1.0, 100) == MAX_BACKOFF
    assert backoff(10.0, 3, max_backoff=30.0) == 30.0
    assert backoff(3600.0, 5) == 3600.0  # never shorter than the interval itself


async def test_sleep_or_stop() -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    assert await sleep_or_stop(stop, TICK) is False
    assert await sleep_or_stop(stop, 0) is False
    wake.set()
    assert await asyncio.wait_for(sleep_or_stop(stop, 3600.0, wake), timeout=5) is False
    stop.set()
    assert await asyncio.wait_for(sleep_or_stop(stop, 3600.0), timeout=5) is True
