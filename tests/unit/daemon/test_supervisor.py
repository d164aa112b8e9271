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


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
        slept.append(seconds)
        await asyncio.sleep(0)
        return stop.is_set()

    monkeypatch.setattr(daemon, "_sleep_or_stop", sleep_or_stop)
    monkeypatch.setattr(daemon, "_STABLE_AFTER", 1e9)  # no worker counts as having recovered
    return slept


def _workers(script: list[int | None]) -> Any:
    workers = Workers(AppConfig(), Credentials("a", "b"), [])
    workers.script = script
    return workers


async def test_backoff_doubles_while_a_worker_keeps_dying(fast: list[float]) -> None:
    workers = _workers([1, 1, 1, 1, None])
    workers.start(0)
    stop = asyncio.Event()
    task = asyncio.create_task(workers.supervise(stop, lambda _: None))
    for _ in range(200):
        await asyncio.sleep(0)
        if workers.restarts >= 4:
            break
    stop.set()
    await task
    restarts = [s for s in fast if s != daemon._POLL]
    assert restarts[:4] == [1.0, 2.0, 4.0, 8.0]
    assert workers.restarts == 4


async def test_a_config_error_stops_the_appliance(fast: list[float]) -> None:
    workers = _workers([2])
    workers.start(0)
    stop = asyncio.Event()
    await asyncio.wait_for(workers.supervise(stop, lambda _: None), timeout=5)
    assert stop.is_set()
    assert workers.fatal == 2
    assert workers.restarts == 0
