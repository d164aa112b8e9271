"""The admin API: health, readiness per component, lookups by CID and Prometheus metrics (loopback by default)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from quart import Quart, Response, request

from appliance.api.access import ListenerAccess
from appliance.api.admin.auth import AdminAuth, register_auth
from appliance.api.admin.auth_routes import register_auth_routes
from appliance.api.admin.errors import register_error_handlers
from appliance.api.admin.iam import register_iam_routes
from appliance.api.admin.pin_ops import register_pin_op_routes
from appliance.api.admin.pins import register_pin_routes
from appliance.api.admin.scrub import ScrubMetrics, register_scrub_routes
from appliance.api.admin.system_metrics import SystemMetrics
from appliance.api.error_text import log_server_error, new_request_id
from appliance.components import ContentStore, MetadataStore, Pinner, ScrubStore
from appliance.errors import BackendUnavailable
from appliance.metrics import collector_registry, multiprocess_dir
from appliance.model import Cid
from appliance.service.iam import IamService
from appliance.service.objects import ObjectService
from appliance.service.pin_batch import BatchRunner
from appliance.service.pin_dynamic import HotColdPolicy
from appliance.service.pin_orchestrator import PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.service.pin_rebalance import Rebalancer
from appliance.service.pin_reconcile import Reconciler
from appliance.service.scrub import Scrubber
from appliance.service.unpinner import Unpinner

__all__ = ["AdminState", "create_admin_app"]

_JSON = dict[str, Any]

log = logging.getLogger("appliance.admin")


@dataclass(frozen=True, slots=True)
class AdminState:
    """What the admin API reads, built by the composition root (in the main process)."""

    objects: ObjectService
    content: ContentStore
    store: MetadataStore
    unpinner: Unpinner
    # None when the S3 workers serve, else why not (the main process knows); no check when absent.
    workers: Callable[[], str | None] | None = None
    check_timeout: float = field(default=5.0)  # seconds one readiness probe may take
    # Pins (routes in pins.py); all three or none.
    pinner: Pinner | None = None
    policies: PolicyBook | None = None
    orchestrator: PinOrchestrator | None = None
    # Jobs over many CIDs (routes in pin_ops.py); each optional.
    reconciler: Reconciler | None = None
    rebalancer: Rebalancer | None = None
    dynamic: HotColdPolicy | None = None
    batches: BatchRunner | None = None
    # Scrub and the damage reports (routes and metrics in scrub.py); the store must then be a ScrubStore.
    scrubber: Scrubber | None = None
    # System gauges (system_metrics.py): the state dir's disk, the (name, PEM file) of each configured certificate.
    state_dir: str = ""
    certificates: tuple[tuple[str, str], ...] = ()
    # IAM users, groups, keys and policies (routes in iam.py).
    iam: IamService | None = None
    # Who may call the admin API at all (admin.allow_cidrs/deny_cidrs/trusted_proxies), checked before anything.
    access: ListenerAccess = field(default_factory=ListenerAccess)
    # More Prometheus collectors for /metrics (the rate limiter's shared table).
    collectors: tuple[Collector, ...] = ()


class _Collector:
    """Prometheus collector over the unpinner's and the orchestrator's counters and the last measured depths."""

    def __init__(self, unpinner: Unpinner, orchestrator: PinOrchestrator | None) -> None:
        self._unpinner = unpinner
        self._orchestrator = orchestrator
        self.queue_depth = 0
        self.outbox_depth = 0
        self.damaged_blocks = 0
        self.damage_totals: dict[str, int] = {}

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("s3ipfs_unpin_queue_depth", "CIDs waiting to be unpinned.", value=self.queue_depth)
        yield CounterMetricFamily(
            "s3ipfs_unpinned", "CIDs unpinned since the daemon started.", value=self._unpinner.unpinned_total
        )
        yield CounterMetricFamily(
            "s3ipfs_unpin_errors", "Unpin attempts that failed and were rescheduled.", value=self._unpinner.errors_total
        )
        yield GaugeMetricFamily(
            "s3ipfs_damaged_blocks",
            "Blocks with an open damage report (failed verification or missing), until repaired or cleared.",
            value=self.damaged_blocks,
        )
        failures = CounterMetricFamily(
            "s3ipfs_content_verification_failures",
            "Blocks a node served that failed verification against their CID, by who found them (read, scrub).",
            labels=["source"],
        )
        for source in ("read", "scrub"):
            failures.add_metric([source], self.damage_totals.get(source, 0))
        yield failures
        orchestrator = self._orchestrator
        if orchestrator is not None:
            yield GaugeMetricFamily(
                "s3ipfs_pin_outbox_depth", "Pin jobs queued or in flight in the outbox.", value=self.outbox_depth
            )
            yield CounterMetricFamily(
                "s3ipfs_pin_jobs_completed", "Pin jobs that reached their policy.", value=orchestrator.completed_total
            )
            yield CounterMetricFamily(
                "s3ipfs_pin_errors", "Pin attempts that failed and were retried.", value=orchestrator.errors_total
            )
            yield CounterMetricFamily(
                "s3ipfs_replication_changes",
                "Replication changes queued by the dynamic policy and batch re-pins.",
                value=orchestrator.replication_changes_total,
            )


def _not_ready(what: str, error: Exception) -> str:
    """Why a component is not ready, without its internal detail (URLs, paths): that goes to the log under the id
    the reason names."""
    request_id = new_request_id()
    log_server_error(log, request_id, f"GET /ready: {what}", error)
    return f"{what} (request id {request_id}; details in the gateway's log)"


async def _check_ipfs(state: AdminState) -> str | None:
    """None when the IPFS node answers, else why not."""
    try:
        await asyncio.wait_for(state.content.ping(), timeout=state.check_timeout)
    except TimeoutError:
        return f"the IPFS node did not answer within {state.check_timeout:.0f} s"
    except BackendUnavailable as exc:
        return _not_ready("the IPFS node cannot be reached", exc)
    except Exception as exc:
        return _not_ready("the IPFS node answered with an error", exc)
    return None


async def _check_cluster(state: AdminState) -> str | None:
    """None when the IPFS-Cluster REST API lists its peers, else why not."""
    assert state.pinner is not None
    try:
        await asyncio.wait_for(state.pinner.peers(), timeout=state.check_timeout)
    except TimeoutError:
        return f"the IPFS cluster did not answer within {state.check_timeout:.0f} s"
    except BackendUnavailable as exc:
        return _not_ready("the IPFS cluster cannot be reached", exc)
    except Exception as exc:
        return _not_ready("the IPFS cluster answered with an error", exc)
    return None


async def _check_metadata(state: AdminState) -> str | None:
    """None when the metadata store answers a read, else why not."""
    try:
        await asyncio.wait_for(asyncio.to_thread(state.store.schema_version), timeout=state.check_timeout)
    except TimeoutError:
        return f"the metadata store did not answer within {state.check_timeout:.0f} s"
    except Exception as exc:  # any failure to read means not ready
        return _not_ready("the metadata store cannot be read", exc)
    return None


def create_admin_app(state: AdminState, auth: AdminAuth) -> Quart:
    """The admin ASGI app; the caller owns the state's lifetimes. Every route but /health needs a token (auth.py)."""
    app = Quart(__name__)
    register_error_handlers(app)

    @app.before_request
    async def _admit() -> tuple[_JSON, int] | None:
        _client, allowed = state.access.admit(request.scope)
        return None if allowed else ({"error": "access denied"}, 403)

    register_auth(app, auth)
    register_auth_routes(app, auth)
    registry = collector_registry()  # every process's S3, cache, IPFS, cluster and LMDB metrics (metrics.py)
    for extra in state.collectors:
        registry.register(extra)
    collector = _Collector(state.unpinner, state.orchestrator)
    registry.register(collector)
    system = SystemMetrics(
        state.store, state.content, state.pinner, state.state_dir, state.certificates, state.check_timeout
    )
    registry.register(system)
    if state.pinner is not None and state.policies is not None and state.orchestrator is not None:
        if multiprocess_dir() is None:  # in multi-process mode its samples are in the files already
            registry.register(state.orchestrator.duration)
        register_pin_routes(app, state.store, state.pinner, state.policies, state.orchestrator)
        register_pin_op_routes(
            app,
            reconciler=state.reconciler,
            rebalancer=state.rebalancer,
            dynamic=state.dynamic,
            batches=state.batches,
        )

    scrub_metrics: ScrubMetrics | None = None
    if state.scrubber is not None:
        scrub_store: ScrubStore = state.store  # type: ignore[assignment]  # the LMDB store is both
        scrub_metrics = ScrubMetrics(state.scrubber, scrub_store)
        registry.register(scrub_metrics)
        register_scrub_routes(app, state.scrubber, scrub_store)

    if state.iam is not None:
        register_iam_routes(app, state.iam)

    @app.get("/health")
    async def health() -> tuple[_JSON, int]:
        return {"status": "ok"}, 200

    @app.get("/ready")
    async def ready() -> tuple[_JSON, int]:
        ipfs, metadata = await asyncio.gather(_check_ipfs(state), _check_metadata(state))
        reasons = {"ipfs": ipfs, "metadata": metadata}
        if state.pinner is not None and state.pinner.kind == "cluster":
            reasons["cluster"] = await _check_cluster(state)
        if state.workers is not None:
            reasons["workers"] = state.workers()
        components: dict[str, _JSON] = {
            name: {"ready": reason is None, **({"reason": reason} if reason else {})}
            for name, reason in reasons.items()
        }
        not_ready = [name for name, info in components.items() if not info["ready"]]
        body: _JSON = {"status": "not ready" if not_ready else "ready", "components": components}
        if not_ready:
            body["not_ready"] = not_ready
            return body, 503
        return body, 200

    @app.get("/objects/by-cid/<cid>")
    async def objects_by_cid(cid: str) -> tuple[_JSON | list[_JSON], int]:
        try:
            wanted = Cid.normalise(cid)
        except ValueError:
            return {"error": f"not a CID: {cid[:100]!r}"}, 400
        found = await state.objects.objects_by_cid(wanted)
        return [{"bucket": bucket, "key": key} for bucket, key in found], 200

    @app.get("/metrics")
    async def metrics() -> Response:
        collector.queue_depth = await asyncio.to_thread(state.store.unpin_queue_depth)
        collector.outbox_depth = await asyncio.to_thread(state.store.pin_outbox_depth)
        collector.damaged_blocks = await asyncio.to_thread(state.store.damage_count)
        collector.damage_totals = await asyncio.to_thread(state.store.damage_totals)
        if scrub_metrics is not None:
            await scrub_metrics.refresh()
        await system.refresh()
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return app
