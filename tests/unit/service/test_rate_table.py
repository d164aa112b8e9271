"""The shared token-bucket table: bucket arithmetic with a fake clock, slots, eviction, and one budget for several
processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.service.rate_table import KIND_IP, KIND_KEY, RateTable, retry_after_seconds, take


def test_take_spends_and_refills() -> None:
    tokens, wait = take(2.0, 0.0, 0.0, rate=1.0, burst=2)
    assert (tokens, wait) == (1.0, 0.0)
    tokens, wait = take(tokens, 0.0, 0.0, rate=1.0, burst=2)
    assert (tokens, wait) == (0.0, 0.0)
    tokens, wait = take(tokens, 0.0, 0.25, rate=1.0, burst=2)
    assert wait == pytest.approx(0.75)  # refused: a token is back in 0.75 s
    assert tokens == pytest.approx(0.25)  # nothing spent on a refusal
    tokens, wait = take(tokens, 0.25, 1.0, rate=1.0, burst=2)
    assert wait == 0.0 and tokens == pytest.approx(0.0)


def test_take_never_exceeds_burst_and_ignores_backwards_time() -> None:
    tokens, _ = take(0.0, 0.0, 1e9, rate=100.0, burst=5)
    assert tokens == 4.0
    tokens, wait = take(0.5, 10.0, 5.0, rate=1.0, burst=5)  # the clock went back: nothing refilled
    assert tokens == 0.5 and wait == pytest.approx(0.5)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_seconds(0.001) == 1
    assert retry_after_seconds(1.0) == 1
    assert retry_after_seconds(1.01) == 2


@pytest.fixture
def table(tmp_path: Path) -> Iterator[RateTable]:
    t = RateTable.create(tmp_path / "rl.table", 64)
    try:
        yield t
    finally:
        t.close()


def test_a_burst_then_refusals_then_refill(table: RateTable) -> None:
    now = 100.0
    results = [table.take(KIND_KEY, "AK1", 2.0, 3, now) for _ in range(5)]
    assert results[:3] == [0.0, 0.0, 0.0]
    assert results[3] == pytest.approx(0.5) and results[4] == pytest.approx(0.5)
    assert table.take(KIND_KEY, "AK1", 2.0, 3, now + 0.5) == 0.0
    stats = table.stats(now + 0.5)
    assert stats.throttled_key == 2 and stats.throttled_ip == 0
    assert stats.tracked_key == 1


def test_buckets_are_separate_per_name_and_kind(table: RateTable) -> None:
    now = 5.0
    for _ in range(3):
        table.take(KIND_KEY, "hammer", 1.0, 3, now)
    assert table.take(KIND_KEY, "hammer", 1.0, 3, now) > 0
    assert table.take(KIND_KEY, "quiet", 1.0, 3, now) == 0.0
    assert table.take(KIND_IP, "hammer", 1.0, 3, now) == 0.0  # same text, other kind: another bucket
    stats = table.stats(now)
    assert (stats.tracked_key, stats.tracked_ip, stats.throttled_key) == (2, 1, 1)


def test_full_buckets_free_their_slot_and_a_crowded_table_still_answers(tmp_path: Path) -> None:
    small = RateTable.create(tmp_path / "small.table", 64)
    try:
        now = 0.0
        for n in range(500):  # far more names than slots: evictions, never an error
            small.take(KIND_IP, f"10.0.{n // 256}.{n % 256}", 1.0, 2, now)
        assert small.stats(now).tracked_ip <= 64
        assert small.stats(now + 10.0).tracked_ip == 0  # all refilled: nothing tracked
        for _ in range(2):
            assert small.take(KIND_KEY, "late", 1.0, 2, now + 10.0) == 0.0
        assert small.take(KIND_KEY, "late", 1.0, 2, now + 10.0) > 0
    finally:
        small.close()


def test_open_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="not a rate-limit table"):
        RateTable.open(path)


def test_create_replaces_a_planted_symlink_without_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "rl.table"
    link.symlink_to(victim)
    RateTable.create(link, 64).close()
    assert victim.read_text() == "keep me"
    assert not link.is_symlink()
    assert (link.stat().st_mode & 0o777) == 0o600


def _spend(path: str, name: str, count: int, now: float, out: multiprocessing.Queue[int]) -> None:
    table = RateTable.open(Path(path))
    admitted = sum(1 for _ in range(count) if table.take(KIND_KEY, name, 1e-6, 1000, now) == 0.0)
    table.close()
    out.put(admitted)


def test_two_processes_spend_from_one_budget(tmp_path: Path) -> None:
    """Burst 1000, no refill to speak of: two processes trying 800 each get exactly 1000 between them."""
    table = RateTable.create(tmp_path / "shared.table", 256)
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = ctx.Queue()
    procs = [ctx.Process(target=_spend, args=(str(table.path), "AKSHARED", 800, 50.0, out)) for _ in range(2)]
    for proc in procs:
        proc.start()
    admitted = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert sum(admitted) == 1000
    assert table.stats(50.0).throttled_key == 600
    table.close()
