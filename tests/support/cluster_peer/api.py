"""The REST API routes (`api/rest/restapi.go` `routes()`), auth, strict slashes, and the `/_test/faults` control
route, over the cluster in cluster.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from tests.support.cluster_peer.auth import WWW_AUTHENTICATE, check_auth, make_token
from tests.support.cluster_peer.cluster import Cluster, KuboError
from tests.support.cluster_peer.faults import Faults
from tests.support.cluster_peer.shapes import VERSION, ApiError, PinOptions, check_cid, expand_filter
from tests.support.cluster_peer.wire import Reply, Request, StreamAbort, StreamReply

__all__ = ["Api"]

_PIN_TYPES = frozenset({"pin", "meta-pin", "clusterdag-pin", "shard-pin", "all"})
_MALFORMED = b'{"cid": "bafy'
_PARALLEL = 8


def _error(code: int, message: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(code, {"code": code, "message": message}, headers=headers or [])


class Api:
    def __init__(self, cluster: Cluster, faults: Faults, credentials: Mapping[str, str] | None) -> None:
        self.cluster, self.faults, self.credentials = cluster, faults, credentials

    async def __call__(self, request: Request) -> Reply | StreamReply:
        if request.path == "/_test/faults":
            return self.control(request)
        if request.path == "/health" and request.method == "GET":
            return Reply(204)
        if request.method == "OPTIONS":
            return Reply(204)
        if len(request.path) > 1 and request.path.endswith("/"):
            return Reply(307, raw=b"", headers=[("Location", request.raw_path.rstrip("/") or "/")])
        try:
            user = check_auth(request.headers.get("authorization", ""), self.credentials)
        except ApiError as exc:
            return _error(exc.code, exc.message, [("WWW-Authenticate", WWW_AUTHENTICATE)])
        if self.faults.api_delay > 0:
            await asyncio.sleep(self.faults.api_delay)
        if self.faults.fail_next:
            code, message = self.faults.fail_next.pop(0)
            return _error(code, message)
        if self.faults.malformed_next > 0:
            self.faults.malformed_next -= 1
            return Reply(200, raw=_MALFORMED)
        try:
            return await self.route(request, user)
        except ApiError as exc:
            return _error(exc.code, exc.message)
        except (KuboError, httpx.HTTPError) as exc:
            return _error(500, f"ipfs error: {str(exc)[:200] or type(exc).__name__}")

    def control(self, request: Request) -> Reply:
        try:
            if request.method == "POST":
                self.faults.merge(json.loads(request.body or b"{}"))
            elif request.method == "DELETE":
                self.faults.clear()
            elif request.method != "GET":
                return _error(405, "method not allowed")
        except ValueError:
            return _error(400, "faults must be JSON")
        except ApiError as exc:
            return _error(exc.code, exc.message)
        return Reply(200, self.faults.as_json())

    async def route(self, request: Request, user: str | None) -> Reply | StreamReply:
        method, parts = request.method, [p for p in request.path.split("/") if p != ""]
        c = self.cluster
        match method, parts:
            case "GET", ["id"]:
                return Reply(200, await c.peer_id_json(c.api_peer))
            case "GET", ["version"]:
                return Reply(200, {"version": VERSION})
            case "GET", ["peers"]:
                return self.stream(request, self._peers())
            case "GET", ["allocations"]:
                return self.stream(request, self._allocations(request.param("filter")))
            case "GET", ["allocations", cid]:
                cid = self._cid(cid)
                pin = c.state.pins.get(cid)
                if pin is None:
                    raise ApiError(404, "pin is not part of the pinset")
                return Reply(200, pin)
            case "GET", ["pins"]:
                return self.stream(request, self._statuses(request))
            case "POST", ["pins", "recover"]:
                return self.stream(request, self._recover_all(request.param("local") == "true"))
            case "GET", ["pins", cid]:
                cid = self._cid(cid)
                return Reply(200, await c.global_pin_info(cid, local=request.param("local") == "true"))
            case "POST", ["pins", cid]:
                return Reply(200, await c.pin(self._cid(cid), PinOptions.from_query(request.query)))
            case "DELETE", ["pins", cid]:
                return Reply(200, await c.unpin(self._cid(cid)))
            case "POST", ["pins", cid, "recover"]:
                info, _ = await c.recover(self._cid(cid), local=request.param("local") == "true")
                return Reply(200, info)
            case "POST" | "DELETE", ["pins", "ipfs" | "ipns" | "ipld" as key_type, *path] if path:
                cid = await self._resolve(key_type, path)
                if method == "POST":
                    return Reply(200, await c.pin(cid, PinOptions.from_query(request.query)))
                return Reply(200, await c.unpin(cid))
            case "GET", ["monitor", "metrics"]:
                return Reply(200, c.metric_names())
            case "GET", ["monitor", "metrics", name]:
                return Reply(200, await c.metrics(name))
            case "GET", ["health", "graph"]:
                return Reply(200, await c.graph())
            case "POST", ["token"]:
                if self.credentials is None or user is None:
                    raise ApiError(401, "unauthorized: basic auth is not configured")
                return Reply(200, {"token": make_token(user, self.credentials[user])})
        raise ApiError(404, "not found")

    def _cid(self, cid: str) -> str:
        cid = check_cid(cid)
        if cid in self.faults.reject:
            raise ApiError(*self.faults.reject[cid])
        return cid

    async def _resolve(self, key_type: str, path: list[str]) -> str:
        if key_type != "ipfs":
            raise ApiError(500, f"{key_type} paths are not supported by the test peer")
        if len(path) == 1:
            return self._cid(path[0])
        reply = await self.cluster.rpc(
            self.cluster.api_peer, "resolve", arg="/ipfs/" + "/".join(path), cid_base="base32"
        )
        return self._cid(str(reply.get("Path", "")).removeprefix("/ipfs/"))

    # ---- streams ----------------------------------------------------------------------------------

    def stream(self, request: Request, items: AsyncIterator[Any]) -> StreamReply:
        cut = self.faults.take_stream_cut(request.path)
        if cut is None:
            return StreamReply(items, self._status_error)

        async def cut_short() -> AsyncIterator[Any]:
            sent = 0
            async for item in items:
                if sent >= cut["after"]:
                    break
                yield item
                sent += 1
            if cut["abort"]:
                raise StreamAbort
            raise ApiError(500, cut["error"] or "stream cut by the test peer")

        return StreamReply(cut_short(), self._status_error)

    @staticmethod
    def _status_error(exc: Exception) -> tuple[int, str]:
        if isinstance(exc, ApiError):
            return exc.code, exc.message
        return 500, f"{type(exc).__name__}: {str(exc)[:200]}"

    async def _peers(self) -> AsyncIterator[Any]:
        for peer in self.cluster.peers:
            yield await self.cluster.peer_id_json(peer)

    async def _allocations(self, filter_value: str) -> AsyncIterator[Any]:
        if filter_value and not set(filter_value.split(",")) <= _PIN_TYPES:
            raise ApiError(400, "invalid filter value")
        for pin in list(self.cluster.state.pins.values()):
            yield pin  # every pin of the test peer has type "pin"

    async def _statuses(self, request: Request) -> AsyncIterator[Any]:
        wanted = expand_filter(request.param("filter")) if request.param("filter") else None
        local = request.param("local") == "true"
        cids_param = request.param("cids")
        cids = [self._cid(c) for c in cids_param.split(",") if c] if cids_param else list(self.cluster.state.pins)
        for start in range(0, len(cids), _PARALLEL):
            batch = cids[start : start + _PARALLEL]
            infos = await asyncio.gather(*(self.cluster.global_pin_info(cid, local=local) for cid in batch))
            for info in infos:
                if wanted is None or any(p["status"] in wanted for p in info["peer_map"].values()):
                    yield info

    async def _recover_all(self, local: bool) -> AsyncIterator[Any]:
        for cid in list(self.cluster.state.pins):
            info, requeued = await self.cluster.recover(cid, local=local)
            if requeued:
                yield info
