"""ClusterClient against httpx.MockTransport: requests sent, replies parsed, failover, every error translated."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import appliance.pinning.cluster as cluster
from appliance.errors import BackendError, BackendUnavailable
from appliance.pinning.cluster import ClusterClient, ClusterError, PinStatus

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
CID2 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
P1, P2, P3 = "12D3KooWPeerOne", "12D3KooWPeerTwo", "12D3KooWPeerThree"
A, B = "http://a.example:9094", "http://b.example:9094"

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, endpoints: tuple[str, ...] = (A,), **kwargs: Any) -> ClusterClient:
    return ClusterClient(endpoints, transport=httpx.MockTransport(handler), **kwargs)


def ndjson(*items: object) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def err(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"code": status, "message": message})


def peer_id(pid: str) -> dict[str, Any]:
    return {
        "id": pid,
        "addresses": [f"/ip4/10.0.0.1/tcp/9096/p2p/{pid}"],
        "cluster_peers": [P1, P2],
        "cluster_peers_addresses": [],
        "version": "1.1.6",
        "commit": "",
        "rpc_protocol_version": "/ipfscluster/1.0/rpc",
        "error": "",
        "ipfs": {"id": "12D3KooWIpfs", "addresses": [], "error": ""},
        "peername": pid[-3:],
    }


def pin_info(status: str, error: str = "") -> dict[str, Any]:
    return {
        "peername": "p",
        "ipfs_peer_id": "12D3KooWIpfs",
        "ipfs_peer_addresses": [],
        "status": status,
        "timestamp": "2026-01-01T00:00:00Z",
        "error": error,
        "attempt_count": 0,
        "priority_pin": False,
    }


def global_pin_info(
    cid: str, peer_map: dict[str, tuple[str, str]], allocations: list[str] | None = None
) -> dict[str, Any]:
    return {
        "cid": cid,
        "name": "obj",
        "allocations": allocations or [],
        "origins": [],
        "created": "2026-01-01T00:00:00Z",
        "metadata": {"bucket": "b1"},
        "peer_map": {peer: pin_info(status, error) for peer, (status, error) in peer_map.items()},
    }


def pin_object(cid: str, **options: Any) -> dict[str, Any]:
    return {
        "cid": cid,
        "type": "pin",
        "allocations": [],
        "max_depth": -1,
        "reference": None,
        "timestamp": "2026-01-01T00:00:00Z",
        "replication_factor_min": -1,
        "replication_factor_max": -1,
        "name": "",
        "mode": "recursive",
        "shard_size": 0,
        "user_allocations": None,
        "expire_at": "0001-01-01T00:00:00Z",
        "metadata": None,
        "pin_update": None,
        "origins": [],
        **options,
    }


class FakeCluster:
    """A cluster peer speaking the reference's routes and JSON shapes; records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.pinset: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method, path = request.method, request.url.path
        if (method, path) == ("GET", "/id"):
            return httpx.Response(200, json=peer_id(P1))
        if (method, path) == ("GET", "/version"):
            return httpx.Response(200, json={"version": "1.1.6"})
        if (method, path) == ("GET", "/peers"):
            return httpx.Response(200, content=ndjson(peer_id(P1), peer_id(P2)))
        if (method, path) == ("GET", "/allocations"):
            if not self.pinset:
                return httpx.Response(204)
            return httpx.Response(200, content=ndjson(*self.pinset.values()))
        if (method, path) == ("GET", "/pins"):
            return httpx.Response(200, content=ndjson(*(global_pin_info(c, {P1: ("pinned", "")}) for c in self.pinset)))
        if path.startswith("/pins/") and path.endswith("/recover") and method == "POST":
            cid = path.split("/")[2]
            return httpx.Response(200, json=global_pin_info(cid, {P1: ("pin_queued", "")}))
        if path.startswith("/pins/"):
            cid = path.split("/")[2]
            if method == "POST":
                params = request.url.params
                meta = {k[5:]: v for k, v in params.multi_items() if k.startswith("meta-")}
                self.pinset[cid] = pin_object(
                    cid,
                    name=params.get("name", ""),
                    metadata=meta or None,
                    replication_factor_min=int(params["replication-min"]),
                    replication_factor_max=int(params["replication-max"]),
                )
                return httpx.Response(200, json=self.pinset[cid])
            if method == "DELETE":
                if cid not in self.pinset:
                    return err(404, "pin is not part of the pinset")
                return httpx.Response(200, json=self.pinset.pop(cid))
            if method == "GET":
                status = "pinned" if cid in self.pinset else "unpinned"
                return httpx.Response(200, json=global_pin_info(cid, {P1: (status, ""), P2: (status, "")}))
        if (method, path) == ("GET", "/monitor/metrics/freespace"):
            metric = {"name": "freespace", "peer": P1, "value": "1000", "expire": 1, "valid": True, "weight": 1000}
            return httpx.Response(200, json=[metric])
        if (method, path) == ("GET", "/health/graph"):
            return httpx.Response(200, json={"cluster_id": P1, "id_to_peername": {P1: "one"}, "ipfs_links": {}})
        return err(404, "not found")


def test_public_api() -> None:
    assert cluster.__all__ == ["ERROR_STATUSES", "TRACKER_STATUSES", "ClusterClient", "ClusterError", "PinStatus"]
    assert issubclass(ClusterError, BackendError)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        ClusterClient([])
    with pytest.raises(ValueError):
        ClusterClient(A)
    with pytest.raises(ValueError):
        ClusterClient(["a.example:9094"])
    with pytest.raises(ValueError):
        ClusterClient([A], basic_auth=("u", "p"), jwt="t")
    with pytest.raises(ValueError):
        ClusterClient([A], timeout=0)


# ---- every method's request --------------------------------------------------------------------


async def test_simple_gets() -> None:
    fake = FakeCluster()
    async with client(fake) as c:
        assert (await c.id())["id"] == P1
        assert await c.version() == "1.1.6"
        assert [p["id"] for p in await c.peers()] == [P1, P2]
        metrics = await c.metrics("freespace")
        assert metrics[0]["peer"] == P1
        assert (await c.health_graph())["cluster_id"] == P1
    assert [(r.method, r.url.path, str(r.url.query, "ascii")) for r in fake.requests] == [
        ("GET", "/id", ""),
        ("GET", "/version", ""),
        ("GET", "/peers", ""),
        ("GET", "/monitor/metrics/freespace", ""),
        ("GET", "/health/graph", ""),
    ]
    assert all(str(r.url).startswith(A + "/") for r in fake.requests)
    assert all("authorization" not in r.headers for r in fake.requests)


async def test_pin_sends_pin_options_as_query() -> None:
    fake = FakeCluster()
    async with client(fake) as c:
        pin = await c.pin(
            CID,
            replication_min=2,
            replication_max=3,
            name="bucket/key",
            metadata={"bucket": "b1", "s3ipfs": "1"},
            user_allocations=[P1, P2],
        )
    assert pin["cid"] == CID
    assert pin["metadata"] == {"bucket": "b1", "s3ipfs": "1"}
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url.path == f"/pins/{CID}"
    assert request.url.params.multi_items() == [
        ("replication-min", "2"),
        ("replication-max", "3"),
        ("name", "bucket/key"),
        ("meta-bucket", "b1"),
        ("meta-s3ipfs", "1"),
        ("user-allocations", f"{P1},{P2}"),
    ]


async def test_pin_minimal_query_and_validation() -> None:
    fake = FakeCluster()
    async with client(fake) as c:
        await c.pin(CID, replication_min=-1, replication_max=-1, name="", metadata={})
        for low, high in [(-2, 1), (-1, 2), (3, 2)]:
            with pytest.raises(ValueError):
                await c.pin(CID, replication_min=low, replication_max=high, name="", metadata={})
        with pytest.raises(ValueError):
            await c.pin(CID, replication_min=0, replication_max=0, name="", metadata={"": "x"})
    (request,) = fake.requests
    assert request.url.params.multi_items() == [("replication-min", "-1"), ("replication-max", "-1")]


async def test_unpin_and_unknown_cid_is_success() -> None:
    fake = FakeCluster()
    async with client(fake) as c:
        await c.pin(CID, replication_min=1, replication_max=2, name="x", metadata={})
        await c.unpin(CID)
        await c.unpin(CID)  # not in the pinset any more: 404 "pin is not part of the pinset" is success
    assert [(r.method, r.url.path) for r in fake.requests[1:]] == [("DELETE", f"/pins/{CID}")] * 2
    assert fake.pinset == {}


async def test_unpin_other_404_is_an_error() -> None:
    async with client(lambda r: err(404, "not found")) as c:
        with pytest.raises(ClusterError) as info:
            await c.unpin(CID)
    assert info.value.code == 404
    assert info.value.cluster_message == "not found"


async def test_status_and_recover_requests() -> None:
    fake = FakeCluster()
    async with client(fake) as c:
        unknown = await c.status(CID)
        local = await c.status(CID, local=True)
        recovered = await c.recover(CID)
        await c.recover(CID, local=True)
    assert unknown.cid == CID and not unknown.fully_pinned and unknown.pinned == 0
    assert local.peers[P1] == ("unpinned", "")
    assert recovered.peers == {P1: ("pin_queued", "")}
    assert [(r.method, r.url.path, str(r.url.query, "ascii")) for r in fake.requests] == [
        ("GET", f"/pins/{CID}", ""),
        ("GET", f"/pins/{CID}", "local=true"),
        ("POST", f"/pins/{CID}/recover", ""),
        ("POST", f"/pins/{CID}/recover", "local=true"),
    ]


async def test_statuses_and_allocations_streams() -> None:
    fake = FakeCluster()
    async with client(fake) as c:
        assert await c.allocations() == []  # 204: no items
        for cid in (CID, CID2):
            await c.pin(cid, replication_min=-1, replication_max=-1, name="", metadata={})
        fake.requests.clear()
        everything = await c.statuses()
        await c.statuses(cids=[CID, CID2], filter=["pin_error", "unexpectedly_unpinned"])
        await c.statuses(filter="queued", local=True)
        allocations = await c.allocations()
        await c.allocations(filter=["pin", "meta-pin"])
        with pytest.raises(ValueError):
            await c.statuses(filter="broken")
        with pytest.raises(ValueError):
            await c.allocations(filter="pinned")
    assert [s.cid for s in everything] == [CID, CID2]
    assert all(isinstance(s, PinStatus) and s.fully_pinned for s in everything)
    assert [a["cid"] for a in allocations] == [CID, CID2]
    assert [(r.url.path, r.url.params.multi_items()) for r in fake.requests] == [
        ("/pins", []),
        ("/pins", [("filter", "pin_error,unexpectedly_unpinned"), ("cids", f"{CID},{CID2}")]),
        ("/pins", [("local", "true"), ("filter", "queued")]),
        ("/allocations", []),
        ("/allocations", [("filter", "pin,meta-pin")]),
    ]


async def test_cid_is_quoted_into_the_path() -> None:
    fake = FakeCluster()
    async with client(fake) as c:
        await c.status("../id")
    assert fake.requests[0].url.raw_path == b"/pins/..%2Fid"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"basic_auth": ("admin", "s3cret")}, "Basic " + base64.b64encode(b"admin:s3cret").decode()),
        ({"jwt": "eyJhbGciOiJIUzI1NiJ9.e30.sig"}, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
    ],
)
async def test_auth_header(kwargs: dict[str, Any], expected: str) -> None:
    fake = FakeCluster()
    async with client(fake, **kwargs) as c:
        await c.version()
        await c.peers()
        await c.unpin(CID)
    assert [r.headers["authorization"] for r in fake.requests] == [expected] * 3


async def test_every_call_carries_the_timeout() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"version": "1"})

    async with client(handler, timeout=7.0, connect_timeout=1.5) as c:
        await c.version()
    assert seen == [{"connect": 1.5, "read": 7.0, "write": 7.0, "pool": 7.0}]


# ---- failover and errors -----------------------------------------------------------------------


def endpoint_router(**by_host: Handler) -> tuple[Handler, list[str]]:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return by_host[request.url.host.split(".")[0]](request)

    return handler, hosts


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def time_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectTimeout("timed out", request=request)


def bad_gateway(request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, text="<html>bad gateway</html>")


@pytest.mark.parametrize("failure", [refuse, time_out, bad_gateway])
async def test_failover_to_second_endpoint_and_remember_it(failure: Handler) -> None:
    handler, hosts = endpoint_router(a=failure, b=FakeCluster())
    async with client(handler, (A, B)) as c:
        assert await c.version() == "1.1.6"
        assert len(await c.peers()) == 2  # the last good endpoint is tried first
    assert hosts == ["a.example", "b.example", "b.example"]


async def test_failover_wraps_around_from_remembered_endpoint() -> None:
    state = {"b_up": False}

    def b(request: httpx.Request) -> httpx.Response:
        return FakeCluster()(request) if state["b_up"] else refuse(request)

    handler, hosts = endpoint_router(a=FakeCluster(), b=b)
    async with client(handler, (A, B)) as c:
        state["b_up"] = True
        c._current = 1
        await c.version()
        state["b_up"] = False
        await c.version()
    assert hosts == ["b.example", "b.example", "a.example"]


async def test_all_endpoints_down_is_backend_unavailable() -> None:
    handler, hosts = endpoint_router(a=refuse, b=bad_gateway)
    async with client(handler, (A, B)) as c:
        with pytest.raises(BackendUnavailable) as info:
            await c.status(CID)
    assert hosts == ["a.example", "b.example"]
    assert "no endpoint answered" in info.value.message


async def test_cluster_500_fails_over_then_is_backend_error_with_its_message() -> None:
    message = "not enough peers to allocate CID. Needed at least: 3. Wanted at most: 3. Available candidates: 2."
    handler, hosts = endpoint_router(a=lambda r: err(500, message), b=refuse)
    async with client(handler, (A, B)) as c:
        with pytest.raises(ClusterError) as info:
            await c.pin(CID, replication_min=3, replication_max=3, name="", metadata={})
    assert hosts == ["a.example", "b.example"]
    assert info.value.code == 500
    assert info.value.cluster_message == message
    assert not isinstance(info.value, BackendUnavailable)


async def test_cluster_deadline_error_is_unavailable() -> None:
    async with client(lambda r: err(500, "context deadline exceeded")) as c:
        with pytest.raises(BackendUnavailable):
            await c.status(CID)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "error decoding Cid: selected encoding not supported"),
        (401, "unauthorized: access denied"),
        (400, "invalid filter value"),
    ],
)
async def test_4xx_is_backend_error_with_cluster_message_and_no_failover(status: int, message: str) -> None:
    handler, hosts = endpoint_router(a=lambda r: err(status, message), b=FakeCluster())
    async with client(handler, (A, B)) as c:
        with pytest.raises(ClusterError) as info:
            await c.statuses(filter="pinned")
    assert hosts == ["a.example"]
    assert (info.value.code, info.value.cluster_message) == (status, message)
    assert message in info.value.message


async def test_4xx_without_json_body_and_redirect() -> None:
    async with client(lambda r: httpx.Response(403, text="forbidden by proxy")) as c:
        with pytest.raises(ClusterError) as info:
            await c.id()
    assert info.value.code == 403 and info.value.cluster_message == "forbidden by proxy"
    redirect = httpx.Response(307, headers={"Location": "/id"})
    async with client(lambda r: redirect) as c:
        with pytest.raises(BackendError):
            await c.id()


async def test_read_error_mid_body_is_unavailable() -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b'{"id": "x"}\n'
            raise httpx.ReadError("connection reset")

    async with client(lambda r: httpx.Response(200, stream=Broken())) as c:
        with pytest.raises(BackendUnavailable):
            await c.peers()


# ---- status summary ----------------------------------------------------------------------------


def summary(data: dict[str, Any]) -> tuple[int, int, bool]:
    status = cluster._parse_pin_status(data)
    return status.pinned, status.errors, status.fully_pinned


def test_status_summary() -> None:
    allocated = [P1, P2]
    assert summary(global_pin_info(CID, {P1: ("pinned", ""), P2: ("pinned", ""), P3: ("remote", "")}, allocated)) == (
        2,
        0,
        True,
    )
    assert summary(global_pin_info(CID, {P1: ("pinned", ""), P2: ("pinning", ""), P3: ("remote", "")}, allocated)) == (
        1,
        0,
        False,
    )
    lost = global_pin_info(CID, {P1: ("pinned", ""), P2: ("unexpectedly_unpinned", "should be pinned")}, allocated)
    assert summary(lost) == (1, 1, False)
    down = global_pin_info(CID, {P1: ("pin_error", "boom"), P2: ("cluster_error", "rpc timeout")}, allocated)
    assert summary(down) == (0, 2, False)
    assert summary(global_pin_info(CID, {P1: ("pinned", "")}, allocated)) == (1, 0, False)  # P2 missing
    # no allocations = everywhere: every peer must hold it
    assert summary(global_pin_info(CID, {P1: ("pinned", ""), P2: ("pinned", "")})) == (2, 0, True)
    assert summary(global_pin_info(CID, {P1: ("pinned", ""), P2: ("pin_queued", "")})) == (1, 0, False)
    assert summary(global_pin_info(CID, {})) == (0, 0, False)
    status = cluster._parse_pin_status(down)
    assert status.peers[P1] == ("pin_error", "boom")
    assert status.allocations == (P1, P2)
    assert status.metadata == {"bucket": "b1"}
    with pytest.raises(TypeError):
        status.peers[P3] = ("pinned", "")  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"cid": ""},
        {"cid": CID, "peer_map": []},
        {"cid": CID, "peer_map": {P1: "pinned"}},
        {"cid": CID, "peer_map": {P1: {"status": 3}}},
        {"cid": CID, "peer_map": {P1: {"error": ""}}},
        {"cid": CID, "allocations": [1]},
        {"cid": CID, "metadata": {"k": 1}},
    ],
)
def test_malformed_pin_status(data: Any) -> None:
    with pytest.raises(BackendError):
        cluster._parse_pin_status(data)


# ---- NDJSON streams ----------------------------------------------------------------------------


def stream_of(*pieces: bytes) -> Handler:
    class Pieces(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for piece in pieces:
                yield piece

    return lambda r: httpx.Response(200, stream=Pieces())


async def test_ndjson_split_across_chunks_and_blank_lines() -> None:
    body = ndjson(peer_id(P1), peer_id(P2))
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)] + [b"\n\n"]
    async with client(stream_of(*pieces)) as c:
        assert [p["id"] for p in await c.peers()] == [P1, P2]


@pytest.mark.parametrize(
    "body",
    [
        ndjson(peer_id(P1)) + b'{"id": "broken\n',  # malformed line
        ndjson(peer_id(P1)) + b'{"id": "cut", "addr',  # truncated last line (stream cut, error in the trailer)
        ndjson(peer_id(P1)) + b'{"id": "x"}',  # the last object lacks its newline: cut short
        ndjson(peer_id(P1), [1, 2]),  # not an object
        ndjson(peer_id(P1), {"code": 500, "message": "trailer: failed to read pinset"}),  # in-band error object
    ],
)
async def test_ndjson_errors_are_backend_errors(body: bytes) -> None:
    async with client(lambda r: httpx.Response(200, content=body)) as c:
        with pytest.raises(BackendError):
            await c.peers()


async def test_stream_error_object_message_is_surfaced() -> None:
    body = ndjson(global_pin_info(CID, {P1: ("pinned", "")}), {"code": 500, "message": "shard lost"})
    async with client(lambda r: httpx.Response(200, content=body)) as c:
        with pytest.raises(ClusterError) as info:
            await c.statuses()
    assert info.value.cluster_message == "shard lost"


async def test_stream_error_before_first_item_is_500_with_body() -> None:
    async with client(lambda r: err(500, "invalid state")) as c:
        with pytest.raises(ClusterError) as info:
            await c.allocations()
    assert info.value.cluster_message == "invalid state"


async def test_oversized_line_is_backend_error() -> None:
    big = {"id": "x" * (cluster._MAX_LINE + 10)}
    # in one piece with its newline, and arriving piece by piece without one
    async with client(lambda r: httpx.Response(200, content=ndjson(big))) as c:
        with pytest.raises(BackendError):
            await c.peers()
    endless = [b'{"id": "'] + [b"x" * 65536] * 20
    async with client(stream_of(*endless)) as c:
        with pytest.raises(BackendError) as info:
            await c.peers()
    assert "larger than" in info.value.message


async def test_oversized_json_reply_is_backend_error() -> None:
    body = b'{"cluster_id": "' + b"x" * (cluster._MAX_REPLY + 1) + b'"}'
    async with client(lambda r: httpx.Response(200, content=body)) as c:
        with pytest.raises(BackendError):
            await c.health_graph()


# ---- nothing but backend errors, whatever the body ---------------------------------------------

CALLS: list[Callable[[ClusterClient], Any]] = [
    lambda c: c.id(),
    lambda c: c.version(),
    lambda c: c.peers(),
    lambda c: c.pin(CID, replication_min=1, replication_max=2, name="n", metadata={"k": "v"}),
    lambda c: c.unpin(CID),
    lambda c: c.status(CID),
    lambda c: c.statuses(),
    lambda c: c.allocations(),
    lambda c: c.recover(CID),
    lambda c: c.metrics("ping"),
    lambda c: c.health_graph(),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(json_values, max_size=4).map(lambda vs: b"".join(json.dumps(v).encode() + b"\n" for v in vs)),
    st.sampled_from([global_pin_info(CID, {P1: ("pinned", "")}), pin_object(CID), peer_id(P1)]).map(
        lambda v: json.dumps(v).encode()
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from([200, 204, 301, 400, 401, 404, 500, 502, 503]),
    body=bodies,
    call=st.sampled_from(range(len(CALLS))),
)
async def test_arbitrary_replies_raise_only_backend_errors(status: int, body: bytes, call: int) -> None:
    async with client(lambda r: httpx.Response(status, content=body), (A, B)) as c:
        try:
            await CALLS[call](c)
        except (BackendError, BackendUnavailable):
            pass
