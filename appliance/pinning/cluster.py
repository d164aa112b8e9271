"""IPFS-Cluster REST API client (port 9094), with one `_request` chokepoint and endpoint failover.

`_request` owns URLs, auth, timeouts, failover and error translation:

- the endpoints are tried in order, starting from the last one that answered; a connection error, a timeout or
  an HTTP 5xx moves on to the next endpoint (every call here is idempotent, so a retry is safe);
- every endpoint unreachable or 502/503/504 → `BackendUnavailable`; a 5xx that carries the cluster's own
  `{"code","message"}` (e.g. "not enough peers to allocate CID") and no endpoint doing better → `ClusterError`,
  except deadline messages → `BackendUnavailable`;
- a 3xx/4xx → `ClusterError` (a `BackendError`) carrying the cluster's `code` and `message`.

Failover happens only before a response is accepted: once a 2xx arrives its body belongs to the caller, and a
failure while reading it is translated (dropped/timed out → `BackendUnavailable`) but not retried.

Stream endpoints answer NDJSON (one object a line, each ended by `\\n`); an error after the first item travels in
the `X-Stream-Error` HTTP trailer, which httpx's own transport (httpcore) discards. So streams go through the same
chokepoint on a second httpx client whose transport (`TrailerTransport`, trailers.py) keeps the trailer fields in
`response.extensions["trailers"]`. A stream is read
line by line (at most 1 MiB a line); a non-empty `X-Stream-Error` trailer, an error object `{"code","message"}` in
the stream, a malformed line or a last line without its newline (the stream was cut) are all `BackendError`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import httpx

from appliance import metrics
from appliance.errors import BackendError, BackendUnavailable
from appliance.httpio import read_limited
from appliance.pinning.trailers import TrailerTransport

__all__ = [
    "ERROR_STATUSES",
    "TRACKER_STATUSES",
    "ClusterClient",
    "ClusterError",
    "PinStatus",
]

_MAX_REPLY = 8 * 1024 * 1024  # bound on a single JSON reply read into memory
_MAX_LINE = 1024 * 1024  # bound on one NDJSON line
_MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 300
_STREAM_ERROR = b"x-stream-error"
_UNAVAILABLE_STATUS = frozenset({502, 503, 504})
_TIMEOUT_WORDS = ("timed out", "deadline exceeded")

#: Every `TrackerStatus` the cluster reports or accepts as a `filter=` value (`error` and `queued` are groups).
TRACKER_STATUSES = frozenset(
    {
        "undefined",
        "cluster_error",
        "pin_error",
        "unpin_error",
        "error",
        "pinned",
        "pinning",
        "unpinning",
        "unpinned",
        "remote",
        "pin_queued",
        "unpin_queued",
        "queued",
        "sharded",
        "unexpectedly_unpinned",
    }
)
#: Per-peer statuses counted as errors: the go client's hard errors plus a pin Kubo lost (`recover` fixes it).
ERROR_STATUSES = frozenset({"undefined", "cluster_error", "pin_error", "unpin_error", "unexpectedly_unpinned"})

_PIN_FILTERS = frozenset({"pin", "meta-pin", "clusterdag-pin", "shard-pin", "all"})
_NOT_IN_PINSET = "pin is not part of the pinset"

Params = Sequence[tuple[str, str]]


class ClusterError(BackendError):
    """The cluster answered with an error: its HTTP `code` and its `message` (`{"code","message"}` body)."""

    def __init__(self, message: str, *, code: int, cluster_message: str) -> None:
        super().__init__(message)
        self.code = code
        self.cluster_message = cluster_message


@dataclass(frozen=True, slots=True)
class PinStatus:
    """One CID's `GlobalPinInfo`: the per-peer `{peer_id: (status, error)}` map and its summary.

    `allocations` empty means "pin everywhere". A CID that is not in the pinset comes back with every peer
    `unpinned` (the cluster answers 200, not 404), so it is never `fully_pinned`."""

    cid: str
    name: str
    allocations: tuple[str, ...]
    peers: Mapping[str, tuple[str, str]]
    metadata: Mapping[str, str]

    @property
    def pinned(self) -> int:
        """How many peers report `pinned`."""
        return sum(1 for status, _ in self.peers.values() if status == "pinned")

    @property
    def errors(self) -> int:
        """How many peers report an error status (`ERROR_STATUSES`)."""
        return sum(1 for status, _ in self.peers.values() if status in ERROR_STATUSES)

    @property
    def fully_pinned(self) -> bool:
        """Every allocated peer is `pinned`; with no allocations, every peer that is not `remote` (and one at
        least)."""
        if self.allocations:
            return all(self.peers.get(peer, ("", ""))[0] == "pinned" for peer in self.allocations)
        holders = [status for status, _ in self.peers.values() if status != "remote"]
        return bool(holders) and all(status == "pinned" for status in holders)


def _str(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BackendError(f"IPFS Cluster returned a non-string {what}: {str(value)[:40]!r}")
    return value


def _parse_pin_status(data: Any) -> PinStatus:
    """A `GlobalPinInfo` object → PinStatus; anything malformed is a BackendError."""
    if not isinstance(data, dict):
        raise BackendError("IPFS Cluster returned a pin status that is not an object")
    cid = _str(data.get("cid"), "cid")
    if not cid:
        raise BackendError("IPFS Cluster returned a pin status without a cid")
    # Go encodes a nil slice or map as null
    allocations = [] if data.get("allocations") is None else data["allocations"]
    peer_map = {} if data.get("peer_map") is None else data["peer_map"]
    metadata = {} if data.get("metadata") is None else data["metadata"]
    if not isinstance(allocations, list) or not isinstance(peer_map, dict) or not isinstance(metadata, dict):
        raise BackendError(f"IPFS Cluster returned a malformed pin status for {cid[:80]}")
    peers: dict[str, tuple[str, str]] = {}
    for peer, info in peer_map.items():
        if not isinstance(info, dict):
            raise BackendError(f"IPFS Cluster returned a malformed peer status for {cid[:80]}")
        status = _str(info.get("status"), "status")
        if not status:
            raise BackendError(f"IPFS Cluster returned a peer status without status for {cid[:80]}")
        peers[peer] = (status, _str(info.get("error"), "error"))
    return PinStatus(
        cid=cid,
        name=_str(data.get("name"), "name"),
        allocations=tuple(_str(peer, "allocation") for peer in allocations),
        peers=MappingProxyType(peers),
        metadata=MappingProxyType({key: _str(value, "metadata value") for key, value in metadata.items()}),
    )


def _loads(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise BackendError(f"IPFS Cluster {what}: malformed JSON reply") from exc


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    data = _loads(body, what)
    if not isinstance(data, dict):
        raise BackendError(f"IPFS Cluster {what}: expected a JSON object, got {body[:80]!r}")
    return data


def _error_fields(body: bytes) -> tuple[int, str] | None:
    """`(code, message)` when `body` is the cluster's error object `{"code": int, "message": str}`."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return _as_error(data)


def _as_error(data: Any) -> tuple[int, str] | None:
    if not isinstance(data, dict) or not set(data) <= {"code", "message"}:
        return None
    code, message = data.get("code"), data.get("message")
    if isinstance(code, int) and not isinstance(code, bool) and isinstance(message, str) and message:
        return code, message[:_MAX_MESSAGE]
    return None


def _route(method: str, path: str) -> str:
    """A metrics label for a call: the method and the path's first segment (never a CID)."""
    return f"{method} /{path.lstrip('/').split('/', 1)[0]}"


async def _read_limited(response: httpx.Response, what: str, limit: int = _MAX_REPLY, *, head: bool = False) -> bytes:
    return await read_limited(response, f"IPFS Cluster {what}", limit, head=head)


async def _ndjson(response: httpx.Response, what: str) -> AsyncIterator[dict[str, Any]]:
    """The objects of an NDJSON stream, read as they arrive; lines bounded by `_MAX_LINE`."""
    buffer = bytearray()
    scan = 0  # the buffer before this offset holds no newline: long lines are not searched again
    async for piece in response.aiter_bytes():
        buffer += piece
        while (end := buffer.find(b"\n", scan)) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            scan = 0
            if len(line) > _MAX_LINE:
                raise BackendError(f"IPFS Cluster {what}: a stream line is larger than {_MAX_LINE} bytes")
            if line.strip():
                yield _stream_item(line, what)
        if len(buffer) > _MAX_LINE:
            raise BackendError(f"IPFS Cluster {what}: a stream line is larger than {_MAX_LINE} bytes")
        scan = len(buffer)
    _check_trailers(response, what)
    if buffer.strip():  # the server ends every object with "\n": this one was cut short
        raise BackendError(f"IPFS Cluster {what}: the stream was truncated")


def _check_trailers(response: httpx.Response, what: str) -> None:
    """A non-empty `X-Stream-Error` trailer is the error that ended the stream (the go client makes it a 500)."""
    for name, value in response.extensions.get("trailers") or ():
        if name.lower() == _STREAM_ERROR and value.strip():
            message = value.decode("utf-8", errors="replace").strip()[:_MAX_MESSAGE]
            if any(word in message.lower() for word in _TIMEOUT_WORDS):
                raise BackendUnavailable(f"IPFS Cluster {what}: {message}")
            raise ClusterError(f"IPFS Cluster {what}: {message}", code=500, cluster_message=message)


def _stream_item(line: bytes, what: str) -> dict[str, Any]:
    data = _loads(line, what)
    error = _as_error(data)
    if error is not None:  # an in-band error object, the visible half of an X-Stream-Error
        raise ClusterError(f"IPFS Cluster {what}: {error[1]}", code=error[0], cluster_message=error[1])
    if not isinstance(data, dict):
        raise BackendError(f"IPFS Cluster {what}: a stream item is not a JSON object")
    return data


def _filter_value(values: str | Sequence[str], allowed: frozenset[str], what: str) -> str:
    items = [values] if isinstance(values, str) else list(values)
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} filter value(s) {unknown!r}; allowed: {sorted(allowed)}")
    return ",".join(items)


class ClusterClient:
    """Client of the IPFS-Cluster REST API on one or more peers (`endpoints`, e.g. `http://10.0.0.5:9094`)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        basic_auth: tuple[str, str] | None = None,
        jwt: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if isinstance(endpoints, str) or not endpoints:
            raise ValueError("endpoints must be a non-empty list of URLs")
        if not all(url.startswith(("http://", "https://")) for url in endpoints):
            raise ValueError("every cluster endpoint must start with http:// or https://")
        if basic_auth is not None and jwt is not None:
            raise ValueError("give basic_auth or jwt, not both")
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeout and connect_timeout must be > 0")
        self._endpoints = tuple(url.rstrip("/") for url in endpoints)
        self._current = 0  # the endpoint that answered last: tried first
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        headers: dict[str, str] = {}
        if basic_auth is not None:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        elif jwt is not None:
            headers["Authorization"] = f"Bearer {jwt}"
        self._client = httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(), headers=headers, trust_env=False
        )
        # stream calls need the X-Stream-Error trailer: their own transport, unless one is injected for tests
        self._stream_client = (
            self._client
            if transport is not None
            else httpx.AsyncClient(transport=TrailerTransport(), headers=headers, trust_env=False)
        )

    async def __aenter__(self) -> ClusterClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- the chokepoint ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _request(
        self, method: str, path: str, params: Params = (), *, stream: bool = False
    ) -> AsyncIterator[httpx.Response]:
        """Send `method path?params` to the first endpoint that answers; yield the 2xx response, body unread.
        `stream` sends it through the client that keeps trailers."""
        what = f"{method} {path}"
        route = _route(method, path)
        metrics.count_cluster_call(route)
        started = time.perf_counter()
        try:
            response = await self._send(self._stream_client if stream else self._client, method, path, params, what)
        except BackendUnavailable:
            metrics.CLUSTER_ERRORS.labels(route, "unavailable").inc()
            raise
        except BackendError:
            metrics.CLUSTER_ERRORS.labels(route, "error").inc()
            raise
        metrics.CLUSTER_DURATION.labels(route).observe(time.perf_counter() - started)
        try:
            yield response
        except httpx.TimeoutException as exc:
            metrics.CLUSTER_ERRORS.labels(route, "unavailable").inc()
            raise BackendUnavailable(f"IPFS Cluster {what}: the reply stalled ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            metrics.CLUSTER_ERRORS.labels(route, "unavailable").inc()
            raise BackendUnavailable(f"IPFS Cluster {what}: the reply was cut ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            metrics.CLUSTER_ERRORS.labels(route, "error").inc()
            raise BackendError(f"IPFS Cluster {what}: {type(exc).__name__}: {str(exc)[:_MAX_MESSAGE]}") from exc
        finally:
            await response.aclose()

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, params: Params, what: str
    ) -> httpx.Response:
        failures: list[str] = []
        answered: BackendError | BackendUnavailable | None = None
        count = len(self._endpoints)
        start = self._current
        for step in range(count):
            index = (start + step) % count
            base = self._endpoints[index]
            request = client.build_request(method, base + path, params=list(params), timeout=self._timeout)
            try:
                response = await client.send(request, stream=True)
                if response.status_code < 500:
                    self._current = index
                    if response.status_code < 300:
                        return response
                try:
                    body = await _read_limited(response, what, _MAX_ERROR_BODY, head=True)
                finally:
                    await response.aclose()
            except httpx.TimeoutException as exc:
                failures.append(f"{base}: timed out ({type(exc).__name__})")
                continue
            except httpx.TransportError as exc:
                failures.append(f"{base}: {type(exc).__name__}")
                continue
            except httpx.HTTPError as exc:
                raise BackendError(f"IPFS Cluster {what}: {type(exc).__name__}: {str(exc)[:_MAX_MESSAGE]}") from exc
            error = self._error(what, response.status_code, body)
            if response.status_code < 500:
                raise error
            failures.append(f"{base}: HTTP {response.status_code}")
            if isinstance(error, ClusterError):
                answered = error  # the cluster itself answered: its message beats "unreachable"
        if answered is not None:
            raise answered
        raise BackendUnavailable(f"IPFS Cluster {what}: no endpoint answered ({'; '.join(failures)[:_MAX_MESSAGE]})")

    @staticmethod
    def _error(what: str, status: int, body: bytes) -> BackendError | BackendUnavailable:
        fields = _error_fields(body)
        if fields is None:
            text = body.decode("utf-8", errors="replace").strip()[:_MAX_MESSAGE] or f"HTTP {status}"
            if status >= 500:
                return BackendUnavailable(f"IPFS Cluster {what}: HTTP {status}: {text}")
            return ClusterError(f"IPFS Cluster {what}: HTTP {status}: {text}", code=status, cluster_message=text)
        code, message = fields
        if status in _UNAVAILABLE_STATUS or any(word in message.lower() for word in _TIMEOUT_WORDS):
            return BackendUnavailable(f"IPFS Cluster {what}: {message}")
        return ClusterError(f"IPFS Cluster {what}: {message}", code=code, cluster_message=message)

    async def _call(self, method: str, path: str, params: Params = ()) -> Any:
        """One call whose reply is a single JSON value (bounded)."""
        async with self._request(method, path, params) as response:
            body = await _read_limited(response, f"{method} {path}")
        return _loads(body, f"{method} {path}")

    async def _object(self, method: str, path: str, params: Params = ()) -> dict[str, Any]:
        data = await self._call(method, path, params)
        if not isinstance(data, dict):
            raise BackendError(f"IPFS Cluster {method} {path}: expected a JSON object")
        return data

    async def _stream(self, path: str, params: Params = ()) -> list[dict[str, Any]]:
        """GET a stream endpoint; 204 (no items) is an empty list."""
        async with self._request("GET", path, params, stream=True) as response:
            return [item async for item in _ndjson(response, f"GET {path}")]

    # ---- the API ----------------------------------------------------------------------------------

    async def id(self) -> dict[str, Any]:
        """The answering peer's `ID` object (`GET /id`)."""
        return await self._object("GET", "/id")

    async def version(self) -> str:
        """The cluster version (`GET /version`)."""
        reply = await self._object("GET", "/version")
        version = reply.get("version")
        if not isinstance(version, str):
            raise BackendError("IPFS Cluster GET /version: the reply has no version")
        return version

    async def peers(self) -> list[dict[str, Any]]:
        """The `ID` of every cluster peer (`GET /peers`, a stream)."""
        return await self._stream("/peers")

    async def pin(
        self,
        cid: str,
        *,
        replication_min: int,
        replication_max: int,
        name: str,
        metadata: Mapping[str, str],
        user_allocations: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Pin `cid` cluster-wide (`POST /pins/{cid}`); returns the `Pin` committed to consensus. Asynchronous:
        poll `status` for the peers' progress. Replication -1 = everywhere, 0 = the cluster's default."""
        if replication_min < -1 or replication_max < -1:
            raise ValueError("replication_min and replication_max must be >= -1")
        if (replication_min == -1) != (replication_max == -1) and 0 not in (replication_min, replication_max):
            raise ValueError("replication -1 (everywhere) must be given for both min and max")
        if replication_min > 0 and replication_max > 0 and replication_min > replication_max:
            raise ValueError("replication_min is larger than replication_max")
        params = [("replication-min", str(replication_min)), ("replication-max", str(replication_max))]
        if name:
            params.append(("name", name))
        for key, value in metadata.items():
            if not key:
                raise ValueError("metadata keys must not be empty")
            params.append((f"meta-{key}", value))
        if user_allocations:
            params.append(("user-allocations", ",".join(user_allocations)))
        return await self._object("POST", f"/pins/{quote(cid, safe='')}", params)

    async def unpin(self, cid: str) -> None:
        """Remove `cid` from the pinset (`DELETE /pins/{cid}`); a CID not in the pinset is success."""
        try:
            await self._call("DELETE", f"/pins/{quote(cid, safe='')}")
        except ClusterError as exc:
            if exc.code != 404 or _NOT_IN_PINSET not in exc.cluster_message:
                raise

    async def status(self, cid: str, *, local: bool = False) -> PinStatus:
        """The status of `cid` on every peer (`GET /pins/{cid}`); `local` asks the answering peer only."""
        params = [("local", "true")] if local else []
        return _parse_pin_status(await self._call("GET", f"/pins/{quote(cid, safe='')}", params))

    async def statuses(
        self, cids: Sequence[str] | None = None, filter: str | Sequence[str] | None = None, *, local: bool = False
    ) -> list[PinStatus]:
        """Statuses of the pinset (`GET /pins`, a stream), or of `cids` only; `filter` keeps the items where some
        peer has one of these `TRACKER_STATUSES`."""
        params: list[tuple[str, str]] = []
        if local:
            params.append(("local", "true"))
        if filter:
            params.append(("filter", _filter_value(filter, TRACKER_STATUSES, "status")))
        if cids:
            params.append(("cids", ",".join(cids)))
        return [_parse_pin_status(item) for item in await self._stream("/pins", params)]

    async def allocations(self, filter: str | Sequence[str] = ()) -> list[dict[str, Any]]:
        """The `Pin` of every item in the shared pinset (`GET /allocations`, a stream); `filter` by pin type."""
        params = [("filter", _filter_value(filter, _PIN_FILTERS, "pin type"))] if filter else []
        return await self._stream("/allocations", params)

    async def recover(self, cid: str, *, local: bool = False) -> PinStatus:
        """Re-queue a failed pin/unpin of `cid` (`POST /pins/{cid}/recover`); returns its new status."""
        params = [("local", "true")] if local else []
        return _parse_pin_status(await self._call("POST", f"/pins/{quote(cid, safe='')}/recover", params))

    async def metric_names(self) -> list[str]:
        """The names of the metrics the cluster's peers report (`GET /monitor/metrics`), e.g. `tag:site`."""
        data = await self._call("GET", "/monitor/metrics")
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise BackendError("IPFS Cluster GET /monitor/metrics: expected a list of metric names")
        return data

    async def metrics(self, name: str) -> list[dict[str, Any]]:
        """The latest `Metric` per peer for `name` (`ping`, `freespace`, `tag:<name>`…)."""
        data = await self._call("GET", f"/monitor/metrics/{quote(name, safe=':')}")
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise BackendError("IPFS Cluster GET /monitor/metrics: expected a list of objects")
        return data

    async def health_graph(self) -> dict[str, Any]:
        """The cluster's connectivity graph (`GET /health/graph`)."""
        return await self._object("GET", "/health/graph")

    async def aclose(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()
        if self._stream_client is not self._client:
            await self._stream_client.aclose()
