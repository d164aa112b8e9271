"""Admin API routes and metrics for scrub and the damaged-block reports (docs/scrub.md).

    POST   /scrub            start a run: JSON {"bucket": B, "prefix": P, "rate": N, "repair": bool}, every field
                             optional (an empty body: the whole store at the configured rate); 202 with its progress,
                             409 when one is running
    GET    /scrub            {"running", "current": progress with ETA | null, "last": summary | null, "history": [...]}
    DELETE /scrub            cancel the running run (409 when none runs)
    GET    /damage?limit=N   the open damaged-block reports ({"count", "reports": [...]}), in block CID order

Errors are `{"error": message}`: 400 bad input, 404 unknown bucket, 409 busy / nothing to cancel, 415 a body that is
not JSON, 503 the metadata store or the IPFS node cannot be reached. They are answered here, whatever error handlers
the app has, so no input reaches a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from quart import Quart, request

from appliance.api.admin.pins import read_json
from appliance.components import ScrubStore
from appliance.errors import (
    BackendUnavailable,
    InvalidArgument,
    InvalidBucketName,
    NoSuchBucket,
    S3IpfsError,
)
from appliance.model import validate_bucket_name
from appliance.service.scrub import Scrubber, ScrubBusy
from appliance.service.scrub_run import MAX_RATE, ScrubOptions

__all__ = ["ScrubMetrics", "register_scrub_routes"]

_JSON = dict[str, Any]
_MAX_BODY = 16 * 1024
_MAX_PREFIX = 1024
_MAX_LIMIT = 10_000
_FIELDS = frozenset({"bucket", "prefix", "rate", "repair"})


def _error(message: str, status: int) -> tuple[_JSON, int]:
    return {"error": message}, status


def _options(data: Any, defaults: ScrubOptions) -> ScrubOptions:
    """The run's options from the request body; InvalidArgument (or InvalidBucketName) naming the bad field."""
    if data is None:
        return defaults
    if not isinstance(data, dict):
        raise InvalidArgument('the body must be a JSON object like {"bucket": "photos", "rate": 50, "repair": true}')
    unknown = set(data) - _FIELDS
    if unknown:
        raise InvalidArgument(f"unknown fields: {', '.join(sorted(str(u)[:40] for u in unknown))[:200]}")
    bucket = data.get("bucket", "")
    if not isinstance(bucket, str):
        raise InvalidArgument("bucket must be a string")
    if bucket:
        validate_bucket_name(bucket)
    prefix = data.get("prefix", "")
    if not isinstance(prefix, str):
        raise InvalidArgument("prefix must be a string")
    if len(prefix.encode("utf-8", "surrogatepass")) > _MAX_PREFIX:
        raise InvalidArgument(f"prefix is longer than {_MAX_PREFIX} bytes")
    if prefix and not bucket:
        raise InvalidArgument("a prefix needs a bucket")
    rate = data.get("rate", defaults.rate)
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise InvalidArgument(f"rate must be a number of objects per second (0 < rate <= {MAX_RATE:g})")
    repair = data.get("repair", False)
    if not isinstance(repair, bool):
        raise InvalidArgument("repair must be true or false")
    try:
        return ScrubOptions(bucket=bucket, prefix=prefix, rate=float(rate), repair=repair)
    except OverflowError as exc:
        raise InvalidArgument(f"rate is out of range (0 < rate <= {MAX_RATE:g})") from exc
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from exc


async def _body() -> Any:
    """The JSON body, or None when there is none; 415 for another content type (raised as _WrongType)."""
    length = request.content_length
    kind = (request.mimetype or "").lower()
    if length == 0 or (length is None and not kind and not request.headers.get("Transfer-Encoding")):
        return None
    if kind != "application/json":
        raise _WrongType(f"the body must be application/json, not {kind[:60] or 'untyped'}")
    return await read_json(_MAX_BODY)


class _WrongType(Exception):
    pass


def register_scrub_routes(app: Quart, scrubber: Scrubber, store: ScrubStore) -> None:
    """Add the routes above to the admin app."""

    @app.post("/scrub")
    async def start_scrub() -> tuple[_JSON, int]:
        try:
            options = _options(await _body(), scrubber.default_options)
            run = await scrubber.start(options)
        except _WrongType as exc:
            return _error(str(exc), 415)
        except ScrubBusy as exc:
            return _error(exc.message, 409)
        except NoSuchBucket as exc:
            return _error(exc.message, 404)
        except (InvalidArgument, InvalidBucketName) as exc:
            return _error(exc.message, 400)
        except BackendUnavailable as exc:
            return _error(exc.message, 503)
        except S3IpfsError as exc:
            return _error(exc.message, 502)
        return {"running": True, "current": run.progress(run.started)}, 202

    @app.get("/scrub")
    async def scrub_status() -> tuple[_JSON, int]:
        try:
            return await scrubber.status(), 200
        except S3IpfsError as exc:
            return _error(exc.message, 503)

    @app.delete("/scrub")
    async def cancel_scrub() -> tuple[_JSON, int]:
        run = scrubber.current
        if not scrubber.cancel() or run is None:
            return _error("no scrub is running", 409)
        return {"id": run.id, "cancelled": True}, 200

    @app.get("/damage")
    async def damage() -> tuple[_JSON, int]:
        text = request.args.get("limit", "1000")
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
            return _error(f"limit must be an integer from 1 to {_MAX_LIMIT}", 400)
        try:
            reports = await asyncio.to_thread(store.damage_reports, int(text))
            count = await asyncio.to_thread(store.damage_count)
        except S3IpfsError as exc:
            return _error(exc.message, 503)
        return {"count": count, "reports": [dataclasses.asdict(r) for r in reports]}, 200


class ScrubMetrics:
    """Prometheus collector for scrub (the app's own collector has `s3ipfs_damaged_blocks`, the open reports);
    `refresh` reads the store (off the event loop) before each scrape."""

    def __init__(self, scrubber: Scrubber, store: ScrubStore) -> None:
        self._scrubber = scrubber
        self._store = store
        self.last_found = 0

    async def refresh(self) -> None:
        run = self._scrubber.current
        if self._scrubber.running and run is not None:
            self.last_found = run.counters["damaged"] + run.counters["missing"]
            return
        history = await asyncio.to_thread(self._store.scrub_history, 1)
        self.last_found = int(history[0].get("damaged", 0)) + int(history[0].get("missing", 0)) if history else 0

    def collect(self) -> Iterable[Metric]:
        scrubber = self._scrubber
        run = scrubber.current
        running = scrubber.running and run is not None
        yield GaugeMetricFamily("s3ipfs_scrub_running", "1 while a scrub run is going on.", value=int(running))
        yield CounterMetricFamily(
            "s3ipfs_scrub_objects_checked",
            "Objects whose blocks scrub read since the daemon started.",
            value=scrubber.objects_checked_total,
        )
        yield GaugeMetricFamily(
            "s3ipfs_scrub_damaged_blocks",
            "Missing or damaged blocks the running (else the last) scrub run found.",
            value=self.last_found,
        )
        yield CounterMetricFamily(
            "s3ipfs_scrub_faults_found",
            "Missing or damaged blocks scrub found since the daemon started.",
            value=scrubber.damaged_blocks_total,
        )
        done = run.done if running and run is not None else 0
        total = max(run.total, run.done) if running and run is not None else 0
        yield GaugeMetricFamily("s3ipfs_scrub_progress_items", "Items the running scrub has done.", value=done)
        yield GaugeMetricFamily("s3ipfs_scrub_total_items", "Items the running scrub walks (estimate).", value=total)
        yield GaugeMetricFamily(
            "s3ipfs_scrub_progress_ratio",
            "Fraction of the running scrub done (0 when none runs).",
            value=done / total if total else 0.0,
        )
