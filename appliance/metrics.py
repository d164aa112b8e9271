"""Every Prometheus metric the appliance's processes update, defined once, and the multi-process plumbing.

The gateway runs one main process and N S3 worker processes (daemon.py). Each process writes its samples to
memory-mapped files in one directory (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`), which the
admin API in the main process sums at scrape time. The daemon wipes the directory at start; a worker that exits keeps
its counter and histogram files (its counts stay in the sums, so counters never go backwards when a worker is
restarted) while its live gauges are dropped (`process_dead`). Outside the daemon (tests, the CLI) the metrics are
plain in-process values and `collector()` returns them.

Label sets are bounded: actions are the fixed S3 handler names, methods are RPC command names and routes; never a
bucket, key or CID.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from appliance.errors import AccessForbidden, AuthError

__all__ = [
    "CACHE_BYTES",
    "CACHE_EVICTIONS",
    "CACHE_HITS",
    "CACHE_MISSES",
    "CLUSTER_DURATION",
    "CLUSTER_ERRORS",
    "CLUSTER_REQUESTS",
    "IPFS_RPC_DURATION",
    "IPFS_RPC_ERRORS",
    "IPFS_RPC_REQUESTS",
    "LMDB_WRITE_DURATION",
    "S3_ACTIVE",
    "S3_AUTH_FAILURES",
    "S3_DURATION",
    "S3_RECEIVED_BYTES",
    "S3_REQUESTS",
    "S3_SENT_BYTES",
    "S3_THROTTLED",
    "ENV_VAR",
    "S3Observation",
    "collector_registry",
    "count_cluster_call",
    "count_ipfs_call",
    "multiprocess_dir",
    "observe_s3_request",
    "prepare_multiprocess",
    "process_dead",
    "s3_action",
    "s3_error",
]

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

# ---- S3 front end (worker processes) --------------------------------------------------------------------------

S3_REQUESTS = Counter(
    "s3ipfs_s3_requests",
    "S3 requests answered, by action and status class (2xx, 3xx, 4xx, 5xx).",
    ["action", "status_class"],
)
S3_DURATION = Histogram(
    "s3ipfs_s3_request_duration_seconds",
    "Time to the response's headers of S3 requests, by action.",
    ["action"],
    buckets=_LATENCY,
)
S3_RECEIVED_BYTES = Counter(
    "s3ipfs_s3_received_bytes", "Request body bytes announced by Content-Length, by action.", ["action"]
)
S3_SENT_BYTES = Counter(
    "s3ipfs_s3_sent_bytes", "Response body bytes announced by Content-Length, by action.", ["action"]
)
S3_ACTIVE = Gauge(
    "s3ipfs_s3_active_requests",
    "S3 requests being handled now (summed over live workers).",
    multiprocess_mode="livesum",
)
S3_AUTH_FAILURES = Counter(
    "s3ipfs_s3_auth_failures",
    "S3 requests refused by authentication or authorization, by S3 error code.",
    ["code"],
)
# Incremented by the rate limiter (api/s3): one per request answered SlowDown/503 because of a limit.
S3_THROTTLED = Counter("s3ipfs_s3_throttled_requests", "S3 requests refused by a rate limit.")

# ---- caches (worker processes) ----------------------------------------------------------------------------------

CACHE_HITS = Counter("s3ipfs_cache_hits", "Cache lookups that found the bytes, by layer.", ["layer"])
CACHE_MISSES = Counter("s3ipfs_cache_misses", "Cache lookups that did not, by layer.", ["layer"])
CACHE_EVICTIONS = Counter("s3ipfs_cache_evictions", "Items evicted to stay within the budget, by layer.", ["layer"])
CACHE_BYTES = Gauge(
    "s3ipfs_cache_bytes",
    "Bytes held by the cache, by layer (summed over live workers).",
    ["layer"],
    multiprocess_mode="livesum",
)

# ---- external daemons (every process) ---------------------------------------------------------------------------

IPFS_RPC_REQUESTS = Counter("s3ipfs_ipfs_rpc_requests", "Kubo RPC calls, by command.", ["method"])
IPFS_RPC_ERRORS = Counter(
    "s3ipfs_ipfs_rpc_errors",
    "Kubo RPC calls that failed, by command and kind (unavailable, error).",
    ["method", "kind"],
)
IPFS_RPC_DURATION = Histogram(
    "s3ipfs_ipfs_rpc_duration_seconds",
    "Time to the node's response headers of Kubo RPC calls, by command.",
    ["method"],
    buckets=_LATENCY,
)
CLUSTER_REQUESTS = Counter(
    "s3ipfs_cluster_requests", "IPFS-Cluster REST calls, by route (method and first path segment).", ["route"]
)
CLUSTER_ERRORS = Counter(
    "s3ipfs_cluster_errors",
    "IPFS-Cluster REST calls that failed, by route and kind (unavailable, error).",
    ["route", "kind"],
)
CLUSTER_DURATION = Histogram(
    "s3ipfs_cluster_request_duration_seconds",
    "Time to the cluster's response headers, by route.",
    ["route"],
    buckets=_LATENCY,
)

# ---- metadata store (every process) -----------------------------------------------------------------------------

LMDB_WRITE_DURATION = Histogram(
    "s3ipfs_lmdb_write_txn_duration_seconds",
    "Duration of LMDB write transactions, commit included.",
    buckets=_FAST,
)

_ALL: tuple[MetricWrapperBase, ...] = (
    S3_REQUESTS, S3_DURATION, S3_RECEIVED_BYTES, S3_SENT_BYTES, S3_ACTIVE, S3_AUTH_FAILURES, S3_THROTTLED,
    CACHE_HITS, CACHE_MISSES, CACHE_EVICTIONS, CACHE_BYTES,
    IPFS_RPC_REQUESTS, IPFS_RPC_ERRORS, IPFS_RPC_DURATION, CLUSTER_REQUESTS, CLUSTER_ERRORS, CLUSTER_DURATION,
    LMDB_WRITE_DURATION,
)  # fmt: skip


# ---- multi-process mode -------------------------------------------------------------------------------------------


def multiprocess_dir() -> Path | None:
    """The directory the processes write samples to, or None in single-process mode."""
    path = os.environ.get(ENV_VAR)
    return Path(path) if path else None


def prepare_multiprocess(directory: Path) -> None:
    """Start multi-process mode in the daemon's main process, before any worker is spawned: wipe `directory` (old
    processes' files would add stale counts), export it to the workers through the environment, and switch this
    process's metrics to file-backed values (prometheus-client chose in-memory values when it was imported)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    for metric in _ALL:
        metric.clear()  # labelled: children are made again, lazily, now file-backed (before the env var is set)
    os.environ[ENV_VAR] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    for metric in _ALL:
        if not metric._labelnames:
            metric._metric_init()  # type: ignore[no-untyped-call] # unlabelled metrics made their value at import: make it again, file-backed
    _precreate()


def process_dead(pid: int) -> None:
    """Drop the live gauges of a process that exited (its counters stay in the sums)."""
    directory = multiprocess_dir()
    if directory is not None:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def collector_registry() -> CollectorRegistry:
    """A registry with every process's samples: the multiprocess files' sums, or this process's own metrics."""
    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None:
        MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]
    else:
        for metric in _ALL:
            registry.register(metric)
    return registry


# ---- the S3 request hook ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class S3Observation:
    """What dispatch learns about the request being handled: its action, the error it ended with."""

    action: str = "unknown"  # before routing (a parse or authentication failure) the action is unknown
    auth_failure: str = ""


_current: ContextVar[S3Observation | None] = ContextVar("s3ipfs_s3_observation", default=None)


def s3_action(action: str) -> None:
    """Record the routed action of the request being handled (a fixed handler name)."""
    observation = _current.get()
    if observation is not None:
        observation.action = action


def s3_error(error: BaseException) -> None:
    """Record the error the request ended with; authentication/authorization failures are counted by S3 code
    (the error classes are named after their codes; a bare AuthError answers AccessDenied)."""
    observation = _current.get()
    if observation is not None and isinstance(error, AuthError | AccessForbidden):
        observation.auth_failure = "AccessDenied" if type(error) is AuthError else type(error).__name__


def _length(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() else 0


@contextmanager
def observe_s3_request(header: Callable[[str], str | None]) -> Iterator[_Finish]:
    """Count one S3 request: active while inside; call the yielded function with the response's status and
    Content-Length. `header` looks a request header up. Bytes in are the announced body length (the decoded one
    of an aws-chunked body)."""
    observation = S3Observation()
    token = _current.set(observation)
    started = time.perf_counter()
    S3_ACTIVE.inc()
    announced = header("x-amz-decoded-content-length") or header("content-length")
    finish = _Finish(observation, started, _length(announced))
    try:
        yield finish
    finally:
        S3_ACTIVE.dec()
        _current.reset(token)
        if not finish.done:
            finish(500, None)


class _Finish:
    """Closes an observation with the response (once)."""

    __slots__ = ("done", "observation", "received", "started")

    def __init__(self, observation: S3Observation, started: float, received: int) -> None:
        self.observation = observation
        self.started = started
        self.received = received
        self.done = False

    def __call__(self, status: int, content_length: str | None) -> None:
        if self.done:
            return
        self.done = True
        action = self.observation.action
        S3_REQUESTS.labels(action, f"{status // 100}xx").inc()
        S3_DURATION.labels(action).observe(time.perf_counter() - self.started)
        if self.received:
            S3_RECEIVED_BYTES.labels(action).inc(self.received)
        sent = _length(content_length)
        if sent:
            S3_SENT_BYTES.labels(action).inc(sent)
        if self.observation.auth_failure:
            S3_AUTH_FAILURES.labels(self.observation.auth_failure).inc()


def count_ipfs_call(method: str) -> None:
    """Count one Kubo RPC call; its error series start at 0 with it (an error ratio then reads 0, not nothing)."""
    IPFS_RPC_REQUESTS.labels(method).inc()
    for kind in _ERROR_KINDS:
        IPFS_RPC_ERRORS.labels(method, kind)


def count_cluster_call(route: str) -> None:
    """Count one IPFS-Cluster REST call; its error series start at 0 with it."""
    CLUSTER_REQUESTS.labels(route).inc()
    for kind in _ERROR_KINDS:
        CLUSTER_ERRORS.labels(route, kind)


_ERROR_KINDS = ("unavailable", "error")


def _precreate() -> None:
    """Make the bounded label sets dashboards read, so a quiet appliance exports zeros rather than nothing."""
    for metric in (CACHE_HITS, CACHE_MISSES, CACHE_EVICTIONS, CACHE_BYTES):
        metric.labels("l1")


_precreate()
