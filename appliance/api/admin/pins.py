"""Admin API routes for pins, replication policies and peers (JSON; loopback by default).

    GET    /pins?state=&after=&limit=        pin statuses in CID order ({"pins": [...], "next": cid|null})
    GET    /pins/summary                     counts per state, outbox depth, orchestrator counters
    GET    /pins/{cid}[?live=1]              the stored status, the outbox job, and (live) what the pinner reports now
    POST   /pins/{cid}/repin                 queue the CID's pin again with its bucket's current policy
    GET    /buckets/{bucket}/replication     the effective policy and whether the bucket has its own
    PUT    /buckets/{bucket}/replication     set it (JSON body: replication_min/max, ack, allocations | tags)
    DELETE /buckets/{bucket}/replication     back to the defaults of the config
    GET    /peers                            the pinner's peers (id, name, addresses, error, free space)

Errors are `{"error": message}` with 400 (bad input) or 404 (no such bucket/CID); a pinner that cannot be reached or
fails answers 503/502 with a generic message and a request id (errors.py), never the pinner's own text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from quart import Quart, request

from appliance.components import MetadataStore, Pinner
from appliance.errors import InvalidArgument, NoSuchBucket
from appliance.model import PIN_STATES, Cid, PinJob, PinRecord
from appliance.service.pin_orchestrator import PinOrchestrator
from appliance.service.pin_policy import PolicyBook, policy_document

__all__ = ["MAX_BODY", "job_document", "record_document", "register_pin_routes"]

_JSON = dict[str, Any]
MAX_BODY = 64 * 1024
_MAX_LIMIT = 10_000


def record_document(record: PinRecord) -> _JSON:
    doc = dataclasses.asdict(record)
    doc["peers"] = [{"peer": peer, "status": status, "error": error} for peer, status, error in record.peers]
    return doc


def job_document(job: PinJob) -> _JSON:
    return dataclasses.asdict(job)


def _error(message: str, status: int) -> tuple[_JSON, int]:
    return {"error": message}, status


def _cid(text: str) -> str:
    try:
        return Cid.normalise(text)
    except ValueError as exc:
        raise InvalidArgument(f"not a CID: {text[:100]!r}") from exc


def _limit(text: str | None) -> int:
    if text is None:
        return 1000
    if not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
        raise InvalidArgument(f"limit must be an integer from 1 to {_MAX_LIMIT}")
    return int(text)


async def read_json(max_body: int = MAX_BODY) -> Any:
    """The request's JSON body, at most `max_body` bytes; InvalidArgument otherwise."""
    length = request.content_length
    if length is not None and length > max_body:
        raise InvalidArgument(f"the body is larger than {max_body} bytes")
    body = bytearray()
    async for chunk in request.body:
        body += chunk
        if len(body) > max_body:
            raise InvalidArgument(f"the body is larger than {max_body} bytes")
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"the body is not JSON: {str(exc)[:100]}") from exc


def register_pin_routes(
    app: Quart, store: MetadataStore, pinner: Pinner, policies: PolicyBook, orchestrator: PinOrchestrator
) -> None:
    """Add the routes above to the admin app."""

    @app.get("/pins")
    async def list_pins() -> tuple[_JSON, int]:
        state = request.args.get("state", "")
        if state and state not in PIN_STATES:
            raise InvalidArgument(f"state must be one of {', '.join(PIN_STATES)}")
        after = request.args.get("after", "")
        limit = _limit(request.args.get("limit"))
        records = await asyncio.to_thread(store.pin_statuses, state=state, after=after, limit=limit)
        following = records[-1].cid if len(records) == limit else None
        return {"pins": [record_document(r) for r in records], "next": following}, 200

    @app.get("/pins/summary")
    async def summary() -> tuple[_JSON, int]:
        counts = await asyncio.to_thread(store.pin_state_counts)
        depth = await asyncio.to_thread(store.pin_outbox_depth)
        return {
            "pinner": pinner.kind,
            "states": counts,
            "outbox_depth": depth,
            "completed_total": orchestrator.completed_total,
            "errors_total": orchestrator.errors_total,
        }, 200

    @app.get("/pins/<cid>")
    async def pin_detail(cid: str) -> tuple[_JSON, int]:
        wanted = _cid(cid)
        record = await asyncio.to_thread(store.pin_status, wanted)
        job = await asyncio.to_thread(store.pin_job, wanted)
        if record is None and job is None:
            return _error(f"no pin is tracked for {wanted}", 404)
        doc: _JSON = {
            "cid": wanted,
            "status": record_document(record) if record else None,
            "job": job_document(job) if job else None,
        }
        if request.args.get("live") in ("1", "true"):
            report = await pinner.status(wanted)
            doc["live"] = {
                "pinned": report.pinned,
                "allocations": list(report.allocations),
                "peers": [{"peer": p, "status": s, "error": e} for p, s, e in report.peers],
            }
        return doc, 200

    @app.post("/pins/<cid>/repin")
    async def repin(cid: str) -> tuple[_JSON, int]:
        wanted = _cid(cid)
        queued = await asyncio.to_thread(store.queue_pins, [wanted], now=orchestrator.now())
        if not queued:
            return _error(f"no object references {wanted}", 404)
        orchestrator.wake()
        return {"queued": queued}, 202

    @app.get("/buckets/<bucket>/replication")
    async def get_policy(bucket: str) -> tuple[_JSON, int]:
        policy, own = await policies.lookup(bucket)
        return {"bucket": bucket, "own": own, "policy": policy_document(policy)}, 200

    @app.put("/buckets/<bucket>/replication")
    async def put_policy(bucket: str) -> tuple[_JSON, int]:
        data = await read_json()
        if await asyncio.to_thread(store.get_bucket, bucket) is None:
            raise NoSuchBucket(f"no such bucket: {bucket[:80]}")
        policy = await policies.put(bucket, data)
        return {"bucket": bucket, "own": True, "policy": policy_document(policy)}, 200

    @app.delete("/buckets/<bucket>/replication")
    async def delete_policy(bucket: str) -> tuple[_JSON, int]:
        await policies.clear(bucket)
        return {"bucket": bucket, "own": False, "policy": policy_document(policies.defaults)}, 200

    @app.get("/peers")
    async def peers() -> tuple[_JSON, int]:
        found = await pinner.peers()
        return {
            "pinner": pinner.kind,
            "peers": [
                {
                    "id": p.peer_id,
                    "name": p.name,
                    "addresses": list(p.addresses),
                    "error": p.error,
                    "freespace": p.freespace,
                    "tags": dict(p.tags),
                }
                for p in found
            ],
        }, 200
