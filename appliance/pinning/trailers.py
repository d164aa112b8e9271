"""An httpx transport that keeps HTTP/1.1 trailers: IPFS-Cluster reports an error after a stream's first item in
the `X-Stream-Error` trailer, which httpx's own transport (httpcore) discards. `TrailerTransport` speaks HTTP/1.1
with h11 on one asyncio connection per request and hands the trailer fields over in
`response.extensions["trailers"]` (a list of (name, value) byte pairs)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import h11
import httpx

__all__ = ["MAX_HEAD", "TrailerTransport"]

MAX_HEAD = 64 * 1024  # bound on a reply's status line + headers, and on its trailer fields
_READ_SIZE = 65536
_MAX_MESSAGE = 300


class _TrailerBody(httpx.AsyncByteStream):
    """The body of one `_TrailerTransport` reply; at its end the trailer fields go into `trailers`."""

    def __init__(self, conn: _H11Connection, trailers: list[tuple[bytes, bytes]]) -> None:
        self._conn = conn
        self._trailers = trailers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._conn.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._trailers.extend((bytes(name), bytes(value)) for name, value in event.headers)
                return
            else:
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}", request=self._conn.request)

    async def aclose(self) -> None:
        await self._conn.close()


class _H11Connection:
    """One HTTP/1.1 exchange on its own asyncio connection, each wait bounded by the request's timeouts."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        timeouts = request.extensions.get("timeout") or {}
        self._connect, self._read, self._write = (timeouts.get(k) for k in ("connect", "read", "write"))
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        url = self.request.url
        secure = url.scheme == "https"
        port = url.port or (443 if secure else 80)
        context = ssl.create_default_context() if secure else None
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(url.host, port, ssl=context, server_hostname=url.host if secure else None),
                self._connect,
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("connect timed out", request=self.request) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc)[:_MAX_MESSAGE], request=self.request) from exc

    async def send(self, event: h11.Event) -> None:
        assert self._writer is not None
        try:
            self._writer.write(self._h11.send(event) or b"")
            await asyncio.wait_for(self._writer.drain(), self._write)
        except TimeoutError as exc:
            raise httpx.WriteTimeout("write timed out", request=self.request) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc)[:_MAX_MESSAGE], request=self.request) from exc

    async def next_event(self) -> h11.Event:
        assert self._reader is not None
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)[:_MAX_MESSAGE], request=self.request) from exc
            if event is h11.PAUSED:
                raise httpx.RemoteProtocolError("the server sent more than one reply", request=self.request)
            if event is not h11.NEED_DATA:
                assert isinstance(event, h11.Event)
                return event
            try:
                data = await asyncio.wait_for(self._reader.read(_READ_SIZE), self._read)
            except TimeoutError as exc:
                raise httpx.ReadTimeout("read timed out", request=self.request) from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc)[:_MAX_MESSAGE], request=self.request) from exc
            self._h11.receive_data(data)  # b"" = the peer closed; h11 then reports the cut

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TrailerTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with h11, one connection per request (stream calls are few), that keeps the trailer fields:
    `response.extensions["trailers"]` is a list of `(name, value)` filled once the body has been read to its end."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        conn = _H11Connection(request)
        await conn.open()
        try:
            headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"connection"]
            target = request.url.raw_path
            await conn.send(
                h11.Request(method=request.method, target=target, headers=[*headers, (b"Connection", b"close")])
            )
            body = b"".join([piece async for piece in request.stream])  # type: ignore[union-attr]
            if body:
                await conn.send(h11.Data(data=body))
            await conn.send(h11.EndOfMessage())
            while not isinstance(event := await conn.next_event(), h11.Response):
                if not isinstance(event, h11.InformationalResponse):
                    raise httpx.RemoteProtocolError("the server sent no response", request=request)
        except BaseException:
            await conn.close()
            raise
        trailers: list[tuple[bytes, bytes]] = []
        return httpx.Response(
            event.status_code,
            headers=list(event.headers),
            stream=_TrailerBody(conn, trailers),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(event.reason), "trailers": trailers},
        )
