"""ClusterClient's stream calls on the wire: the h11 transport reads the `X-Stream-Error` trailer, fails over,
bounds lines, and turns cut or stalled streams into backend errors (a raw asyncio server plays the cluster)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import appliance.pinning.cluster as cluster
from appliance.errors import BackendError, BackendUnavailable
from appliance.pinning.cluster import ClusterClient, ClusterError

P1, P2 = "12D3KooWPeerOne", "12D3KooWPeerTwo"


def chunked(*pieces: bytes, trailer: str | None = "", end: bool = True) -> bytes:
    """A 200 NDJSON reply in chunked encoding, with the `X-Stream-Error` trailer as the cluster sends it."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTrailer: X-Stream-Error\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    if not end:
        return head + body
    tail = b"0\r\n" + (f"X-Stream-Error: {trailer}\r\n".encode() if trailer is not None else b"") + b"\r\n"
    return head + body + tail


def line(item: dict[str, Any]) -> bytes:
    return json.dumps(item).encode() + b"\n"


def whole(status: int, body: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


class RawServer:
    """Answers every request with `reply` bytes (then closes, or stalls with `stall`); records request heads."""

    def __init__(self, reply: bytes, *, stall: bool = False) -> None:
        self.reply, self.stall = reply, stall
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.reply)
            await writer.drain()
            if self.stall:
                await asyncio.sleep(5)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    servers: list[asyncio.Server] = []

    async def start(reply: bytes, **kwargs: Any) -> RawServer:
        raw = RawServer(reply, **kwargs)
        raw.server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        servers.append(raw.server)
        return raw

    yield start
    for server in servers:
        server.close()


async def test_empty_trailer_is_success_and_request_is_sent(serve: Callable[..., Any]) -> None:
    raw = await serve(chunked(line({"id": P1}), line({"id": P2}), trailer=""))
    async with ClusterClient([raw.url], basic_auth=("admin", "pw")) as c:
        assert [p["id"] for p in await c.peers()] == [P1, P2]
    head = raw.heads[0].decode()
    assert head.startswith("GET /peers HTTP/1.1\r\n")
    assert "\r\nauthorization: basic ywrtaw46chc=\r\n" in head.lower()
    assert "\r\nconnection: close\r\n" in head.lower()


async def test_trailer_error_surfaces(serve: Callable[..., Any]) -> None:
    raw = await serve(chunked(line({"id": P1}), trailer="failed to list peers: shard lost"))
    async with ClusterClient([raw.url]) as c:
        with pytest.raises(ClusterError) as info:
            await c.peers()
    assert info.value.code == 500
    assert info.value.cluster_message == "failed to list peers: shard lost"


async def test_trailer_deadline_is_unavailable(serve: Callable[..., Any]) -> None:
    raw = await serve(chunked(line({"id": P1}), trailer="context deadline exceeded"))
    async with ClusterClient([raw.url]) as c:
        with pytest.raises(BackendUnavailable):
            await c.peers()


async def test_no_trailer_at_all_is_success(serve: Callable[..., Any]) -> None:
    raw = await serve(chunked(line({"id": P1}), trailer=None))
    async with ClusterClient([raw.url]) as c:
        assert [p["id"] for p in await c.peers()] == [P1]


async def test_cut_stream_is_unavailable(serve: Callable[..., Any]) -> None:
    raw = await serve(chunked(line({"id": P1}), b'{"id": "cut', end=False))
    async with ClusterClient([raw.url]) as c:
        with pytest.raises(BackendUnavailable) as info:
            await c.peers()
    assert "cut" in info.value.message


async def test_oversized_line_is_backend_error(serve: Callable[..., Any]) -> None:
    pieces = [b'{"id": "'] + [b"x" * 65536] * 20
    raw = await serve(chunked(*pieces, trailer=""))
    async with ClusterClient([raw.url]) as c:
        with pytest.raises(BackendError) as info:
            await c.peers()
    assert "larger than" in info.value.message


async def test_stalled_stream_is_unavailable(serve: Callable[..., Any]) -> None:
    raw = await serve(chunked(line({"id": P1}), end=False), stall=True)
    async with ClusterClient([raw.url], timeout=0.3) as c:
        with pytest.raises(BackendUnavailable) as info:
            await c.peers()
    assert "stalled" in info.value.message


async def test_204_and_error_before_first_item(serve: Callable[..., Any]) -> None:
    empty = await serve(b"HTTP/1.1 204 No Content\r\n\r\n")
    bad = await serve(whole(400, b'{"code":400,"message":"invalid filter value"}'))
    async with ClusterClient([empty.url]) as c:
        assert await c.allocations() == []
    async with ClusterClient([bad.url]) as c:
        with pytest.raises(ClusterError) as info:
            await c.allocations()
    assert (info.value.code, info.value.cluster_message) == (400, "invalid filter value")


async def test_stream_fails_over_on_500_and_refused(serve: Callable[..., Any]) -> None:
    failing = await serve(whole(500, b'{"code":500,"message":"invalid state"}'))
    good = await serve(chunked(line({"id": P2}), trailer=""))
    refused = "http://127.0.0.1:9"  # discard port: nothing listens on loopback
    async with ClusterClient([refused, failing.url, good.url]) as c:
        assert [p["id"] for p in await c.peers()] == [P2]
        assert c._current == 2
    assert len(failing.heads) == 1


async def test_all_stream_endpoints_down_is_unavailable() -> None:
    async with ClusterClient(["http://127.0.0.1:9"], connect_timeout=0.5) as c:
        with pytest.raises(BackendUnavailable):
            await c.peers()


async def test_mock_transport_trailers_extension() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        trailers = [(b"X-Stream-Error", b"pinset broken")]
        return httpx.Response(200, content=line({"id": P1}), extensions={"trailers": trailers})

    async with ClusterClient(["http://a.example:9094"], transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ClusterError) as info:
            await c.peers()
    assert info.value.cluster_message == "pinset broken"
    assert cluster._STREAM_ERROR == b"x-stream-error"
