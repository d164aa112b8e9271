"""RateLimiter: which bucket a request spends from, exemptions, per-key rates from config and from IAM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import RateLimitConfig, RateLimitOverride
from appliance.service.rate_table import RateTable
from appliance.service.ratelimit import RateLimiter, table_path


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(tmp_path: Path) -> Iterator[RateTable]:
    t = RateTable.create(tmp_path / "rl.table", 256)
    yield t
    t.close()


def _admitted(limiter: RateLimiter, key: str, ip: str, tries: int) -> int:
    return sum(1 for _ in range(tries) if limiter.check(key, ip) == 0.0)


def test_signed_requests_spend_from_the_key_anonymous_from_the_address(table: RateTable) -> None:
    config = RateLimitConfig(enabled=True, per_key_rps=1, per_key_burst=5, per_ip_rps=1, per_ip_burst=2)
    limiter = RateLimiter(config, table, clock=Clock())
    assert _admitted(limiter, "AK1", "192.0.2.1", 10) == 5
    assert _admitted(limiter, "", "192.0.2.1", 10) == 2  # the address's bucket is its own
    assert _admitted(limiter, "AK2", "192.0.2.1", 10) == 5  # another key from the same address is not slowed
    assert _admitted(limiter, "", "192.0.2.2", 10) == 2


def test_refill_with_the_clock(table: RateTable) -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitConfig(per_key_rps=2, per_key_burst=1), table, clock=clock)
    assert limiter.check("AK", "192.0.2.1") == 0.0
    assert limiter.check("AK", "192.0.2.1") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.check("AK", "192.0.2.1") == 0.0


def test_exempt_keys_and_networks(table: RateTable) -> None:
    config = RateLimitConfig(
        per_key_rps=1,
        per_key_burst=1,
        per_ip_rps=1,
        per_ip_burst=1,
        exempt_keys=("BACKUP",),
        exempt_cidrs=("10.0.0.0/8",),
    )
    limiter = RateLimiter(config, table, clock=Clock())
    assert _admitted(limiter, "BACKUP", "192.0.2.1", 50) == 50
    assert _admitted(limiter, "", "10.1.2.3", 50) == 50
    assert _admitted(limiter, "OTHER", "10.1.2.3", 50) == 50  # exempt network: its keys too
    assert _admitted(limiter, "", "not-an-ip", 5) == 1  # an odd peer is limited, not exempt, not an error
    assert _admitted(limiter, "OTHER", "192.0.2.1", 5) == 1


def test_overrides_then_iam(table: RateTable) -> None:
    config = RateLimitConfig(per_key_rps=1, per_key_burst=1, overrides={"BIG": RateLimitOverride(rps=1, burst=7)})
    limiter = RateLimiter(config, table, clock=Clock())
    assert limiter.override_for("BIG") == (1, 7)
    assert limiter.override_for("NOBODY") is None
    limiter.iam_rates = lambda key: (1.0, 3) if key == "IAMUSER" else None
    assert _admitted(limiter, "BIG", "192.0.2.1", 20) == 7
    assert _admitted(limiter, "IAMUSER", "192.0.2.1", 20) == 3
    assert _admitted(limiter, "PLAIN", "192.0.2.1", 20) == 1


def test_table_path_prefers_the_runtime_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    assert table_path("/var/lib/s3ipfs").parent == tmp_path
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "missing"))
    assert table_path(str(tmp_path)).parent in {Path("/dev/shm"), tmp_path}
