"""Admin API routes for the pin jobs that act on many CIDs: reconcile, rebalance, the dynamic policy, batches.

    POST   /reconcile[?dry_run=1]        run one reconcile pass now (waits for a running one); the report
    GET    /reconcile                    the last report of a real (not dry) pass, 404 before the first
    POST   /rebalance[?dry_run=1]        plan (dry run) or make allocation moves off full/overloaded peers; the report
    GET    /rebalance                    the last report of a real pass, 404 before the first
    POST   /dynamic/run                  one pass of the hot/cold replication policy; what it raised and lowered
    POST   /batches                      start a batch: {"op": "repin", "bucket": B, "prefix": P, "policy": {...}?}
                                         or {"op": "pin" | "unpin", "cids": [...]}; 202 with the batch
    GET    /batches                      every batch remembered (newest first) with its progress
    GET    /batches/{id}                 one batch
    DELETE /batches/{id}                 cancel a running batch (409 when it is not running)

Errors are `{"error": message}` (errors.py): 400 bad input, 404 unknown; 503/502/500 with a generic message and a
request id when the pinner or the metadata store fails.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from quart import Quart, request

from appliance.api.admin.pins import read_json
from appliance.errors import InvalidArgument
from appliance.model import Cid
from appliance.service.pin_batch import MAX_CIDS, BatchRunner
from appliance.service.pin_dynamic import HotColdPolicy
from appliance.service.pin_rebalance import Rebalancer, RebalanceReport
from appliance.service.pin_reconcile import Reconciler

__all__ = ["MAX_BATCH_BODY", "register_pin_op_routes"]

_JSON = dict[str, Any]
MAX_BATCH_BODY = 8 * 1024 * 1024  # 100,000 CIDs of ~60 characters, quoted
_OPS = ("repin", "pin", "unpin")


def _dry_run() -> bool:
    value = request.args.get("dry_run")
    if value is None:
        return False
    value = value.lower()
    if value not in ("0", "1", "true", "false", ""):
        raise InvalidArgument("dry_run must be 1 or 0")
    return value in ("1", "true", "")  # a bare ?dry_run asks for a dry run too


def _rebalance_document(report: RebalanceReport) -> _JSON:
    return dataclasses.asdict(report)


def _cids(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidArgument("cids must be a non-empty list of CIDs")
    if len(value) > MAX_CIDS:
        raise InvalidArgument(f"cids lists more than {MAX_CIDS} CIDs; split the batch")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidArgument("every entry of cids must be a string")
        try:
            out.append(Cid.normalise(item))
        except ValueError as exc:
            raise InvalidArgument(f"not a CID: {item[:100]!r}") from exc
    return out


def _text(data: dict[str, Any], name: str, *, required: bool) -> str:
    value = data.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"{name} must be a {'non-empty ' if required else ''}string")
    return value


def register_pin_op_routes(
    app: Quart,
    *,
    reconciler: Reconciler | None,
    rebalancer: Rebalancer | None,
    dynamic: HotColdPolicy | None,
    batches: BatchRunner | None,
) -> None:
    """Add the routes above for the parts the composition root built (a missing part answers 404 with why)."""

    def _absent(what: str, why: str) -> tuple[_JSON, int]:
        return {"error": f"{what} is not available: {why}"}, 404

    @app.post("/reconcile")
    async def reconcile_now() -> tuple[_JSON, int]:
        if reconciler is None:
            return _absent("reconcile", "no pinner")
        report = await reconciler.run(dry_run=_dry_run())
        return report.document(), 200

    @app.get("/reconcile")
    async def reconcile_last() -> tuple[_JSON, int]:
        if reconciler is None or reconciler.last is None:
            return {"error": "no reconcile pass has run yet; POST /reconcile runs one"}, 404
        return {**reconciler.last.document(), "running": reconciler.running}, 200

    @app.post("/rebalance")
    async def rebalance_now() -> tuple[_JSON, int]:
        if rebalancer is None:
            return _absent("rebalancing", "it needs a cluster (cluster.endpoints)")
        report = await rebalancer.run(dry_run=_dry_run())
        return _rebalance_document(report), 200

    @app.get("/rebalance")
    async def rebalance_last() -> tuple[_JSON, int]:
        if rebalancer is None or rebalancer.last is None:
            return {"error": "no rebalancing pass has run yet; POST /rebalance runs one"}, 404
        return _rebalance_document(rebalancer.last), 200

    @app.post("/dynamic/run")
    async def dynamic_run() -> tuple[_JSON, int]:
        if dynamic is None:
            return _absent("the dynamic policy", "no pinner")
        result = await dynamic.run_once()
        return dataclasses.asdict(result), 200

    @app.post("/batches")
    async def start_batch() -> tuple[_JSON, int]:
        if batches is None:
            return _absent("batches", "no pinner")
        data = await read_json(MAX_BATCH_BODY)
        if not isinstance(data, dict):
            raise InvalidArgument('the body must be a JSON object like {"op": "pin", "cids": [...]}')
        op = data.get("op")
        if op not in _OPS:
            raise InvalidArgument(f"op must be one of {', '.join(_OPS)}")
        if op == "repin":
            unknown = set(data) - {"op", "bucket", "prefix", "policy"}
            if unknown:
                raise InvalidArgument(f"unknown fields for repin: {', '.join(sorted(unknown))[:200]}")
            batch = await batches.start_repin(
                _text(data, "bucket", required=True), _text(data, "prefix", required=False), data.get("policy")
            )
        else:
            unknown = set(data) - {"op", "cids"}
            if unknown:
                raise InvalidArgument(f"unknown fields for {op}: {', '.join(sorted(unknown))[:200]}")
            batch = batches.start_list(str(op), _cids(data.get("cids")))
        return batch.document(), 202

    @app.get("/batches")
    async def list_batches() -> tuple[_JSON, int]:
        if batches is None:
            return {"batches": []}, 200
        return {"batches": [b.document() for b in batches.batches()]}, 200

    @app.get("/batches/<batch_id>")
    async def get_batch(batch_id: str) -> tuple[_JSON, int]:
        batch = batches.get(batch_id) if batches is not None else None
        if batch is None:
            return {"error": f"no such batch: {batch_id[:40]!r}"}, 404
        return batch.document(), 200

    @app.delete("/batches/<batch_id>")
    async def cancel_batch(batch_id: str) -> tuple[_JSON, int]:
        batch = batches.get(batch_id) if batches is not None else None
        if batches is None or batch is None:
            return {"error": f"no such batch: {batch_id[:40]!r}"}, 404
        if not batches.cancel(batch_id):
            return {"error": f"batch {batch_id} is {batch.state}, not running"}, 409
        return {"id": batch_id, "cancelled": True}, 200
