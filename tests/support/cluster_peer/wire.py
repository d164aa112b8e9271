"""The test peer's HTTP/1.1 layer on h11 + asyncio streams: it can send the `X-Stream-Error` trailer for real.

A handler receives a `Request` and returns a `Reply` (one JSON value, 204, raw bytes) or a `StreamReply` (NDJSON
objects with the cluster's stream rules: no items → 204, an error before the first item → 500 with the error body,
after it → 200 chunked with the error in the `X-Stream-Error` trailer, `""` on success).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

log = logging.getLogger(__name__)

__all__ = ["Request", "Reply", "StreamReply", "StreamAbort", "serve"]

_MAX_BODY = 1024 * 1024
_MAX_HEADERS = 16 * 1024
_READ = 65536
_IDLE = 120.0


@dataclass(frozen=True)
class Request:
    """One request: method, decoded path, query items in order, lower-cased headers, body."""

    method: str
    path: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str, default: str = "") -> str:
        for key, value in self.query:
            if key == name:
                return value
        return default


@dataclass
class Reply:
    """A whole reply: `data` is JSON-encoded unless `raw` is given; `data=None` and no raw → 204."""

    status: int = 200
    data: Any = None
    raw: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


class StreamAbort(Exception):
    """Raised by a stream's iterator: the connection is dropped at once (a stream cut without its end)."""


@dataclass
class StreamReply:
    """NDJSON objects from `items`; an exception from it (not StreamAbort) carries the stream error text."""

    items: AsyncIterator[Any]
    status_error: Callable[[Exception], tuple[int, str]] = lambda exc: (500, str(exc))


Handler = Callable[[Request], Awaitable[Reply | StreamReply]]


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler) -> None:
        self.reader, self.writer, self.handler = reader, writer, handler
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADERS)

    async def send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(_READ), _IDLE)
            self.h11.receive_data(data)

    async def run(self) -> None:
        try:
            while True:
                event = await self.next_event()
                if isinstance(event, h11.ConnectionClosed):
                    return
                if not isinstance(event, h11.Request):
                    return
                body = bytearray()
                while True:
                    part = await self.next_event()
                    if isinstance(part, h11.Data):
                        body += part.data
                        if len(body) > _MAX_BODY:
                            await self.reply(Reply(413, {"code": 413, "message": "request body too large"}), False)
                            return
                    elif isinstance(part, h11.EndOfMessage):
                        break
                    else:
                        return
                request = _request(event, bytes(body))
                try:
                    reply = await self.handler(request)
                except Exception:  # never a traceback on the wire; the peer's log has it
                    log.exception("%s %s failed", request.method, request.path)
                    reply = Reply(500, {"code": 500, "message": "internal error in the test peer"})
                if isinstance(reply, StreamReply):
                    if not await self.stream(reply):
                        return
                else:
                    await self.reply(reply, True)
                if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is not h11.DONE:
                    return
                self.h11.start_next_cycle()
        except (h11.RemoteProtocolError, h11.LocalProtocolError, ConnectionError, TimeoutError, StreamAbort):
            return
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def reply(self, reply: Reply, keep: bool) -> None:
        headers = [("Content-Type", "application/json"), *reply.headers]
        if reply.raw is not None:
            body = reply.raw
        elif reply.data is None and reply.status in (200, 204):
            reply.status, body = 204, b""
        else:
            body = _json(reply.data) if reply.data is not None else b""
        if reply.status != 204:
            headers.append(("Content-Length", str(len(body))))
        if not keep:
            headers.append(("Connection", "close"))
        await self.send(h11.Response(status_code=reply.status, headers=headers))
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    async def stream(self, reply: StreamReply) -> bool:
        """Send a stream; False when the connection was dropped on purpose."""
        items = reply.items
        try:
            first = await anext(items)
        except StopAsyncIteration:
            await self.reply(Reply(204), True)
            return True
        except StreamAbort:
            return False
        except Exception as exc:  # before the first item: a 500 body
            code, message = reply.status_error(exc)
            await self.reply(Reply(code, {"code": code, "message": message}), True)
            return True
        headers = [("Content-Type", "application/json"), ("Trailer", "X-Stream-Error"), ("X-Chunked-Output", "1")]
        await self.send(h11.Response(status_code=200, headers=headers))
        await self.send(h11.Data(data=_json(first) + b"\n"))
        error = ""
        try:
            async for item in items:
                await self.send(h11.Data(data=_json(item) + b"\n"))
        except StreamAbort:
            return False
        except Exception as exc:  # after it: the trailer
            error = reply.status_error(exc)[1] or "stream error"
        await self.send(h11.EndOfMessage(headers=[("X-Stream-Error", error)]))
        return True


def _request(event: h11.Request, body: bytes) -> Request:
    target = event.target.decode("latin-1")
    parts = urlsplit(target)
    return Request(
        method=event.method.decode("ascii", "replace").upper(),
        path=unquote(parts.path),
        raw_path=parts.path,
        query=parse_qsl(parts.query, keep_blank_values=True),
        headers={name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers},
        body=body,
    )


async def serve(handler: Handler, port: int, host: str = "127.0.0.1") -> asyncio.Server:
    """Listen on `host:port` (loopback only) and answer with `handler`."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError("the test peer listens on loopback only")

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _Conn(reader, writer, handler).run()

    return await asyncio.start_server(on_connection, host, port, limit=_READ)
