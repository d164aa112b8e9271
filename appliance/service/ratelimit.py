"""Which bucket a request spends from: its access key's once signed, its client address's when anonymous or
when its signature failed; exempt keys and networks spend nothing; per-key rates from config or from IAM."""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable
from pathlib import Path

from appliance.config import RateLimitConfig
from appliance.service.rate_table import KIND_IP, KIND_KEY, RateTable

__all__ = ["RateLimiter", "Rates", "table_path"]

Rates = tuple[float, int]  # (requests per second, burst)

_EXEMPT_CACHE = 4096  # client addresses whose exemption is remembered (per process)


def table_path(state_dir: str) -> Path:
    """Where the main process puts the shared table: systemd's RuntimeDirectory (tmpfs, cleaned by systemd),
    else /dev/shm (tmpfs), else the state directory (a few hundred KiB, written back lazily by the kernel)."""
    name = f"s3ipfs-ratelimit-{os.getpid()}.table"
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    for directory in (runtime, "/dev/shm"):  # noqa: S108 (RateTable.create never follows a planted name)
        if directory and os.path.isdir(directory) and os.access(directory, os.W_OK):
            return Path(directory) / name
    return Path(state_dir) / name


class RateLimiter:
    """The per-request check of one worker process over the shared table."""

    def __init__(
        self,
        config: RateLimitConfig,
        table: RateTable,
        *,
        clock: Callable[[], float] = time.monotonic,
        iam_rates: Callable[[str], Rates | None] | None = None,
    ) -> None:
        self._config = config
        self._table = table
        self._clock = clock
        self._exempt_keys = frozenset(config.exempt_keys)
        self._exempt_nets = tuple(ipaddress.ip_network(c) for c in config.exempt_cidrs)
        self._exempt_ips: dict[str, bool] = {}
        self._overrides = {key: (o.rps, o.burst) for key, o in config.overrides.items()}
        self.iam_rates = iam_rates  # per-user rates kept in IAM (set by the IAM wiring); None: config only

    def override_for(self, access_key: str) -> Rates | None:
        """The key's own (rps, burst): `ratelimit.overrides` first, then IAM's per-user setting; None = defaults."""
        found = self._overrides.get(access_key)
        if found is None and self.iam_rates is not None:
            found = self.iam_rates(access_key)
        return found

    def _exempt_ip(self, client_ip: str) -> bool:
        if not self._exempt_nets:
            return False
        known = self._exempt_ips.get(client_ip)
        if known is None:
            try:
                addr = ipaddress.ip_address(client_ip)
                known = any(addr.version == n.version and addr in n for n in self._exempt_nets)
            except ValueError:
                known = False
            if len(self._exempt_ips) >= _EXEMPT_CACHE:
                self._exempt_ips.clear()
            self._exempt_ips[client_ip] = known
        return known

    def check(self, access_key: str, client_ip: str) -> float:
        """0.0 when the request may proceed (one token spent), else the seconds until it could.
        `access_key` is the key whose signature verified, "" for anonymous or failed-signature requests."""
        if (access_key and access_key in self._exempt_keys) or self._exempt_ip(client_ip):
            return 0.0
        config = self._config
        if access_key:
            rate, burst = self.override_for(access_key) or (config.per_key_rps, config.per_key_burst)
            return self._table.take(KIND_KEY, access_key, rate, burst, self._clock())
        return self._table.take(KIND_IP, client_ip, config.per_ip_rps, config.per_ip_burst, self._clock())
