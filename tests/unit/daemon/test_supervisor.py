"""The worker supervisor's restart policy, with stand-in processes (the real daemon is tested in tests/integration)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import appliance.daemon as daemon
from appliance.config import AppConfig
from appliance.service.identity import Credentials


class FakeProc:
    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        self.pid = 1234

    def is_alive(self) -> bool:
        return self.exitcode is None

    def join(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...


class Workers(daemon._Workers):
    """Starts FakeProcs: each start takes the next exit code from `script` (None: keeps running)."""

    script: list[int | None]

    def start(self, index: int) -> None:
        self.procs[index] = FakeProc(self.script.pop(0) if self.script else None)  # type: ignore[assignment]
        self.started[index] = 0.0


@pytest.fixture(autouse=True)
def never_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "_STABLE_AFTER", 1e9)  # no worker counts as having recovered


def _workers(script: list[int | None]) -> Any:
    workers = Workers(AppConfig(), Credentials("a", "b"), [])
    workers.script = script
    return workers


def test_backoff_doubles_while_a_worker_keeps_dying() -> None:
    workers = _workers([1, 1, 1, 1, None])
    workers.start(0)
    stop = asyncio.Event()
    now, delays = 0.0, []
    for _ in range(4):
        workers.check(stop, lambda _: None, now)  # finds the worker dead: schedules its restart
        due = workers.restart_due[0]
        delays.append(due - now)
        now = due
    workers.check(stop, lambda _: None, now)  # the fourth restart; this one keeps running
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert workers.restarts == 4
    assert workers.restart_due == {} and workers.procs[0].is_alive()


def test_no_restart_before_its_time_and_the_others_stay_watched() -> None:
    workers = _workers([1, None, 1, None])  # worker 0 dies at once, worker 1 runs, ...
    workers.start(0)
    workers.start(1)
    stop = asyncio.Event()
    statuses: list[str] = []
    workers.check(stop, statuses.append, 0.0)
    assert workers.restart_due == {0: 1.0} and 0 not in workers.procs
    workers.check(stop, statuses.append, 0.5)  # not yet due
    assert workers.restarts == 0
    workers.procs[1].exitcode = 1  # worker 1 dies while worker 0 waits for its restart
    workers.check(stop, statuses.append, 0.6)
    assert workers.restart_due == {0: 1.0, 1: 1.6}
    workers.check(stop, statuses.append, 1.0)
    assert workers.restarts == 1 and workers.restart_due == {0: 3.0, 1: 1.6}  # the restarted 0 died again
    workers.check(stop, statuses.append, 1.6)
    assert workers.restarts == 2 and workers.procs[1].is_alive()
    assert statuses == [
        "STATUS=serving; worker 0 restarted (1 restarts so far)",
        "STATUS=serving; worker 1 restarted (2 restarts so far)",
    ]


async def test_supervise_restarts_a_dead_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "_POLL", 0.001)
    monkeypatch.setattr(daemon, "_RESTART_BACKOFF", 0.001)
    workers = _workers([1, 1, None])
    workers.start(0)
    stop = asyncio.Event()
    task = asyncio.create_task(workers.supervise(stop, lambda _: None))
    for _ in range(500):
        if workers.restarts >= 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert workers.restarts == 2 and workers.procs[0].is_alive()


async def test_a_config_error_stops_the_appliance() -> None:
    workers = _workers([2])
    workers.start(0)
    stop = asyncio.Event()
    await asyncio.wait_for(workers.supervise(stop, lambda _: None), timeout=5)
    assert stop.is_set()
    assert workers.fatal == 2
    assert workers.restarts == 0
