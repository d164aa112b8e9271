"""/metrics for the rate limiter: refusals and buckets in use, read from the table the workers share."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from appliance.service.rate_table import RateTable

__all__ = ["RateLimitMetrics"]


class RateLimitMetrics:
    """A Prometheus collector over the shared table (the main process maps it too; no worker is asked)."""

    def __init__(self, table: RateTable, clock: Callable[[], float] = time.monotonic) -> None:
        self._table = table
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        stats = self._table.stats(self._clock())
        throttled = CounterMetricFamily(
            "s3ipfs_ratelimit_throttled",
            "S3 requests refused with 503 SlowDown, by the bucket that was empty (key: access key, ip: address).",
            labels=["bucket"],
        )
        throttled.add_metric(["key"], stats.throttled_key)
        throttled.add_metric(["ip"], stats.throttled_ip)
        yield throttled
        tracked = GaugeMetricFamily(
            "s3ipfs_ratelimit_tracked",
            "Access keys and client addresses whose bucket is in use (not yet full again).",
            labels=["bucket"],
        )
        tracked.add_metric(["key"], stats.tracked_key)
        tracked.add_metric(["ip"], stats.tracked_ip)
        yield tracked
